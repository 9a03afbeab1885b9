"""Why old results folders still read: the shims that run files and folders of earlier versions need, in one place.

The committed results (`results/`) were made before some fields existed. Rather than rewrite those files (they are
data), the study reads them as they are, through the functions here:
- run files from before start times were recorded get a start estimated from finish time minus run time
  (`run_starts`);
- results folders from before datasets were described hold ESC-50 runs (`recorded_dataset`);
- run files from before package version and git commit were recorded have no provenance (`predates_provenance`).
The library's files (stats files, exported models, recipe fields added later): `esc50_norm.compat`.
"""
from __future__ import annotations

__all__ = ['run_starts', 'recorded_dataset', 'predates_provenance']


def run_starts(df):
    "Each run's start time: recorded, or (run files from before start times were recorded) finish time minus run time"
    import pandas as pd
    end = pd.to_datetime(df.finished_at, utc=True)
    per_run = df.setup_s.astype(float) + df.wall_s.astype(float)
    recorded = pd.to_datetime(df.started_at, utc=True) if 'started_at' in df else pd.Series(pd.NaT, index=df.index)
    return recorded.fillna(end - pd.to_timedelta(per_run, unit='s')), bool(recorded.isna().any())


def predates_provenance(df) -> bool:
    "Whether run files (a frame of them) are from before package version and git commit were recorded"
    return 'git_commit' not in df


def recorded_dataset(d: dict | None) -> dict:
    "The dataset a results folder records; folders from before datasets were described hold ESC-50 runs"
    # (their fingerprint unknown)
    return d if d is not None else dict(kind='esc50', name='esc50', fingerprint=None)
