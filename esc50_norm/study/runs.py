"The files of a results folder: preset.json, and one run file per finished run, written atomically"
# results.csv and every table derive from them
from __future__ import annotations
import functools
import json
import math
import os
import platform
import socket
import subprocess
import time
import warnings
from pathlib import Path

import pandas as pd

from ..atomic import write_atomic
from .claims import claim
from .compat import recorded_dataset
from .presets import Job, Preset

__all__ = ['PresetFileError', 'read_preset', 'same_dataset', 'check_dataset', 'reproduces', 'RunFileError',
           'read_run', 'damaged_runs', 'read_results', 'write_results_csv', 'record_run', 'RunTaken', 'mark_running',
           'running_runs', 'provenance', 'now']

KEYS = ['preset', 'fold', 'normalization', 'seed']


class PresetFileError(ValueError):
    "A results folder's preset.json that is damaged"


def read_preset(out) -> Preset:
    "The preset recorded in results folder `out`; a missing or damaged preset.json is an error naming it"
    f = Path(out) / 'preset.json'
    if Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(f"{out} is a file, not a results folder: give the --out folder of a study")
    if not Path(out).is_dir(): raise FileNotFoundError(f"{out} does not exist: give the --out folder of a study")
    if not f.is_file(): raise FileNotFoundError(f"{out} holds no preset.json: is it a results folder?")
    try: return Preset(**json.loads(f.read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise PresetFileError(f"{f} is damaged ({e}); move it away, or give `study` another --out folder") from None


def same_dataset(a: dict | None, b: dict | None) -> bool:
    """Whether two recorded datasets are one: the same fingerprint (the same clips, labels and folds, read as any kind),
    or, where one is not known, the same kind"""
    a, b = recorded_dataset(a), recorded_dataset(b)
    fa, fb = a['fingerprint'], b['fingerprint']
    return fa == fb if None not in (fa, fb) else a['kind'] == b['kind']


def check_dataset(out, recorded: dict | None, ds, advice: str = "use another --out folder"):
    "Refuse dataset `ds` for results folder `out` whose runs came from the `recorded` one (`same_dataset`), with `advice`"
    rec = recorded_dataset(recorded)
    if recorded is None and not getattr(ds, 'full', True):
        raise ValueError(f"{out} was recorded before datasets were, so it holds runs of the full ESC-50; a partial "
                         f"copy ({ds.name} at {ds.root}, --partial-data) goes in another --out folder")
    if not same_dataset(rec, dict(kind=ds.kind, name=ds.name, fingerprint=ds.fingerprint())):
        raise ValueError(f"{out} holds runs of dataset {rec['name']} "
                         f"({rec['kind']}, fingerprint {rec['fingerprint']}), "
                         f"not of {ds.name} ({ds.kind}, fingerprint {ds.fingerprint()}); {advice}")


def reproduces(out, committed) -> bool:
    "Whether results folder `out` repeats `committed`'s study: the same recipe (hash) on the same dataset"
    a, b = read_preset(out), read_preset(committed)
    return a.training_hash() == b.training_hash() and same_dataset(a.dataset, b.dataset)


class RunFileError(ValueError):
    "A run file (or its history) that is truncated or not what a run writes"


def now() -> str: return time.strftime('%Y-%m-%dT%H:%M:%S%z')


def run_files(out) -> list:
    "The files that mark finished runs: runs/<id>.json (not the .stats.json or .running.json beside them)"
    return sorted(p for p in (Path(out) / 'runs').glob('fold*-seed*.json') if p.name.count('.') == 1)


def read_run(path) -> dict:
    "One run file; a truncated or foreign one is a `RunFileError` naming it"
    try: row = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFileError(f"run file {path} is damaged: {e}") from None
    missing = [k for k in (*KEYS[1:], 'final_accuracy') if not isinstance(row, dict) or k not in row]
    if missing: raise RunFileError(f"run file {path} is damaged: it lacks {missing}")
    bad = {k: row[k] for k, ok in _VALUES.items() if k in row and not ok(row[k])}
    if bad: raise RunFileError(f"run file {path} is damaged: impossible values {bad}")
    return row


def _int(v) -> bool: return isinstance(v, int) and not isinstance(v, bool)
def _real(v) -> bool: return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
def _fraction(v) -> bool: return _real(v) and 0 <= v <= 1


_VALUES = dict(fold=lambda v: _int(v) and v >= 0, seed=_int, normalization=lambda v: isinstance(v, str) and v != '',
               final_accuracy=_fraction, best_accuracy=_fraction, setup_s=lambda v: _real(v) and v >= 0,
               wall_s=lambda v: _real(v) and v >= 0)
"What a run file's fields must hold (a run writes only finite accuracies in [0, 1]): anything else is a damaged file"


def damaged_runs(out) -> dict:
    "Run files that cannot be read: path -> why (such a run counts as not finished, and is run again)"
    bad = {}
    for p in run_files(out):
        try: read_run(p)
        except RunFileError as e: bad[p] = str(e)
    return bad


def read_results(out) -> pd.DataFrame:
    "Every finished run in `out`/runs as one tidy frame (one row per run); damaged run files are left out, named"
    # a warning names each damaged run file
    rows = []
    for p in run_files(out):
        try: rows.append(read_run(p))
        except RunFileError as e: warnings.warn(f"{e}; it is not counted as finished (the study runs it again)")
    return pd.DataFrame(rows).sort_values(KEYS).reset_index(drop=True) if rows else pd.DataFrame(columns=KEYS)


def write_results_csv(out) -> pd.DataFrame:
    "Rewrite `out`/results.csv from the run files (a derived table: any writer may do it, the last complete one wins)"
    df = read_results(out)
    write_atomic(Path(out) / 'results.csv', df.to_csv(index=False))
    return df


def record_run(out, row: dict, hist: pd.DataFrame):
    "Save one finished run: its history first, then the row that marks it done; then the derived results.csv"
    runs, job = Path(out) / 'runs', Job(row['fold'], row['normalization'], row['seed'])
    write_atomic(runs / f"{job.id}.history.csv", hist.to_csv(index=False))
    write_atomic(runs / f"{job.id}.json", json.dumps(row, indent=1, allow_nan=False))
    (runs / f"{job.id}.running.json").unlink(missing_ok=True)
    write_results_csv(out)


class RunTaken(RuntimeError):
    "A run that another process has claimed (and may still be running) or finished: this one skips it"


def mark_running(out, job: Job, **info) -> Path:
    "Claim `job` for this process (a note of host, pid, start time, made exclusively); the finished run replaces it"
    p = Path(out) / 'runs' / f"{job.id}.running.json"
    holder = claim(p, started_at=now(), **info)
    if holder is not None:
        who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else 'another process'
        raise RunTaken(f"{job.id} is in progress in {who} (since {holder.get('started_at', '?')}): skipped; "
                            f"remove {p} if that process is gone")
    return p


def running_runs(out) -> dict:
    "Runs that started but have not finished (in progress, or interrupted): id -> their note ({}: unreadable)"
    def note(p):
        try: return json.loads(p.read_text())
        except (OSError, ValueError): return {}
    return {p.name.removesuffix('.running.json'): note(p) for p in sorted((Path(out) / 'runs').glob('*.running.json'))}


def _git(*args) -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        return subprocess.run(['git', '-C', str(root), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError): return None


def environment() -> dict:
    "The machine and libraries a result may depend on: CPU, its bf16 and AMX, oneDNN, threads; torch, torchaudio, fastai"
    import fastai, torch, torchaudio
    from ..precision import machine
    return dict(**machine(), torch=torch.__version__, torchaudio=torchaudio.__version__, fastai=fastai.__version__)


@functools.lru_cache(maxsize=None)
def provenance() -> dict:
    "The package version, the git commit of its source tree and whether tracked files (results aside) had changes"
    from .. import __version__
    commit = (_git('rev-parse', 'HEAD') or '').strip() or os.environ.get('ESC50_NORM_GIT_COMMIT')
    status = _git('status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)results')
    dirty = ((status.strip() != '') if status is not None else
             {'1': True, '0': False}.get(os.environ.get('ESC50_NORM_GIT_DIRTY', '')))
    return dict(esc50_norm=__version__, git_commit=commit or None, git_dirty=dirty, host=socket.gethostname(),
                python=platform.python_version())
