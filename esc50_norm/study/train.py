"One run: xResNet18 trained from scratch on one (fold, normalization, seed), a result row and a per-epoch history"
from __future__ import annotations
import gc
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
import fastai.callback.fp16, fastai.callback.progress, fastai.callback.schedule  # noqa: F401 (patch Learner)
from fastai.callback.core import Callback
from fastai.callback.mixup import MixUp
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from fastai.vision.models.xresnet import xresnet18

from ..atomic import write_atomic
from ..compat import old_names
from ..normalize import find_spec_normalize
from ..precision import BF16Autocast, ChannelsLastInput
from .cache import ClipCache, load_or_build_cache
from .device import pick_device
from .datasets import Dataset, fold_split, subset_per_class
from .normalizations import Arm, pcen_module
from .pipelines import pipeline_dataloaders
from .presets import Job, Preset
from .runs import environment, now, provenance

__all__ = ['model_for', 'StudyData', 'load_study_data', 'start_run', 'train_one', 'resident_gib', 'release_memory']


class EpochTimer(Callback):
    "Record the wall time of every epoch (`times`) and of its training phase alone (`train_times`, validation left out)"
    order = 100
    def before_fit(self): self.times, self.train_times = [], []
    def before_epoch(self): self._t = time.perf_counter()
    def before_train(self): self._t_train = time.perf_counter()
    def after_train(self): self.train_times.append(self._since(self._t_train))
    def after_epoch(self): self.times.append(self._since(self._t))
    def _since(self, t0: float) -> float:
        if torch.cuda.is_available(): torch.cuda.synchronize()
        return time.perf_counter() - t0


class FiniteLoss(Callback):
    "Fail the run when the training loss stops being finite, checked once per epoch (no GPU sync per batch)"
    order = 90
    def before_epoch(self): self.bad = None
    def after_loss(self):
        if not self.training: return
        bad = ~torch.isfinite(self.loss.detach())
        self.bad = bad if self.bad is None else self.bad | bad
    def after_train(self):
        if self.bad is not None and bool(self.bad.any()):
            raise FloatingPointError(f"the training loss became NaN or infinite in epoch {self.epoch + 1}: "
                                     "the run is failed, not recorded")


@dataclass
class StudyData:
    "A dataset, its validated metadata (the preset's subset), the decoded clips and their device"
    # the metadata's columns: file, label, fold
    dataset: Dataset
    df: pd.DataFrame
    cache: ClipCache
    device: torch.device

    def dataloaders(self, valid_fold: int, batch_tfms: list, bs: int, pipeline: str):
        "DataLoaders of these clips for one validation fold, their batches through `batch_tfms`, by `pipeline`"
        fold_split(self.df, valid_fold)                      # an unknown fold fails here, before any work
        return pipeline_dataloaders(self.df, valid_fold, batch_tfms, bs, pipeline, self.cache, self.dataset.audio_root,
                                    self.device)


def load_study_data(preset: Preset, dataset: Dataset, cache_dir=None, device=None, progress: bool = True,
                    log=print) -> StudyData:
    "The preset's subset of the dataset's clips, decoded once (cached) at the preset's rate and duration, on `device`"
    device = pick_device(device)
    if preset.duration is None: preset = preset.for_dataset(dataset, log=log)
    df = subset_per_class(dataset.meta(), preset.clips_per_class)
    cache = load_or_build_cache(dataset.audio_root, df.file, cache_dir, preset.decoding, progress, log=log,
                                name=dataset.name)
    if preset.pipeline == 'device': cache = replace(cache, x=cache.x.to(device))
    return StudyData(dataset, df, cache, device)


def start_run(preset: Preset, data: StudyData, job: Job) -> tuple[Arm, DataLoaders, nn.Module]:
    "What a run of `job` starts from, seeded as it is: its arm, its DataLoaders and the untrained network"
    fold, normalization, seed = job
    set_seed(seed, reproducible=True)
    arm = preset.arm(normalization)                           # what the pipeline, the model and the row need
    dls = data.dataloaders(fold, arm.tfms, preset.bs, preset.pipeline)
    if len(dls.train) == 0:
        raise ValueError(f"{job.id}: the training folds hold {len(dls.train.dataset)} clips, "
                         f"fewer than one batch of {preset.bs} (the last, incomplete batch is dropped): lower --bs")
    return arm, dls, model_for(arm, len(dls.vocab))


