"Reading a results folder: its runs, their histories, what is missing, how long the grid took, the machines it ran on"
from __future__ import annotations
from pathlib import Path

import numpy as np
import pandas as pd

from ..compat import run_starts
from ..presets import Preset
from ..runs import RunFileError, read_preset, read_results, read_run

__all__ = ['read_folder', 'folder_runs', 'nonempty_runs', 'missing_runs', 'read_histories', 'study_time', 'machines_table',
           'predates_machines', 'machine_of', 'recorded_machine']


def read_folder(out) -> tuple[Preset, pd.DataFrame]:
    "The preset and the finished runs of a results folder"
    return read_preset(out), read_results(out)


def folder_labels(folders) -> list:
    "Short names for results folders: their own names where those are unique"
    names = [Path(f).name for f in folders]
    return names if len(set(names)) == len(names) else [str(f) for f in folders]


def folder_runs(folders) -> dict:
    "The finished runs of each results folder, read once: label -> frame (the first is the reference)"
    return dict(zip(folder_labels(folders), (read_folder(f)[1] for f in folders)))


def nonempty_runs(folders, runs: dict | None, purpose: str) -> dict:
    "`runs` (else `folder_runs`) of `folders`, refusing, by name, any folder with no finished run: nothing `purpose`"
    runs = runs or folder_runs(folders)
    if empty := [str(f) for f, df in zip(folders, runs.values()) if not len(df)]:
        raise ValueError(f"{', '.join(empty)} {'holds' if len(empty) == 1 else 'hold'} no finished run yet: "
                         f"there is nothing of {'it' if len(empty) == 1 else 'them'} {purpose}")
    return runs


def missing_runs(df: pd.DataFrame, preset: Preset) -> list:
    "Runs of the preset's grid that have no result yet"
    done = set(zip(df.fold, df.normalization, df.seed)) if len(df) else set()
    return [j.id for j in preset.jobs() if tuple(j) not in done]


HISTORY_COLUMNS = ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'seconds']


def _read_history(f: Path, run: dict) -> pd.DataFrame:
    "One run's per-epoch history; a truncated or foreign one is a `RunFileError` naming it"
    try: h = pd.read_csv(f)
    except (OSError, ValueError) as e: raise RunFileError(f"history file {f} is damaged: {e}") from None
    if list(h.columns) != HISTORY_COLUMNS or len(h) != run.get('epochs', len(h)) or h.isna().any().any():
        raise RunFileError(f"history file {f} is damaged: expected {run.get('epochs')} epochs of {HISTORY_COLUMNS}, "
                           f"found {len(h)} rows of {list(h.columns)}")
    return h.assign(fold=run['fold'], normalization=run['normalization'], seed=run['seed'])


def read_histories(out) -> pd.DataFrame:
    "Every finished run's per-epoch history, with its fold, normalization and seed"
    parts = []
    for f in sorted((Path(out) / 'runs').glob('*.history.csv')):
        done = f.with_name(f.name.replace('.history.csv', '.json'))
        try: run = read_run(done)
        except RunFileError: continue                   # not finished (or damaged, and reported as such)
        parts.append(_read_history(f, run))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _busy_seconds(start: pd.Series, end: pd.Series) -> float:
    "Seconds in which at least one run was in progress: the length of the union of the [start, end] intervals"
    order = start.sort_values().index
    s, e = start[order], end[order]
    reach = e.cummax().shift()                          # the latest finish among the runs started before each one
    piece = (reach.isna() | (s > reach)).cumsum()       # a new piece: a run that starts after all earlier ones finished
    g = pd.DataFrame(dict(s=s, e=e)).groupby(piece)
    return float((g.e.max() - g.s.min()).dt.total_seconds().sum())


def study_time(df: pd.DataFrame) -> dict:
    "Wall time from the first run's start to the last run's finish, the time any run was in progress, the summed time"
    # a run's time: set-up + training; a grid run in pieces (--stop-after) has gaps in which nothing ran
    end = pd.to_datetime(df.finished_at, utc=True)
    start, estimated = run_starts(df)
    wall, busy = (end.max() - start.min()).total_seconds(), _busy_seconds(start, end)
    summed = (df.setup_s.astype(float) + df.wall_s.astype(float)).sum()
    return dict(wall_s=wall, busy_s=busy, summed_s=summed, runs=len(df), first_start=start.min(), last_finish=end.max(),
                estimated=estimated, parallel=summed / busy if busy > 0 else np.nan)




MACHINE_COLUMNS = ['device', 'cpu', 'cpu_bf16', 'cpu_amx', 'onednn', 'onednn_max_isa', 'threads', 'torch']
"What the run files say of the machine a run was made on (`precision.machine()` and the device, threads, torch)"


def machines_table(df: pd.DataFrame) -> pd.DataFrame:
    "The machines the runs `df` were made on, one row each with its run count; 'not recorded' where a run file predates"
    cols = [c for c in MACHINE_COLUMNS if c in df]
    m = df[cols].astype(object).where(df[cols].notna(), 'not recorded').astype(str)
    if 'onednn_max_isa' in m and 'cpu' in df:                  # recorded, and None: oneDNN's ISA was not capped
        m.loc[df.cpu.notna() & df.onednn_max_isa.isna(), 'onednn_max_isa'] = 'none'
    return m.value_counts(sort=False).rename('runs').reset_index().sort_values('runs', ascending=False, kind='stable')


def predates_machines(df: pd.DataFrame) -> bool:
    "Whether every run file of `df` predates the recording of the CPU (model, bf16, AMX, oneDNN)"
    return 'cpu' not in df or df.cpu.isna().all()


def _cpu_label(r) -> str:
    "A CPU as its run file names it: model, and its bf16 kind (two EPYCs differ in it)"
    model = r.get('cpu') if isinstance(r.get('cpu'), str) else 'model not recorded'
    kind = (', AMX' if r.get('cpu_amx') is True else ', native bf16' if r.get('cpu_bf16') is True
            else ', no native bf16' if r.get('cpu_bf16') is False else '')
    return f"CPU {model}{kind}"


def machine_of(df: pd.DataFrame) -> pd.Series:
    "The machine each run was made on, as its run file names it: the GPU, or the CPU's model and bf16 kind"
    device = (df.device.astype(object).where(df.device.notna(), 'not recorded').astype(str) if 'device' in df
              else pd.Series('not recorded', index=df.index))
    cpus = pd.Series([_cpu_label(r) for r in df.to_dict('records')], index=df.index, dtype=object)
    return device.where(~device.str.startswith('cpu'), cpus)


def recorded_machine(machine: pd.Series) -> pd.Series:
    "Whether each of `machine_of`'s names says which machine it was (not a run file from before that was recorded)"
    return ~machine.astype(str).str.contains('not recorded')
