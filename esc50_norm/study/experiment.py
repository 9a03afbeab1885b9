"The normalization study: presets are data, one function trains one (fold, normalization, seed), the grid resumes"
from __future__ import annotations
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch
import fastai.callback.fp16, fastai.callback.progress, fastai.callback.schedule  # noqa: F401 (patch Learner)
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import default_device, set_seed
from fastai.vision.models.xresnet import xresnet18

from .cache import ClipCache, load_or_build_cache
from ..callback import find_spec_normalize
from .data import NORMALIZATIONS, esc50_dataloaders
from .esc50 import esc50_path, fold_split, read_meta, subset_per_class
from ..spectrogram import AudioConfig, SpectrogramConfig

__all__ = ['Preset', 'PRESETS', 'get_preset', 'run_id', 'train_one', 'StudyData', 'load_study_data', 'run_study',
           'read_results', 'expected_runs']


def _spec(**kw) -> dict: return AudioConfig.BasicSpectrogram(**kw).as_dict()


@dataclass
class Preset:
    "Everything that decides a study: the grid, the data, the spectrogram, the training recipe"
    name: str
    folds: tuple = (1,)
    normalizations: tuple = ('none', 'global', 'channel')
    seeds: tuple = (0, 1, 2, 3, 4)
    epochs: int = 20
    bs: int = 64
    lr: float = 1e-3
    spec: dict = field(default_factory=_spec)
    sr: int = 16000
    duration: float = 5.0
    downmix: str = 'sum'
    clips_per_class: int | None = None
    pipeline: str = 'device'
    bf16: bool = False
    channels_last: bool = False
    stats_frac: float = 1.0

    def __post_init__(self):
        self.folds, self.seeds = tuple(int(f) for f in self.folds), tuple(int(s) for s in self.seeds)
        self.normalizations = tuple(self.normalizations)
        unknown = [n for n in self.normalizations if n not in NORMALIZATIONS]
        if unknown: raise ValueError(f"unknown normalizations {unknown}; known: {list(NORMALIZATIONS)}")
        bad = [f for f in self.folds if f not in (1, 2, 3, 4, 5)]
        if bad: raise ValueError(f"fold(s) {bad} do not exist; ESC-50 folds are 1-5")

    @property
    def spec_cfg(self) -> SpectrogramConfig: return SpectrogramConfig(**self.spec)
    def as_dict(self) -> dict: return json.loads(json.dumps(asdict(self)))
    def update(self, **kwargs) -> Preset: return replace(self, **kwargs)
    def training_hash(self) -> str:
        "A hash of what decides one run's result (not the grid, not the pipeline that feeds the same data)"
        d = {k: v for k, v in self.as_dict().items() if k not in ('name', 'folds', 'normalizations', 'seeds', 'pipeline')}
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


PRESETS = {
    # the reference recipe: BasicSpectrogram 1x201x401, xResNet18 from scratch, bs 64, fit_one_cycle(20), fold 1, 5 seeds
    'blog': Preset('blog'),
    'cv': Preset('cv', folds=(1, 2, 3, 4, 5)),
    # separates waveform from spectrogram normalization, which the reference blog confounded
    'ablation': Preset('ablation', normalizations=tuple(NORMALIZATIONS)),
    # a real but small comparison for 2 CPU cores (about 7 minutes): 32 mel bins x 79 frames, 4 epochs, 3 seeds
    'quick': Preset('quick', seeds=(0, 1, 2), epochs=4, spec=_spec(n_fft=1024, hop_length=1024, mel=True, n_mels=32)),
    # the smallest run through the same code path, for CI
    'smoke': Preset('smoke', folds=(1, 2), seeds=(0,), epochs=1, bs=16, clips_per_class=1,
                    spec=_spec(n_fft=256, hop_length=2000, mel=True, n_mels=16)),
}


def get_preset(name: str, **overrides) -> Preset:
    "A preset by name, with any field overridden"
    try: p = PRESETS[name]
    except KeyError: raise ValueError(f"unknown preset {name!r}; known: {list(PRESETS)}") from None
    return p.update(**{k: v for k, v in overrides.items() if v is not None})


def run_id(fold: int, normalization: str, seed: int) -> str: return f"fold{fold}-{normalization}-seed{seed}"


