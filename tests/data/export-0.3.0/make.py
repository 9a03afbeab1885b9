"Export two tiny learners with esc50_norm 0.3.0 (channel, minmax) and what they predict: tests/data/export-0.3.0"
import json, sys
from pathlib import Path
import torch
from torch import nn
from fastai.vision.all import *
from esc50_norm import *
from esc50_norm.study.demo import make_fake_esc50
from esc50_norm.study import read_meta
import esc50_norm
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
spec = dict(clips_per_fold=1, sr=16000, seconds=[0.5, 1.0])
root = make_fake_esc50(Path(sys.argv[2]), clips_per_fold=spec['clips_per_fold'], sr=spec['sr'], seconds=tuple(spec['seconds']))
df = read_meta(root, full=False)
clip = df.filename.iloc[0]
res = dict(version=esc50_norm.__version__, clip=clip, **spec)
for mode in ('channel', 'minmax'):
    set_seed(0, reproducible=True)
    dblock = DataBlock(blocks=(AudioBlock(sr=16000, duration=1.0), CategoryBlock),
                       get_x=ColReader('filename', pref=f'{root}/audio/'), get_y=ColReader('category'),
                       splitter=ColSplitter('is_valid'),
                       batch_tfms=[AudioNormalize(), AudioToSpec(AudioConfig.BasicMelSpectrogram(n_mels=16, hop_length=512)),
                                   SpecNormalize(mode)])
    dls = dblock.dataloaders(df.assign(is_valid=df.fold == 1), bs=8)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, dls.c))
    learn = Learner(dls, model, metrics=accuracy)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    learn.export(out / f'{mode}.pkl')
    res[mode] = learn.predict(root / 'audio' / clip)[2].tolist()
(out / 'predictions.json').write_text(json.dumps(res, indent=1))
print(res['version'], [p.name for p in out.iterdir()], [(p.stat().st_size) for p in out.iterdir()])
