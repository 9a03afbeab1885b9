"DeviceDL: index-sliced batches from device tensors that still behave as a fastai DataLoader in a Learner"
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pytest
import torch
from fastai.data.all import CrossEntropyLossFlat, TensorCategory, TfmdDL
from fastai.learner import Learner
from torch import nn

from esc50_norm.configs import Decoding
from esc50_norm import AudioTensor, DeviceDL, SpectrogramConfig, find_spec_normalize
from esc50_norm.study import device_dataloaders, load_or_build_cache, norm_tfms, read_meta
from esc50_norm.study.demo import make_fake_esc50

SPEC = SpectrogramConfig(n_fft=256, hop_length=128, mel=True, n_mels=16)


def test_batches_are_index_slices_of_the_clips():
    clips, labels = torch.randn(10, 1, 50), torch.arange(10)
    dl = DeviceDL(clips=clips, labels=labels, sr=8000, bs=4)
    batches = list(dl)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[1]
    assert isinstance(x, AudioTensor) and x.sr == 8000 and isinstance(y, TensorCategory)
    assert torch.equal(x, clips[4:8]) and torch.equal(y, labels[4:8])


def test_shuffled_epoch_sees_every_clip_once_and_drop_last_drops_the_tail():
    clips, labels = torch.arange(10.).view(10, 1, 1), torch.arange(10)
    seen = torch.cat([y for _, y in DeviceDL(clips=clips, labels=labels, bs=4, shuffle=True)])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    dropped = list(DeviceDL(clips=clips, labels=labels, bs=4, shuffle=True, drop_last=True))
    assert [len(y) for _, y in dropped] == [4, 4]
    with pytest.raises(ValueError, match='10 clips but 9 labels'): DeviceDL(clips=clips, labels=labels[:9])


@pytest.fixture(scope='module')
def device_dls(tmp_path_factory):
    d = tmp_path_factory.mktemp('dev')
    root = make_fake_esc50(d / 'esc50', clips_per_fold=2, sr=16000, seconds=(1.0, 1.5))
    df = read_meta(root, full=False).rename(columns=dict(filename='file', category='label'))
    cache = load_or_build_cache(root / 'audio', df.file, d / 'cache', progress=False)
    return device_dataloaders(cache, df, 1, norm_tfms('channel', SPEC), bs=8, device='cpu'), df


def test_learner_fits_predicts_and_shows_batches(device_dls, tmp_path):
    dls, df = device_dls
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, len(dls.vocab)))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat())
    learn.fit(1, 1e-2)
    preds, targs = learn.get_preds()
    assert preds.shape == (int((df.fold == 1).sum()), len(dls.vocab)) and len(targs) == len(preds)
    assert [dls.vocab[int(t)] for t in targs] == list(df.label[df.fold == 1])      # fold 1's labels, in its order
    assert torch.allclose(preds.sum(1), torch.ones(len(preds)), atol=1e-5)        # probabilities
    dls.show_batch(max_n=4)
    plt.savefig(tmp_path / 'b.png'); plt.close('all')
    assert (tmp_path / 'b.png').stat().st_size > 1000


def test_valid_dl_shares_the_transforms_learned_on_train(device_dls):
    dls, _ = device_dls
    assert find_spec_normalize(dls.valid) is find_spec_normalize(dls.train) is not None
    assert dls.train.shuffle and dls.train.drop_last and not dls.valid.shuffle and not dls.valid.drop_last


def test_new_on_another_dataset_is_a_per_item_dl_with_the_same_transforms(device_dls):
    dls, df = device_dls
    assert isinstance(dls.valid.new(), DeviceDL) and isinstance(dls.valid.new(dls.valid.dataset), DeviceDL)
    test = dls.test_dl(df[df.fold == 1].iloc[:3], bs=2)                 # what `predict` builds
    assert type(test) is TfmdDL and test.after_batch.fs == dls.valid.after_batch.fs and test.device == dls.valid.device
    x, = test.one_batch()
    assert torch.allclose(x, dls.valid.one_batch()[0][:2], atol=1e-5)  # the same spectrograms as the device batches
    empty = dls.new_empty()                                            # what `Learner.export` pickles: no clips
    assert all(type(dl) is TfmdDL and len(dl.dataset) == 0 and not hasattr(dl, 'clips') for dl in empty.loaders)


def test_both_dataloaders_index_the_one_clips_tensor_without_copies(tmp_path):
    "The device pipeline holds the clips once per worker (not the cache and copies of the train and valid clips)"
    root = make_fake_esc50(tmp_path / 'esc50', clips_per_fold=1, sr=16000, seconds=(0.5, 0.5))
    df = read_meta(root, full=False).rename(columns=dict(filename='file', category='label'))
    cache = load_or_build_cache(root / 'audio', df.file, tmp_path / 'cache', decoding=Decoding(duration=0.5), progress=False)
    dls = device_dataloaders(cache, df, 1, bs=4, device='cpu')
    assert dls.train.clips.data_ptr() == dls.valid.clips.data_ptr() == cache.x.data_ptr()
    assert dls.valid.new().clips.data_ptr() == cache.x.data_ptr()
    x, y = dls.valid.one_batch()
    valid = df.index[df.fold == 1][:4]
    assert torch.equal(x.as_subclass(torch.Tensor), cache.x[cache.index(list(df.file[valid]))])
    import soundfile as sf                                  # and those clips are the files, read independently
    files = torch.stack([torch.from_numpy(sf.read(root / 'audio' / f, dtype='float32')[0][:8000]) for f in df.file[valid]])
    assert x.shape[-1] == 8000 and torch.allclose(x.as_subclass(torch.Tensor).reshape(len(valid), -1), files, atol=1e-6)
    assert [dls.vocab[int(c)] for c in y] == list(df.label[valid])
    with pytest.raises(ValueError, match='3 clips but 2 labels'):
        DeviceDL(clips=cache.x, index=torch.arange(3), labels=torch.arange(2))
