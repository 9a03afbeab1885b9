"fastai's interpretation tools on an audio Learner: each one the README names, on a tiny generated collection"
import contextlib
import io

import IPython.display
import matplotlib.pyplot as plt
import pytest
import torch
import fastai.callback.all  # noqa: F401 (patches Learner: no_bar, lr_find, tta)
from fastai.data.all import CategoryBlock, ColReader, DataBlock
from fastai.interpret import ClassificationInterpretation
from fastai.learner import Learner, load_learner
from fastai.metrics import accuracy
from torch import nn

import esc50_norm.spectrogram as spectrogram
from esc50_norm import AudioBlock, AudioNormalize, AudioSpectrogram, AudioToSpec, SpecNormalize, SpectrogramConfig
from esc50_norm.study import FoldSplitter, get_dataset
from fake_collections import CLASSES, make_esc50

pytestmark = pytest.mark.filterwarnings("ignore:load_learner` uses Python")      # a file this test wrote
SPEC = SpectrogramConfig(n_fft=256, hop_length=400, mel=True, n_mels=16)


@pytest.fixture(scope='module')
def learn(tmp_path_factory):
    "The README's DataBlock over 4 classes x 5 folds x 1 clip (0.1-0.4 s, 8-22.05 kHz), a tiny CNN fitted for one epoch"
    d = tmp_path_factory.mktemp('interp')
    root = make_esc50(d / 'esc50', per_fold=1)
    df = get_dataset(data=root, full=False).meta()
    dblock = DataBlock(blocks=(AudioBlock(sr=16000, duration=0.4), CategoryBlock),
                       get_x=ColReader('file', pref=f'{root}/audio/'), get_y=ColReader('label'),
                       splitter=FoldSplitter(valid_fold=1),
                       batch_tfms=[AudioNormalize(), AudioToSpec(SPEC), SpecNormalize('channel')])
    with contextlib.redirect_stdout(io.StringIO()) as out: dblock.summary(df)
    assert 'AudioSpectrogram of size 4x1x16x17' in out.getvalue()
    dls = dblock.dataloaders(df, bs=4, num_workers=0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, dls.c))
    learn = Learner(dls, model, metrics=accuracy, path=d)
    torch.manual_seed(0)
    with learn.no_bar(), learn.no_logging(): learn.fit(1)
    learn.root, learn.df = root, df
    return learn


def test_show_batch_and_show_results(learn):
    learn.dls.show_batch(max_n=4)
    titles = [a.get_title() for a in plt.gcf().axes if a.get_label() != '<colorbar>']
    assert len(titles) == 4 and set(titles) <= set(CLASSES)                                          # each clip's label
    plt.close('all')
    with learn.no_bar(): learn.show_results(max_n=4)
    axs = [a for a in plt.gcf().axes if a.get_label() != '<colorbar>']
    assert len(plt.get_fignums()) == 1 and len(axs) == 4                       # one grid, as fastai shows images
    for a in axs:                                                               # label over prediction, green if equal
        label, pred = a.get_title().split('\n')
        assert {label, pred} <= set(CLASSES) and a.title.get_color() == ('green' if label == pred else 'red')
    plt.close('all')


def test_confusion_matrix_most_confused_and_top_losses(learn, monkeypatch):
    with learn.no_bar(): interp = ClassificationInterpretation.from_learner(learn)
    interp.plot_confusion_matrix()
    cm = interp.confusion_matrix()
    assert sum(n for *_, n in interp.most_confused()) == cm.sum() - cm.trace()
    plt.close('all')
    with learn.no_bar():
        interp.plot_top_losses(3)
        _, preds, targs, decoded, losses = interp[interp.top_losses(3)[1]]
    vocab, axs = learn.dls.vocab, [a for a in plt.gcf().axes if a.get_label() != '<colorbar>']
    assert len(axs) == 3
    for ax, p, t, d, l in zip(axs, preds, targs, decoded, losses):             # label, prediction, loss, probability
        assert ax.get_title() == f"{vocab[int(t)]} / {vocab[int(d)]} / {l.item():.2f} / {p.max().item():.2f}"
    plt.close('all')
    shown = []                                                   # in a notebook each clip plays, captioned
    monkeypatch.setattr(spectrogram, 'in_notebook', lambda: True)
    monkeypatch.setattr(IPython.display, 'display', shown.append)
    with learn.no_bar(): interp.plot_top_losses(2)
    assert [type(o).__name__ for o in shown] == ['Markdown', 'Audio'] * 2
    plt.close('all')


def test_tta_lr_find_and_get_preds(learn, tmp_path):
    with learn.no_bar(), learn.no_logging():
        preds, tta_targs = learn.tta(n=2)
        assert preds.shape == (len(learn.dls.valid.dataset), len(CLASSES))
        probs, targs, decoded = learn.get_preds(with_decoded=True)
        # no transform of this DataBlock is random: the augmented passes are the plain one, and so is their blend
        assert torch.allclose(preds, probs, atol=1e-5) and torch.equal(tta_targs, targs)
        assert torch.equal(decoded, probs.argmax(1)) and torch.allclose(probs.sum(1), torch.ones(len(probs)))
        state = {k: v.clone() for k, v in learn.model.state_dict().items()}
        res = learn.lr_find(num_it=5, show_plot=False)
        lrs = learn.recorder.lrs                                    # the sweep it ran: rising from 1e-7, valley among them
        assert lrs[0] == pytest.approx(1e-7) and all(a < b for a, b in zip(lrs, lrs[1:]))
        assert min(lrs) <= res.valley <= max(lrs)
        assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in state.items())   # the weights restored
    plt.close('all')


def test_predict_export_load_learner_and_test_dl_over_paths(learn, tmp_path):
    files = [learn.root / 'audio' / f for f in learn.df.file[learn.df.fold == 1]]
    with learn.no_bar():
        cls, idx, probs = learn.predict(files[0])
        learn.export(tmp_path / 'model.pkl')
        back = load_learner(tmp_path / 'model.pkl')
        assert cls == back.predict(files[0])[0] and torch.allclose(back.predict(files[0])[2], probs, atol=1e-6)
        dl = back.dls.test_dl(files)
        x = dl.one_batch()[0]
        assert isinstance(x, AudioSpectrogram) and x.shape[0] == len(files)
        preds, _ = back.get_preds(dl=dl)
    assert torch.allclose(preds[0], probs, atol=1e-6) and preds.shape == (len(files), len(CLASSES))
