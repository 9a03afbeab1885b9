"A study: a preset's grid bound to its results folder and its data; it knows which runs are finished and runs one"
from __future__ import annotations
import json
from dataclasses import dataclass
from pathlib import Path

from ..atomic import make_folder, write_atomic, write_exclusive
from .claims import exclusive
from .device import pick_device
from .datasets import Dataset, check_training, get_dataset, subset_per_class
from .presets import Job, Preset
from .runs import RunFileError, RunTaken, check_dataset, mark_running, read_preset, read_run, record_run
from .train import load_study_data, release_memory, train_one

__all__ = ['Study']


def _precision(p: Preset) -> str:
    "A resolved preset's precision in words: 'bf16 + channels-last', 'fp32', ..."
    return ('bf16' if p.bf16 else 'fp32') + (' + channels-last' if p.channels_last else '')


_LOADED: dict = {}
"The decoded clips of the last study loaded in this process: an engine's worker runs many runs on the same data"


@dataclass
class Study:
    "A preset's grid bound to its results folder and its dataset: all that a worker, here or on another machine, needs"
    preset: Preset
    out: Path
    dataset: Dataset | None = None               # None: ESC-50 ($ESC50_PATH, else downloaded)
    cache_dir: str | None = None
    device: str | None = None
    save_models: bool = False

    def __post_init__(self):
        self.out = Path(self.out)
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file, not a results folder")
        self.dataset = self.dataset or get_dataset()
        # the device is checked where the runs train (it may be another machine); the dataset decides folds and clip
        # duration
        self.preset = self.preset.resolved(self.device or pick_device()).for_dataset(self.dataset)

    def file(self, job: Job, suffix: str) -> Path: return self.out / 'runs' / f"{job.id}{suffix}"

    def finished(self, job: Job) -> bool:
        "Whether `job`'s run file is there and readable (a damaged one is run again)"
        try: return bool(read_run(self.file(job, '.json')))
        except RunFileError: return False

    def todo(self, shard: tuple = (0, 1)) -> list:
        "The unfinished runs of shard `i` of `n` (every n-th run of the grid)"
        i, n = shard
        return [j for k, j in enumerate(self.preset.jobs()) if k % n == i and not self.finished(j)]

    def check(self):
        "Every validation fold of the grid leaves at least a batch of clips to train on: checked once, before any work"
        df = subset_per_class(self.dataset.meta(), self.preset.clips_per_class)
        check_training(df, self.preset.folds, self.preset.bs, self.dataset.name)

    def _same_recipe(self, old: Preset) -> Preset:
        "`old`, the folder's preset, when it has this study's dataset and recipe; else an error naming what differs"
        check_dataset(self.out, old.dataset, self.dataset)
        if old.training_hash() != self.preset.training_hash():
            new = self.preset.recipe()
            changed = sorted(k for k, v in old.recipe().items() if new.get(k) != v)
            changed += sorted(set(new) - set(old.recipe()))
            text = f"{self.out} holds runs of another recipe (changed: {changed})"
            if set(changed) <= {'bf16', 'channels_last'}: raise ValueError(f"{text}: {self._precision_advice(old)}")
            raise ValueError(f"{text}; use another --out folder")
        return old

    def _precision_advice(self, old: Preset) -> str:
        "The flags that resume `old`'s runs, of another precision, as recorded; on a CPU without native bf16, their cost"
        from ..precision import bf16_cost, native_bf16
        flags = ' '.join(f for f, on in (('--bf16', old.bf16), ('--channels-last', old.channels_last)) if on) or '--fp32'
        text = f"its runs are in {_precision(old)}, this study's would be in {_precision(self.preset)}"
        device = str(self.device or pick_device()).split(':')[0]
        if not old.bf16 or device != 'cpu' or native_bf16('cpu'):
            return f"{text}; {flags} resumes the folder as recorded (or use another --out folder)"
        cfg, n = self.preset.spec, int(round(self.preset.sr * self.preset.duration))
        shape = (min(self.preset.bs, 8), 1, cfg.n_freq, cfg.n_frames(n))
        return (f"{text}. This CPU has no native bf16 (neither avx512_bf16 nor amx_bf16 among its flags): {flags} "
                f"resumes the folder as recorded, in emulated bf16, where a training step of the preset's model on its "
                f"input ({'x'.join(map(str, shape[1:]))}, batches of {shape[0]}) takes {bf16_cost(shape):.1f}x as long "
                "as in fp32 (3 steps of each, timed just now); or use another --out folder")

    def prepare(self):
        "Claim the folder for this recipe and dataset, atomically (of two at once, one is refused); wider grids grow it"
        f = self.out / 'preset.json'
        make_folder(self.out / 'runs')
        if not f.is_file():                                    # a new folder: claim it, unless another study just did
            recorded = self.preset.update(dataset=self.dataset.describe())
            if write_exclusive(f, json.dumps(recorded.as_dict(), indent=1)): return
        with exclusive(self.out / '.preset.json.lock'):      # read, merge, write back: nobody grows it between
            old = self._same_recipe(read_preset(self.out))
            grown = old.grown(self.preset)
            if grown != old: write_atomic(f, json.dumps(grown.as_dict(), indent=1))

    def load_data(self, log=print):
        "The decoded clips, loaded once per process"
        key = (self.dataset.kind, self.dataset.fingerprint(), str(self.cache_dir), str(self.device),
               *(getattr(self.preset, k) for k in ('sr', 'duration', 'downmix', 'clips_per_class', 'pipeline')))
        if key not in _LOADED:
            _LOADED.clear()
            _LOADED[key] = load_study_data(self.preset, self.dataset, self.cache_dir, self.device, progress=False,
                                           log=log)
        return _LOADED[key]

    def run(self, job: Job, data=None, **note) -> dict:
        "Train one run and write its files (a note while it runs; the history, stats, model and row when it finishes)"
        job, data = Job(*job), data or self.load_data()
        running = mark_running(self.out, job, **note)      # another process's run in progress: RunTaken, nothing done
        if self.finished(job):
            running.unlink(missing_ok=True)
            raise RunTaken(f"{job.id} was finished by another process meanwhile: skipped")
        try:
            row, hist = train_one(self.preset, data, job, stats_file=self.file(job, '.stats.json'),
                                  model_file=self.file(job, '.pkl') if self.save_models else None)
        except BaseException:
            running.unlink(missing_ok=True)
            raise
        finally: release_memory(data.device)
        row = {**row, **note}
        record_run(self.out, row, hist)
        return row
