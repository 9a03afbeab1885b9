"The study: one function trains one (fold, normalization, seed); a `Study` binds a preset to its results folder and data"
from __future__ import annotations
import gc
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch
import fastai.callback.fp16, fastai.callback.progress, fastai.callback.schedule  # noqa: F401 (patch Learner)
from fastai.callback.core import Callback
from fastai.callback.mixup import MixUp
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import default_device, set_seed
from fastai.vision.models.xresnet import xresnet18

from ..callback import find_spec_normalize
from .cache import ClipCache, load_or_build_cache
from .data import NORMALIZATIONS, esc50_dataloaders
from .esc50 import esc50_path, fold_split, read_meta, subset_per_class
from .presets import PRESETS, Preset, get_preset
from .runs import Job, mark_running, now, provenance, read_results, record_run, run_id, write_atomic, write_results_csv

__all__ = ['Preset', 'PRESETS', 'get_preset', 'Job', 'run_id', 'StudyData', 'load_study_data', 'train_one', 'Study',
           'run_study', 'read_results', 'expected_runs', 'resident_gib', 'release_memory']


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
                    full_data: bool = True, log=print) -> StudyData:
    "Find and validate ESC-50 (`full_data=False`: any ESC-50-shaped folder), take the preset's subset, cache the clips on `device`"
    root = esc50_path(data)
    df = subset_per_class(read_meta(root, full=full_data), preset.clips_per_class)
    cache = load_or_build_cache([root / 'audio' / f for f in df.filename], cache_dir, preset.sr, preset.duration,
                                preset.downmix, progress, log=log)
    device = torch.device(device) if device is not None else default_device()
    if preset.pipeline == 'device': cache = replace(cache, x=cache.x.to(device))
    return StudyData(df, cache, root, device)


def _dataloaders(preset: Preset, data: StudyData, fold: int, normalization: str):
    return esc50_dataloaders(data.df, fold, normalization, spec_cfg=preset.spec_cfg, bs=preset.bs, pipeline=preset.pipeline,
                             cache=data.cache, root=data.root, device=data.device, stats_frac=preset.stats_frac,
                             downmix=preset.downmix, duration=preset.duration, augment=preset.augmentation)


def train_one(preset: Preset, data: StudyData, job: Job, stats_file=None, model_file=None) -> tuple[dict, pd.DataFrame]:
    "Train xResNet18 from scratch on one fold, normalization and seed: a result row and the per-epoch history"
    preset = preset.resolved(data.device)
    fold, normalization, seed = job
    if fold: fold_split(data.df, fold)                          # an unknown fold fails here, before any work
    started = now()
    set_seed(seed, reproducible=True)
    t_setup = time.perf_counter()
    dls = _dataloaders(preset, data, fold, normalization)
    setup_s = time.perf_counter() - t_setup                      # DataLoaders, including the stats pass
    timer = EpochTimer()
    cbs = [timer] + ([ChannelsLast()] if preset.channels_last else []) + ([MixUp(preset.mixup)] if preset.mixup else [])
    learn = Learner(dls, xresnet18(pretrained=False, c_in=1, n_out=len(dls.vocab)), metrics=accuracy, cbs=cbs)
    if preset.bf16: learn.to_bf16()
    if data.device.type == 'cuda': torch.cuda.reset_peak_memory_stats(data.device)
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(preset.epochs, preset.lr)
    wall = time.perf_counter() - t0
    norm = find_spec_normalize(dls.train)
    if norm is not None and norm.learns_stats and stats_file is not None: norm.save(stats_file, fold=fold, normalization=normalization)
    if model_file is not None: _export(learn, model_file)
    hist = pd.DataFrame(learn.recorder.values, columns=['train_loss', 'valid_loss', 'accuracy'])
    hist.insert(0, 'epoch', range(1, len(hist) + 1))
    hist['seconds'] = timer.times
    n_train, n = len(dls.train) * dls.train.bs, NORMALIZATIONS[normalization]
    acc = hist.accuracy.astype(float)
    row = dict(preset=preset.name, fold=fold, normalization=normalization, seed=seed,
               wave_norm=n.wave, spec_norm=n.spec or 'none', mean_only=n.mean_only,
               final_accuracy=float(acc.iloc[-1]), best_accuracy=float(acc.max()),
               best_epoch=int(acc.idxmax()) + 1 if acc.notna().any() else None, final_valid_loss=float(hist.valid_loss.astype(float).iloc[-1]),
               epochs=preset.epochs, setup_s=round(setup_s, 3), wall_s=round(wall, 3), s_per_epoch=round(wall / preset.epochs, 3),
               train_clips_per_s=round(n_train * preset.epochs / sum(timer.times), 1),
               n_train=len(dls.train.dataset), n_valid=len(dls.valid.dataset), **_environment(data.device), **provenance(),
               training_hash=preset.training_hash(), started_at=started, finished_at=now(),
               config=json.dumps(preset.as_dict(), sort_keys=True))
    return row, hist


def _export(learn: Learner, path):
    "Export the trained learner (model, transforms with their stats, vocab) for `load_learner`, written atomically"
    path = Path(path).absolute()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    learn.export(tmp)
    tmp.replace(path)


