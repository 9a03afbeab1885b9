"Folders of one recipe read as one grid: the runs each adds, what the runs both hold say, and what else a pair changes"
from __future__ import annotations
from pathlib import Path

import pandas as pd

from ...atomic import write_atomic
from ...spelling import plural
from ..runs import read_preset
from .folders import folder_labels, folder_runs, machine_of, nonempty_runs, read_folder
from .sections import (data_line, incomplete_notes, md_table, one_machine_section, provenance, recipe_line,
                       setup_differences, verdict_section)
from .statistics import (METRIC, fold_effects, fold_span, fold_table, in_study_order, summary_note, summary_table,
                         what_else_changes)
from .verdicts import VERDICT_MARGIN, grid_verdicts, verdict_table

__all__ = ['check_poolable', 'pooled_runs', 'pool_homes', 'compare_runs', 'pooled_verdicts', 'pooled_report',
           'write_pooled_report']


def check_poolable(folders) -> None:
    "Folders pool only when they hold one recipe of one dataset: else a `ValueError` naming the folder and what differs"
    unlike = setup_differences(folders)
    if unlike:
        raise ValueError(f"{'; '.join(unlike)}: only folders of one recipe and one dataset pool into one grid; "
                         "`esc50-norm compare` sets unlike folders side by side")


KEYS = ['fold', 'normalization', 'seed']


def _both_held(first: pd.DataFrame, later: pd.DataFrame, metric: str) -> pd.Series:
    "`later - first` in `metric` for the runs (fold, normalization, seed) both hold"
    m = first[KEYS + [metric]].merge(later[KEYS + [metric]], on=KEYS, suffixes=('_first', '_later'))
    return (m[f"{metric}_later"] - m[f"{metric}_first"]).set_axis(pd.MultiIndex.from_frame(m[KEYS]))


def pooled_runs(folders, runs: dict | None = None, metric: str = METRIC) -> tuple[pd.DataFrame, dict]:
    """The runs of `folders` (one recipe: `check_poolable`) as one grid: the first folder's runs, then each later
    folder's runs that no earlier one holds; columns `folder` and `machine` say where each came from. Also, per later
    folder, `later - earlier` in `metric` over the runs both hold (those are not pooled twice)"""
    check_poolable(folders)
    runs = nonempty_runs(folders, runs, 'to pool')
    parts, repeats = [], {}
    for name, df in runs.items():
        df = df.assign(folder=name, machine=machine_of(df))
        if parts:
            held = pd.concat(parts)
            repeats[name] = _both_held(held, df, metric)
            df = df[~pd.MultiIndex.from_frame(df[KEYS]).isin(pd.MultiIndex.from_frame(held[KEYS]))]
        parts.append(df)
    return pd.concat(parts, ignore_index=True), repeats


def pool_homes(folders, pool) -> list:
    """`(folder, [pool folders])` for each of `folders`: each folder of `pool` pools into the first of `folders` that
    holds its recipe and dataset (`check_poolable`), else a `ValueError` naming it, before any run is read"""
    homes = [(f, []) for f in folders]
    for p in pool:
        home = next((extra for f, extra in homes if not setup_differences([f, p])), None)
        if home is None:
            raise ValueError(f"{p} holds the recipe and dataset of none of {', '.join(map(str, folders))} "
                             f"({'; '.join(setup_differences([folders[0], p]))}): only folders of one recipe and "
                             "one dataset pool into one grid; `esc50-norm compare` sets unlike folders side by side")
        home.append(p)
    return homes


def compare_runs(folders, pool=(), homes: list | None = None) -> dict:
    """`folder_runs(folders)`, but with each folder of `pool` pooled into the first of `folders` of its recipe
    (`pool_homes`, or `homes` when already found), under the label `folder+pool…`: arms run apart, for `compare`"""
    if not pool and not homes: return folder_runs(folders)
    homes = homes or pool_homes(folders, pool)
    return {'+'.join([label, *(Path(x).name for x in extra)]): pooled_runs([f, *extra])[0] if extra
            else read_folder(f)[1] for (f, extra), label in zip(homes, folder_labels(folders))}