class EpochTimer(Callback):
    "Record the wall time of every epoch"
    order = 100
    def before_fit(self): self.times = []
    def before_epoch(self): self._t = time.perf_counter()
    def after_epoch(self):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._t)


class ChannelsLast(Callback):
    "Feed the model `channels_last` inputs (the model is converted in `before_fit`)"
    order = 1
    def before_fit(self): self.learn.model.to(memory_format=torch.channels_last)
    def before_batch(self): self.learn.xb = tuple(x.contiguous(memory_format=torch.channels_last) for x in self.xb)


@dataclass
class StudyData:
    "Validated metadata, decoded clips and the device they sit on"
    df: pd.DataFrame
    cache: ClipCache
    root: Path
    device: torch.device


def load_study_data(preset: Preset, data=None, cache_dir=None, device=None, progress: bool = True,
                    full_data: bool = True) -> StudyData:
    "Find and validate ESC-50 (`full_data=False`: any ESC-50-shaped folder), take the preset's subset, cache the clips on `device`"
    root = esc50_path(data)
    df = subset_per_class(read_meta(root, full=full_data), preset.clips_per_class)
    cache = load_or_build_cache([root / 'audio' / f for f in df.filename], cache_dir, preset.sr, preset.duration,
                                preset.downmix, progress)
    device = torch.device(device) if device is not None else default_device()
    if preset.pipeline == 'device': cache = replace(cache, x=cache.x.to(device))
    return StudyData(df, cache, root, device)


def train_one(preset: Preset, data: StudyData, fold: int, normalization: str, seed: int,
              stats_file=None) -> tuple[dict, pd.DataFrame]:
    "Train xResNet18 from scratch on one fold, normalization and seed: a result row and the per-epoch history"
    fold_split(data.df, fold)                                   # an unknown fold fails here, before any work
    set_seed(seed, reproducible=True)
    t_setup = time.perf_counter()
    dls = esc50_dataloaders(data.df, fold, normalization, preset.spec_cfg, preset.bs, preset.pipeline, data.cache,
                            data.root, data.device, preset.stats_frac, preset.downmix, preset.duration)
    setup_s = time.perf_counter() - t_setup                      # DataLoaders, including the stats pass
    timer = EpochTimer()
    cbs = [timer] + ([ChannelsLast()] if preset.channels_last else [])
    learn = Learner(dls, xresnet18(pretrained=False, c_in=1, n_out=len(dls.vocab)), metrics=accuracy, cbs=cbs)
    if preset.bf16: learn.to_bf16()
    if data.device.type == 'cuda': torch.cuda.reset_peak_memory_stats(data.device)
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(preset.epochs, preset.lr)
    wall = time.perf_counter() - t0
    norm = find_spec_normalize(dls.train)
    if norm is not None and stats_file is not None: norm.save(stats_file, fold=fold, normalization=normalization)
    hist = pd.DataFrame(learn.recorder.values, columns=['train_loss', 'valid_loss', 'accuracy'])
    hist.insert(0, 'epoch', range(1, len(hist) + 1))
    hist['seconds'] = timer.times
    n_train = len(dls.train) * dls.train.bs
    row = dict(preset=preset.name, fold=fold, normalization=normalization, seed=seed,
               wave_norm=NORMALIZATIONS[normalization].wave, spec_norm=NORMALIZATIONS[normalization].spec or 'none',
               final_accuracy=float(hist.accuracy.iloc[-1]), best_accuracy=float(hist.accuracy.max()),
               best_epoch=int(hist.accuracy.idxmax()) + 1, final_valid_loss=float(hist.valid_loss.iloc[-1]),
               epochs=preset.epochs, setup_s=round(setup_s, 3), wall_s=round(wall, 3), s_per_epoch=round(wall / preset.epochs, 3),
               train_clips_per_s=round(n_train * preset.epochs / sum(timer.times), 1),
               n_train=len(dls.train.dataset), n_valid=len(dls.valid.dataset), **_environment(data.device),
               training_hash=preset.training_hash(), finished_at=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
               config=json.dumps(preset.as_dict(), sort_keys=True))
    return row, hist