def train_one(preset: Preset, data: StudyData, job: Job, stats_file=None, model_file=None) -> tuple[dict, pd.DataFrame]:
    "Train xResNet18 from scratch on one fold, normalization and seed of `preset`, resolved for `data.device`"
    # returns a result row and the per-epoch history
    (fold, normalization, seed), training_hash = job, preset.training_hash()     # an unresolved preset fails here
    started, made_from = now(), provenance()       # the commit of the code as the process's first run starts
    t_setup = time.perf_counter()
    arm, dls, model = start_run(preset, data, job)
    setup_s = time.perf_counter() - t_setup                      # DataLoaders, including the stats pass, and the model
    timer = EpochTimer()
    cbs = ([timer, FiniteLoss()] + ([ChannelsLastInput()] if preset.channels_last else [])
           + ([MixUp(preset.mixup)] if preset.mixup else []))
    learn = Learner(dls, model, metrics=accuracy, cbs=cbs)
    bf16 = BF16Autocast() if preset.bf16 else None           # CUDA: fastai's MixedPrecision; CPU: CPU autocast
    if bf16: learn.add_cb(bf16)
    if data.device.type == 'cuda': torch.cuda.reset_peak_memory_stats(data.device)
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(preset.epochs, preset.lr)
    wall = time.perf_counter() - t0
    hist = pd.DataFrame(learn.recorder.values, columns=['train_loss', 'valid_loss', 'accuracy'])
    hist.insert(0, 'epoch', range(1, len(hist) + 1))
    hist['seconds'] = timer.times
    losses = hist[['train_loss', 'valid_loss']].astype(float) if fold else hist[['train_loss']].astype(float)
    if not np.isfinite(losses.to_numpy()).all():
        raise FloatingPointError(f"{job.id}: a loss is NaN or infinite ({losses.iloc[-1].to_dict()}): "
                                 "the run is failed, not recorded")
    n_train, n = len(dls.train) * dls.train.bs, arm.normalization
    acc = hist.accuracy.astype(float)
    row = dict(preset=preset.name, fold=fold, normalization=normalization, seed=seed,
               wave_norm=n.wave, spec_norm=n.spec_norm, mean_only=n.mean_only,
               final_accuracy=float(acc.iloc[-1]), best_accuracy=float(acc.max()),
               best_epoch=int(acc.idxmax()) + 1 if acc.notna().any() else None,
               final_valid_loss=float(hist.valid_loss.astype(float).iloc[-1]),
               epochs=preset.epochs, setup_s=round(setup_s, 3), wall_s=round(wall, 3),
               s_per_epoch=round(wall / preset.epochs, 3),
               train_clips_per_s=round(n_train * preset.epochs / sum(timer.train_times), 1),
               n_train=len(dls.train.dataset), n_valid=len(dls.valid.dataset), dataset=data.dataset.name,
               dataset_kind=data.dataset.kind, dataset_fingerprint=data.dataset.fingerprint(),
               **_environment(data.device, bf16), **made_from,
               training_hash=training_hash, started_at=started, finished_at=now(),
               config=json.dumps(preset.as_dict(), sort_keys=True), **frontend_params(learn.model))
    save_outputs(learn, job, stats_file, model_file)
    return row, hist


def save_outputs(learn: Learner, job: Job, stats_file=None, model_file=None):
    "Write a trained run's stats (when its normalization learns them) and its exported model, where asked"
    norm = find_spec_normalize(learn.dls.train)
    if norm is not None and norm.learns_stats and stats_file is not None:
        norm.save(stats_file, fold=job.fold, normalization=job.normalization)
    if model_file is not None: export(learn, model_file)


def model_for(arm: Arm, n_out: int) -> nn.Module:
    "xResNet18 from scratch (1 input channel), behind the front end of `arm` when it has one"
    body = xresnet18(pretrained=False, c_in=1, n_out=n_out)
    front = arm.frontend()
    return body if front is None else nn.Sequential(front, body)


def frontend_params(model: nn.Module) -> dict:
    """`frontend_params`: the values a trained PCEN front end uses (`constrained()`, per band, as JSON), where the model
    has one (the front end, or its first module that is one); else nothing"""
    front = pcen_module(model[0] if isinstance(model, nn.Sequential) else None)
    if front is None: return {}
    values = {k: [float(f"{x:.6g}") for x in v.detach().float().cpu().tolist()] for k, v in front.constrained().items()}
    return dict(frontend_params=json.dumps(values))


def export(learn: Learner, path) -> Path:
    "Export the trained learner (model, transforms with their stats, vocab) for `load_learner`, written atomically"
    return write_atomic(Path(path).absolute(), learn.export)


def resident_gib() -> float | None:
    "This process's resident memory now, in GiB (Linux: /proc/self/status; elsewhere None)"
    try:
        with open('/proc/self/status') as f: kib = next(int(l.split()[1]) for l in f if l.startswith('VmRSS:'))
    except (OSError, StopIteration, ValueError): return None
    return kib / 2**20


def release_memory(device=None):
    "Free what a finished run left: its Learner and DataLoaders sit in reference cycles, CUDA keeps freed blocks cached"
    gc.collect()
    if device is not None and torch.device(device).type == 'cuda': torch.cuda.empty_cache()


def _environment(device: torch.device, bf16: BF16Autocast | None = None) -> dict:
    "The machine and libraries of a run; `bf16_fp32_convs`: the convolutions the CPU bf16 guard ran in fp32 (None: no guard)"
    cuda, rss = device.type == 'cuda', resident_gib()
    fp32_convs = None if bf16 is None else bf16.fp32_convs
    return dict(device=torch.cuda.get_device_name(device) if cuda else f"cpu ({os.cpu_count()} cores)",
                gpu_mem_peak_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if cuda else None,
                rss_gib=None if rss is None else round(rss, 3), **environment(),
                bf16_fp32_convs=None if fp32_convs is None else ', '.join(fp32_convs))


__getattr__ = old_names(__name__)         # the names older exports pickled (`esc50_norm.compat.RENAMED`)
