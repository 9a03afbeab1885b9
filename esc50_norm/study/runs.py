"Run files: each finished run is its own files, written atomically; results.csv and every table are derived from them"
from __future__ import annotations
import functools
import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pandas as pd

__all__ = ['Job', 'run_id', 'write_atomic', 'read_results', 'write_results_csv', 'record_run', 'mark_running',
           'running_runs', 'provenance', 'now']

KEYS = ['preset', 'fold', 'normalization', 'seed']


def run_id(fold: int, normalization: str, seed: int) -> str: return f"fold{fold}-{normalization}-seed{seed}"


class Job(NamedTuple):
    "One run of a grid"
    fold: int
    normalization: str
    seed: int
    @property
    def id(self) -> str: return run_id(*self)


def now() -> str: return time.strftime('%Y-%m-%dT%H:%M:%S%z')


def write_atomic(path: Path, text: str):
    "Write `text` to a temporary file beside `path` and rename it: readers see the old file or the new one, never half"
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _run_files(out) -> list:
    "The files that mark finished runs: runs/<id>.json (not the .stats.json or .running.json beside them)"
    return sorted(p for p in (Path(out) / 'runs').glob('fold*-seed*.json') if p.name.count('.') == 1)


def read_results(out) -> pd.DataFrame:
    "Every finished run in `out`/runs as one tidy frame (one row per run)"
    rows = [json.loads(p.read_text()) for p in _run_files(out)]
    return pd.DataFrame(rows).sort_values(KEYS).reset_index(drop=True) if rows else pd.DataFrame(columns=KEYS)


def write_results_csv(out) -> pd.DataFrame:
    "Rewrite `out`/results.csv from the run files (a derived table: any writer may do it, the last complete one wins)"
    df = read_results(out)
    write_atomic(Path(out) / 'results.csv', df.to_csv(index=False))
    return df


def record_run(out, row: dict, hist: pd.DataFrame):
    "Save one finished run: its history first, then the row that marks it done; then the derived results.csv"
    runs = Path(out) / 'runs'
    rid = run_id(row['fold'], row['normalization'], row['seed'])
    write_atomic(runs / f"{rid}.history.csv", hist.to_csv(index=False))
    write_atomic(runs / f"{rid}.json", json.dumps(row, indent=1))
    (runs / f"{rid}.running.json").unlink(missing_ok=True)
    write_results_csv(out)


def mark_running(out, job: Job, **info) -> Path:
    "Note that `job` has started here (host, pid, start time); the finished run's files replace the note"
    p = Path(out) / 'runs' / f"{job.id}.running.json"
    write_atomic(p, json.dumps(dict(host=socket.gethostname(), pid=os.getpid(), started_at=now(), **info)))
    return p


def running_runs(out) -> dict:
    "Runs that started but have not finished (in progress, or interrupted): id -> their note"
    return {p.name.removesuffix('.running.json'): json.loads(p.read_text())
            for p in sorted((Path(out) / 'runs').glob('*.running.json'))}


def _git(*args) -> str | None:
    root = Path(__file__).resolve().parents[2]
    try: return subprocess.run(['git', '-C', str(root), *args], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError): return None


@functools.lru_cache(maxsize=None)
def provenance() -> dict:
    "The package version, the git commit of its source tree and whether tracked files (results aside) had changes"
    from .. import __version__
    commit = (_git('rev-parse', 'HEAD') or '').strip() or os.environ.get('ESC50_NORM_GIT_COMMIT')
    status = _git('status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)results')
    dirty = (status.strip() != '') if status is not None else {'1': True, '0': False}.get(os.environ.get('ESC50_NORM_GIT_DIRTY', ''))
    return dict(esc50_norm=__version__, git_commit=commit or None, git_dirty=dirty, host=socket.gethostname(),
                python=platform.python_version())