def _environment(device: torch.device) -> dict:
    import fastai, torchaudio
    cuda = device.type == 'cuda'
    return dict(device=torch.cuda.get_device_name(device) if cuda else f"cpu ({os.cpu_count()} cores)",
                gpu_mem_peak_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if cuda else None,
                torch=torch.__version__, torchaudio=torchaudio.__version__, fastai=fastai.__version__,
                python=platform.python_version())


def _write_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


@contextlib.contextmanager
def _locked(out: Path):
    "An exclusive lock on the results folder, so shards sharing it write the CSV one at a time"
    with open(out / '.lock', 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try: yield
        finally: fcntl.flock(f, fcntl.LOCK_UN)


def read_results(out) -> pd.DataFrame:
    "Every finished run in `out`/runs as one tidy frame (one row per run)"
    rows = [json.loads(p.read_text()) for p in sorted((Path(out) / 'runs').glob('*.json')) if not p.name.endswith('.stats.json')]
    cols = ['preset', 'fold', 'normalization', 'seed']
    return pd.DataFrame(rows).sort_values(cols).reset_index(drop=True) if rows else pd.DataFrame(columns=cols)


def _record(out: Path, row: dict, hist: pd.DataFrame):
    "Save one finished run (history first, then the row that marks it done), then rewrite results.csv"
    rid = run_id(row['fold'], row['normalization'], row['seed'])
    with _locked(out):
        _write_atomic(out / 'runs' / f"{rid}.history.csv", hist.to_csv(index=False))
        _write_atomic(out / 'runs' / f"{rid}.json", json.dumps(row, indent=1))
        _write_atomic(out / 'results.csv', read_results(out).to_csv(index=False))


def expected_runs(preset: Preset) -> list:
    "Every (fold, normalization, seed) of the preset's grid"
    return [(f, n, s) for f in preset.folds for n in preset.normalizations for s in preset.seeds]


def _check_preset(out: Path, preset: Preset):
    "Record the preset next to the results; refuse a folder whose finished runs came from another recipe"
    f = out / 'preset.json'
    if f.exists():
        old = json.loads(f.read_text())
        if Preset(**old).training_hash() != preset.training_hash():
            changed = sorted(k for k in old if old[k] != preset.as_dict().get(k) and k not in ('folds', 'normalizations', 'seeds', 'name', 'pipeline'))
            raise ValueError(f"{out} holds runs of another recipe (changed: {changed}); use another --out folder")
    _write_atomic(f, json.dumps(preset.as_dict(), indent=1))


def run_study(preset: Preset, out, data=None, cache_dir=None, device=None, shard: tuple = (0, 1), log=print,
              full_data: bool = True) -> pd.DataFrame:
    "Run every unfinished (fold, normalization, seed) of `preset` (shard `i` of `n`), saving each as it finishes"
    out = Path(out)
    (out / 'runs').mkdir(parents=True, exist_ok=True)
    with _locked(out): _check_preset(out, preset)
    i, n = shard
    todo = [r for k, r in enumerate(expected_runs(preset)) if k % n == i]
    todo = [r for r in todo if not (out / 'runs' / f"{run_id(*r)}.json").exists()]
    log(f"{preset.name}: {len(todo)} runs to do in {out} (shard {i + 1}/{n}; finished runs are skipped)")
    if not todo: return read_results(out)
    t0 = time.perf_counter()
    sd = data if isinstance(data, StudyData) else load_study_data(preset, data, cache_dir, device, full_data=full_data)
    log(f"data ready in {time.perf_counter() - t0:.1f}s: {len(sd.df)} clips on {sd.device}")
    for k, (fold, norm, seed) in enumerate(todo, 1):
        row, hist = train_one(preset, sd, fold, norm, seed, stats_file=out / 'runs' / f"{run_id(fold, norm, seed)}.stats.json")
        _record(out, row, hist)
        log(f"[{k}/{len(todo)}] {run_id(fold, norm, seed)}: accuracy {row['final_accuracy']:.4f} "
            f"(best {row['best_accuracy']:.4f}) in {row['wall_s']:.1f}s")
    log(f"{preset.name}: {len(todo)} runs in {time.perf_counter() - t0:.1f}s")
    return read_results(out)
