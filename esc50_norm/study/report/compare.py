"Folders of one grid side by side: means, differences run by run and fold by fold, equivalence, verdicts"
from __future__ import annotations
import numpy as np
import pandas as pd

from ..normalizations import NORMALIZATIONS
from .folders import folder_runs, nonempty_runs
from .statistics import (ALPHA, EQUIVALENCE_MARGIN, METRIC, contrast_differences, contrasts, fold_aware,
                         fold_aware_tests, paired_tests, per_fold, resolved, summary_table, tost_p)
from .verdicts import VERDICT_MARGIN, add_verdicts

__all__ = ['compare_folders', 'fold_means', 'fold_contrasts', 'compare_equivalence', 'compare_verdicts',
           'contrast_changes', 'compare_contrasts', 'interactions', 'compare_interactions']


def _matched(ref: pd.DataFrame, new: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    "`new - ref` for every run both folders hold: indexed by normalization, fold and seed"
    both = pd.concat({'ref': ref, 'new': new}, names=['which']).reset_index(level=0)
    wide = both.pivot_table(index=['normalization', 'fold', 'seed'], columns='which', values=metric).dropna()
    return (wide['new'] - wide['ref']) if {'new', 'ref'} <= set(wide) else pd.Series(dtype=float)


def _per_normalization(runs: dict, minus: pd.Series | None = None) -> dict:
    """(later folder, normalization) -> its runs' differences to the first folder's, indexed by fold and seed; less
    `minus` (another pair's differences, `_matched`) where given, on the runs both hold"""
    ref, out = next(iter(runs.values())), {}
    for name, df in list(runs.items())[1:]:
        d = _matched(ref, df) if minus is None else (_matched(ref, df) - minus).dropna()
        present = set(d.index.get_level_values(0)) if len(d) else set()
        out.update({(name, n): d.loc[n] for n in NORMALIZATIONS if n in present})
    return out


def compare_folders(folders, runs: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    "Per normalization, each folder's mean of fold means; and each later folder minus the first, paired on (fold, seed)"
    # the paired differences Holm-corrected; `runs`: the folders' runs when already read (`folder_runs`)
    runs = nonempty_runs(folders, runs, 'to compare')
    present = set().union(*(set(d.normalization) for d in runs.values()))
    means = pd.concat({n: summary_table(d)['mean'] for n, d in runs.items()}, axis=1)
    means = means.reindex([n for n in NORMALIZATIONS if n in present])
    return means, paired_tests(_per_normalization(runs), ['folder', 'normalization'])


def fold_means(runs: dict, metric: str = METRIC) -> pd.DataFrame:
    "Each folder's mean accuracy per normalization (rows) and fold (columns): folder -> normalization as the index"
    per = {name: df.groupby(['normalization', 'fold'])[metric].mean() for name, df in runs.items() if len(df)}
    return pd.concat(per, names=['folder']).unstack('fold')


def shared_normalizations(runs: dict) -> list:
    "The normalizations every folder holds, in the registry's order"
    return [n for n in NORMALIZATIONS if all(n in set(df.normalization) for df in runs.values())]


def fold_contrasts(runs: dict, metric: str = METRIC) -> pd.DataFrame:
    "The contrasts of the normalizations every folder holds, per fold: mean paired difference over seeds, per folder"
    # rows (contrast, fold); columns: folders; `agree`: whether every folder's difference has the same sign
    pairs = contrasts(shared_normalizations(runs))
    if not pairs: return pd.DataFrame(columns=[*runs, 'agree'])
    means = lambda df: pd.concat({k: per_fold(d) for k, d in contrast_differences(df, pairs, metric).items()}, names=['contrast'])
    table = pd.DataFrame({name: means(df) for name, df in runs.items()}).dropna()
    table['agree'] = np.sign(table).nunique(axis=1) == 1
    return table


def _equivalent(d: pd.Series, margin: float) -> dict:
    """The fold-aware estimate of pooled differences `d` (indexed by normalization, fold and seed), its 90% CI and TOST
    against +-`margin`; with one fold its seeds are the units, each the mean over the normalizations it ran"""
    # a seed's runs share its draws, so on one fold they are one replicate, not several (over several folds the fold
    # is the unit already: MixedLM's intercept per fold takes every run of it); without spread there is no interval
    # and no test: equivalent only when every run repeats exactly (`replay`)
    one_fold = d.index.get_level_values('fold').nunique() == 1
    r = fold_aware(d.groupby(level=['fold', 'seed']).mean() if one_fold else d)
    spread, replay = r['se'] > 0, len(d) > 1 and bool((resolved(d) == 0).all())
    p = tost_p(r['estimate'], r['se'], r['df'], margin) if spread else np.nan
    return dict(pairs=len(d), folds=r['folds'], unit='seed' if one_fold else r['unit'], units=r['units'],
                test=r['test'], mean=r['estimate'], ci90_low=r['ci90_low'], ci90_high=r['ci90_high'], tost_p=p,
                equivalent=bool(p < ALPHA) if spread else replay, replay=replay)


def compare_equivalence(folders, margin: float = EQUIVALENCE_MARGIN, runs: dict | None = None) -> pd.DataFrame:
    """Each later folder against the first over all their matched runs: the pooled paired difference (fold-aware: a
    random intercept per fold when folds hold several runs), and whether it lies within +-`margin` (TOST at 0.05)"""
    runs = runs or folder_runs(folders)
    ref, rows = next(iter(runs.values())), []
    for name, df in list(runs.items())[1:]:
        d = _matched(ref, df)
        if len(d): rows.append(dict(folder=name, **_equivalent(d, margin)))
    return pd.DataFrame(rows).set_index('folder') if rows else pd.DataFrame()


def compare_verdicts(folders, margin: float = VERDICT_MARGIN, runs: dict | None = None) -> pd.DataFrame:
    """Per later folder and normalization, the verdict on `later - first` run by run, by the rules of a grid's
    contrasts (`verdicts`): fold-aware test, Holm over all rows, TOST against +-`margin`"""
    tests = fold_aware_tests(_per_normalization(runs or folder_runs(folders)), ['folder', 'normalization'])
    return add_verdicts(tests, margin)


def contrast_changes(runs: dict, metric: str = METRIC) -> dict:
    """(later folder, contrast) -> how each contrast every folder holds changes from the first folder to that one:
    `a - b` in the later folder minus `a - b` in the first, pair by pair on (fold, seed) where both folders hold it"""
    pairs, ref = contrasts(shared_normalizations(runs)), next(iter(runs.values()))
    base = contrast_differences(ref, pairs, metric)
    return {(name, c): (d - base[c]).dropna() for name, df in list(runs.items())[1:]
            for c, d in contrast_differences(df, pairs, metric).items() if c in base}


def compare_contrasts(folders, margin: float = VERDICT_MARGIN, runs: dict | None = None) -> pd.DataFrame:
    """Per later folder and contrast every folder holds, the verdict on how the contrast changes from the first folder
    (`contrast_changes`: a difference of differences, e.g. whether a recipe narrows a gap), by the rules of a grid's
    contrasts: fold-aware test, Holm over all rows, TOST against +-`margin`"""
    return add_verdicts(fold_aware_tests(contrast_changes(runs or folder_runs(folders)), ['folder', 'contrast']), margin)


def interactions(runs: dict, minus: dict) -> dict:
    """(later folder, normalization) -> `(later - first) - (second - first of minus)`: how each later folder's difference
    to the first departs from another pair's difference (an interaction of two changes), run by run on (fold, seed)
    where all four folders hold the run; `runs`, `minus`: folder -> runs, `minus` two folders"""
    (_, r0), (_, f0) = minus.items()
    other = _matched(r0, f0)
    return _per_normalization(runs, other) if len(other) else {}     # an empty pair has no (fold, seed) index to align


def compare_interactions(folders, minus, margin: float = VERDICT_MARGIN, runs: dict | None = None,
                         minus_runs: dict | None = None) -> pd.DataFrame:
    """Per later folder and normalization, the verdict on `(later - first) - (minus[1] - minus[0])` (`interactions`):
    whether a change has the effect that another change had, by the rules of a grid's contrasts (fold-aware test, Holm
    over all rows, TOST against +-`margin`)"""
    diffs = interactions(runs or folder_runs(folders), minus_runs or folder_runs(minus))
    return add_verdicts(fold_aware_tests(diffs, ['folder', 'normalization']), margin)