def resident_gib() -> float | None:
    "This process's resident memory now, in GiB (Linux: /proc/self/status; elsewhere None)"
    try:
        with open('/proc/self/status') as f: kib = next(int(l.split()[1]) for l in f if l.startswith('VmRSS:'))
    except (OSError, StopIteration, ValueError): return None
    return kib / 2**20


def release_memory(device=None):
    "Free what a finished run left: its Learner and DataLoaders sit in reference cycles, and CUDA keeps freed blocks cached"
    gc.collect()
    if device is not None and torch.device(device).type == 'cuda': torch.cuda.empty_cache()


def _environment(device: torch.device) -> dict:
    import fastai, torchaudio
    cuda = device.type == 'cuda'
    rss = resident_gib()
    return dict(device=torch.cuda.get_device_name(device) if cuda else f"cpu ({os.cpu_count()} cores)",
                gpu_mem_peak_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if cuda else None,
                rss_gib=None if rss is None else round(rss, 3),
                torch=torch.__version__, torchaudio=torchaudio.__version__, fastai=fastai.__version__)


def expected_runs(preset: Preset) -> list:
    "Every (fold, normalization, seed) of the preset's grid"
    return [Job(f, n, s) for f in preset.folds for n in preset.normalizations for s in preset.seeds]


_DATA: dict = {}

@dataclass
class Study:
    "A preset's grid bound to its results folder and its data: all that a worker, here or on another machine, needs"
    preset: Preset
    out: Path
    data: str | None = None
    cache_dir: str | None = None
    device: str | None = None
    full_data: bool = True
    save_models: bool = False

    def __post_init__(self):
        self.out = Path(self.out)
        self.preset = self.preset.resolved(self.device or default_device())

    def file(self, job: Job, suffix: str) -> Path: return self.out / 'runs' / f"{job.id}{suffix}"
    def finished(self, job: Job) -> bool: return self.file(job, '.json').exists()

    def todo(self, shard: tuple = (0, 1)) -> list:
        "The unfinished runs of shard `i` of `n` (every n-th run of the grid)"
        i, n = shard
        return [j for k, j in enumerate(expected_runs(self.preset)) if k % n == i and not self.finished(j)]

    def prepare(self):
        "Create the folder and record the preset (a wider grid grows it); refuse a folder whose runs came from another recipe"
        (self.out / 'runs').mkdir(parents=True, exist_ok=True)
        f, recorded = self.out / 'preset.json', self.preset
        if f.exists():
            old = Preset(**json.loads(f.read_text()))
            if old.training_hash() != self.preset.training_hash():
                new = self.preset.recipe()
                changed = sorted(k for k, v in old.recipe().items() if new.get(k) != v) + sorted(set(new) - set(old.recipe()))
                raise ValueError(f"{self.out} holds runs of another recipe (changed: {changed}); use another --out folder"
                                 + (" (or --fp32 to resume fp32 runs)" if {'bf16', 'channels_last'} & set(changed) else ""))
            recorded = old.update(**{k: tuple(dict.fromkeys(getattr(old, k) + getattr(self.preset, k)))
                                     for k in ('folds', 'normalizations', 'seeds')})
            if recorded == old: return
        write_atomic(f, json.dumps(recorded.as_dict(), indent=1))

    def load_data(self, log=print) -> StudyData:
        "The decoded clips, loaded once per process"
        key = (self.data, str(self.cache_dir), str(self.device), self.full_data,
               *(getattr(self.preset, k) for k in ('sr', 'duration', 'downmix', 'clips_per_class', 'pipeline')))
        if key not in _DATA:
            _DATA.clear()
            _DATA[key] = load_study_data(self.preset, self.data, self.cache_dir, self.device, progress=False,
                                         full_data=self.full_data, log=log)
        return _DATA[key]

    def run(self, job: Job, data: StudyData | None = None, **note) -> dict:
        "Train one run and write its files (a note while it runs; the history, stats, model and row when it finishes)"
        job = Job(*job)
        data = data or self.load_data()
        running = mark_running(self.out, job, **note)
        try:
            row, hist = train_one(self.preset, data, job, stats_file=self.file(job, '.stats.json'),
                                  model_file=self.file(job, '.pkl') if self.save_models else None)
        except Exception: running.unlink(missing_ok=True); raise
        finally: release_memory(data.device)
        row = {**row, **note}
        record_run(self.out, row, hist)
        return row


def run_study(study: Study, shard: tuple = (0, 1), engine=None, log=print) -> pd.DataFrame:
    "Run every unfinished run of `study` (shard `i` of `n`) on `engine` (default: here, one run after another)"
    from .engines import InProcess
    study.prepare()
    todo = study.todo(shard)
    i, n = shard
    log(f"{study.preset.name}: {len(todo)} runs to do in {study.out} (shard {i + 1}/{n}; finished runs are skipped)")
    if todo:
        t0 = time.perf_counter()
        failed = (engine or InProcess()).run(study, todo, log)
        log(f"{study.preset.name}: {sum(map(study.finished, todo))} of {len(todo)} runs finished in {time.perf_counter() - t0:.1f}s"
            + (f"; failed: {', '.join(j.id for j in failed)}" if failed else ""))
    return write_results_csv(study.out)