def pooled_verdicts(folders, margin: float = VERDICT_MARGIN) -> pd.DataFrame:
    "The verdict table of `folders` pooled (`pooled_runs`), as `folder_verdicts` gives one folder's"
    return verdict_table(pooled_runs(folders)[0], margin=margin)


def _sources(df: pd.DataFrame) -> pd.DataFrame:
    "Per normalization, the folder and machine its runs come from, with their folds and count"
    g = in_study_order(df).groupby(['normalization', 'folder', 'machine'], sort=False)
    return g.agg(folds=('fold', fold_span), runs=('fold', 'size')).reset_index().set_index('normalization')


def _repeat_lines(repeats: dict, metric: str) -> list:
    "One line per later folder: how many of its runs an earlier folder holds, and whether the two agree"
    lines = []
    for name, d in repeats.items():
        if not len(d):
            lines.append(f"- `{name}` holds no run that an earlier folder holds.")
            continue
        gap = float(d.abs().max())
        agree = "equal to the last digit" if gap == 0 else f"differing by up to {gap:.4f} (mean {d.mean():+.4f})"
        are, their = ('is', 'its') if len(d) == 1 else ('are', 'their')
        lines.append(f"- {plural(len(d), 'run')} of `{name}` {are} also in an earlier folder, {their} {metric} {agree}; "
                     f"the earlier folder's {are} pooled.")
    return lines


def _commit_lines(labels, runs: dict) -> list:
    "One line per folder: the package version and commits its runs were made at (a pair across folders changes them)"
    return ["The package and commit of each folder's runs (a pair across folders changes them too):", "",
            *(f"- `{n}`: {provenance(df)}" for n, df in zip(labels, runs.values()))]


def pooled_report(folders, margin: float = VERDICT_MARGIN, runs: dict | None = None) -> str:
    "Markdown: folders of one recipe pooled into one grid, with its verdicts and what else each contrast changes"
    runs = runs or folder_runs(folders)
    df, repeats = pooled_runs(folders, runs)
    labels, preset = folder_labels(folders), read_preset(folders[0])
    tests = grid_verdicts(df, margin=margin)
    changes = what_else_changes(df)
    mixed = [c for c, r in changes.iterrows() if r.across_machines]
    lines = [f"# Pooled: {' with '.join(f'`{n}`' for n in labels)}", "",
             f"The runs of {' and '.join(f'`{n}`' for n in labels)} as one grid: one recipe (training hash "
             f"{preset.training_hash()}) on one dataset, so a run of one folder pairs with a run of another on "
             "(fold, seed). The first folder's runs, then each later folder's that no earlier one holds:", "",
             *_repeat_lines(repeats, METRIC), ""]
    notes = incomplete_notes(folders, runs, [f'`{n}`' for n in labels])
    lines += [x for note in notes for x in (note, "")] + [recipe_line(preset), ""]
    lines += [data_line(preset.dataset), ""] if preset.dataset else []
    lines += ["## Where the runs come from", "", md_table(_sources(df)), "", *_commit_lines(labels, runs), "",
              "## Accuracy per normalization", "", md_table(summary_table(df)), "", summary_note(), "",
              "## Accuracy per fold (mean over seeds)", "", md_table(fold_table(df)), "",
              *verdict_section(tests, fold_effects(df)),
              "## What else each contrast changes", "",
              "A pair whose two runs were made on two machines changes the machine as well as the normalization "
              "(`across_machines`; the machines of each side after it). Contrasts with such pairs: "
              f"{', '.join(f'`{c}`' for c in mixed) or 'none'}.", "", md_table(changes), "",
              *one_machine_section(df, tests, margin)]
    return '\n'.join(lines)


def write_pooled_report(folders, margin: float = VERDICT_MARGIN) -> Path:
    "Write the pooled report of `folders` into the first, as with-<the others, joined by +>.md; returns its path"
    text = pooled_report(folders, margin)
    path = Path(folders[0]) / f"with-{'+'.join(Path(f).name for f in folders[1:])}.md"
    write_atomic(path, text)
    return path
