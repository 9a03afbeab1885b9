"Statistics of a grid's runs: summaries, paired differences, fold-aware tests, Holm's correction, TOST, power"
from __future__ import annotations
import json
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats as st
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from ...spelling import listed, unknown_name
from ..normalizations import NORMALIZATIONS

__all__ = ['METRIC', 'ALPHA', 'EQUIVALENCE_MARGIN', 'contrasts', 'summary_note', 'summary_table', 'fold_table',
           'paired_differences', 'paired_tests', 'contrast_differences', 'pair_sides', 'what_else_changes', 'wilcoxon_p', 'holm',
           'fold_aware', 'fold_aware_tests', 'fold_aware_table', 'per_fold', 'fold_effects', 'tost_p',
           'units_needed', 'resolved', 'budget_table', 'fold_span', 'frontend_table']

METRIC = 'final_accuracy'
RESOLUTION = 1e-6
"Paired differences are rounded to this before ranking (accuracies are k/n_valid): float noise must not break true ties"
ALPHA = 0.05
"The level of every test, after Holm's correction where there is a family"
EQUIVALENCE_MARGIN = 0.02
"Two folders of one grid agree when their paired mean difference lies within this, at 90% confidence"
# tested by two one-sided tests (`compare_equivalence`)


def contrasts(normalizations) -> list:
    """The paired contrasts that answer a grid of `normalizations`: each statistics normalization against its baseline,
    spectrogram modes against `global`, a mean-only variant against its full one; then what an entry names in
    `compared_with` (PCEN and front ends against `global`, learned PCEN against fixed, `instance` against
    `instance_global`)"""
    present, pairs = list(normalizations), []
    baselines = [b for b in present if NORMALIZATIONS[b].spec_norm == 'none']          # none, wave
    for n in present:
        norm = NORMALIZATIONS[n]
        if norm.pcen or norm.front: continue
        if norm.mode is None and n != 'none': base = 'none'                       # wave - none
        elif norm.mode is not None:                                     # global - wave, global_nowave - none, ...
            base = next((b for b in baselines if NORMALIZATIONS[b].wave == norm.wave), 'none')
        else: continue
        if base in present: pairs.append((n, base))
    for n in present:                   # channel - global, minmax - global, ...; a mean-only variant - its full one
        norm = NORMALIZATIONS[n]
        if norm.mode is None or (norm.mode == 'global' and not norm.mean_only): continue
        mode = norm.mode if norm.mean_only else 'global'
        twin = replace(norm, mode=mode, mean_only=False, compared_with=())           # the same arm with that statistic
        ref = next((g for g in present if replace(NORMALIZATIONS[g], compared_with=()) == twin), None)
        if ref: pairs.append((n, ref))
    for n in present:                   # against what the entry names (global, pcen, instance_global, ...)
        pairs += [(n, ref) for ref in NORMALIZATIONS[n].compared_with if ref in present]
    return pairs


def _ci(x: np.ndarray, level: float = 0.95) -> tuple:
    "Student-t confidence interval of the mean (NaN, shown as n/a, for fewer than three values)"
    if len(x) < 3: return (np.nan, np.nan)
    h = st.t.ppf((1 + level) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return (x.mean() - h, x.mean() + h)


def in_study_order(df: pd.DataFrame) -> pd.DataFrame:
    "Rows in the study's order of normalizations (none, wave, global, channel, ...)"
    order = {n: i for i, n in enumerate(NORMALIZATIONS)}
    return df.sort_values('normalization', key=lambda s: s.map(order), kind='stable')


def fold_span(folds) -> str:
    "Folds as a reader writes them: runs of consecutive folds joined (`1-5`, `1, 3-4`)"
    f, parts = sorted(set(int(x) for x in folds)), []
    for x in f:
        if parts and x == parts[-1][1] + 1: parts[-1][1] = x
        else: parts.append([x, x])
    return ', '.join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def summary_note(over_runs=('std', 'min', 'max')) -> str:
    "What `summary_table`'s columns are computed over, for a table that shows the columns `over_runs` of the runs"
    return ("`mean` and its 95% CI: over the fold means, seeds averaged within each fold, as the split is the unit "
            "that varies (`ci_over`: folds); with one fold, over its seeds. "
            + ', '.join(f"`{c}`" for c in over_runs) + ": over the runs.")


def summary_table(df: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """Per normalization: the folds it ran on, runs, the mean and 95% CI of `metric` over its folds' means (the split
    is the unit; one fold: over its seeds, `ci_over`), and the runs' std, min and max (runs without `metric`: left
    out)"""
    rows = []
    for norm, g in in_study_order(_checked_runs(df, metric).dropna(subset=[metric])).groupby('normalization', sort=False):
        x, per_fold = g[metric].to_numpy(float), g.groupby('fold')[metric].mean().to_numpy(float)
        unit = per_fold if len(per_fold) > 1 else x      # seeds within a fold are not independent replicates
        lo, hi = np.clip(_ci(unit), 0, 1)                # an accuracy's interval stays in [0, 1]
        rows.append(dict(normalization=norm, folds=fold_span(g.fold), n=len(x), mean=unit.mean(),
                         std=x.std(ddof=1) if len(x) > 1 else np.nan, ci95_low=lo, ci95_high=hi,
                         ci_over='folds' if len(per_fold) > 1 else 'seeds', min=x.min(), max=x.max()))
    return pd.DataFrame(rows).set_index('normalization')


def fold_table(df: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    "Mean `metric` per fold (rows) and normalization (columns)"
    return in_study_order(df).pivot_table(index='fold', columns='normalization', values=metric, aggfunc='mean', sort=False)


def resolved(d):
    "Differences of accuracies rounded to `RESOLUTION`: float32 noise (about 1e-8) is no spread, equal ones are equal"
    return np.round(d, round(-np.log10(RESOLUTION)))          # the double nearest each decimal: 0.00625, not 0.0062499


def _exact(x):
    "A mean (or means) of differences at `RESOLUTION` without the float residue of their sum: 0, not -1.7e-19 or -0"
    return np.round(x, 12) + 0.0


def _spread(x) -> bool:
    "Whether values `x` differ at all (not `std() > 0`: the std of three equal -0.1 is 1.4e-17)"
    return len(x) > 1 and bool(np.ptp(np.asarray(x, float)) > 0)


def wilcoxon_p(d: np.ndarray) -> float:
    """Wilcoxon signed-rank p of differences `d`, rounded to `RESOLUTION` first so that equal differences tie.
    `scipy.stats.wilcoxon`'s p; where it runs its exact permutation test (ties or zeros, at most 13 differences), the
    same test with the statistic vectorized over the sign flips (scipy calls it once a flip: 0.3 s a test)"""
    d = resolved(np.asarray(d, float))
    if len(d) < 2 or not np.any(d != 0): return np.nan
    a = np.abs(d)
    if len(d) > 13 or (np.all(a > 0) and len(np.unique(a)) == len(d)): return st.wilcoxon(d).pvalue
    r = np.where(a > 0, st.rankdata(np.where(a > 0, a, np.nan), nan_policy='omit'), 0)   # zeros: dropped ('wilcox')
    return st.permutation_test((d,), lambda s, axis: ((s > 0) * r).sum(axis=axis), permutation_type='samples',
                               vectorized=True).pvalue     # |d|'s ranks are those of every flip of signs


def _paired_row(d: np.ndarray) -> dict:
    """Mean, CI, wins and losses of paired differences `d`, with a paired t-test and a Wilcoxon signed-rank test; a
    `note` says why a p-value cannot be computed"""
    d = resolved(d)
    lo, hi = np.clip(_ci(d), -1, 1)                      # a difference of accuracies stays in [-1, 1]
    row = dict(pairs=len(d), mean=_exact(np.mean(d)), ci95_low=lo, ci95_high=hi, wins=int((d > 0).sum()),
               losses=int((d < 0).sum()),
               t_test_p=st.ttest_1samp(d, 0).pvalue if _spread(d) else np.nan,
               wilcoxon_p=wilcoxon_p(d))
    why = _no_p(d)
    return {**row, 'note': why} if why else row


def _no_p(d: np.ndarray) -> str:
    "Why the tests of paired differences `d` give no p-value ('' when they do)"
    if len(d) < 2: return f"{len(d)} pair: no test"
    if np.all(d == 0): return f"all {len(d)} differences are 0: no test"
    if not _spread(d): return f"all {len(d)} differences equal {d[0]:+.4f}: no spread, no t-test"
    return ''


def _notes(table: pd.DataFrame) -> pd.DataFrame:
    "The `note` column last, empty where there is nothing to say (and absent when nothing is)"
    return table if 'note' not in table else table.assign(note=table.pop('note').fillna(''))


def holm(p) -> np.ndarray:
    "Holm-adjusted p-values of a family `p` (NaN, no test, stays NaN and does not count in the family)"
    p = np.asarray(p, float)
    adj, ok = np.full(len(p), np.nan), ~np.isnan(p)
    if ok.any(): adj[ok] = multipletests(p[ok], method='holm')[1]
    return adj


def _holm(table: pd.DataFrame, cols=('t_test_p', 'wilcoxon_p')) -> pd.DataFrame:
    "Add Holm-corrected p-values (over the rows of `table`, the family of contrasts) beside the raw ones"
    for col in cols: table.insert(table.columns.get_loc(col) + 1, f"{col}_holm", holm(table[col]))
    return table


def _checked_runs(df: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """Runs `df` as the statistics take them: one row per (normalization, fold, seed) and `metric` an accuracy in
    [0, 1] (NaN: a run without it); else a ValueError naming the rows, or the columns it lacks"""
    if lacks := [c for c in ('normalization', 'fold', 'seed', metric) if c not in df]:
        raise ValueError(f"runs need the columns normalization, fold, seed and {metric}; these lack {', '.join(lacks)}"
                         + (" (no run at all: nothing to tabulate)" if not len(df) else ''))
    dup = df[df.duplicated(['normalization', 'fold', 'seed'], keep=False)]
    if len(dup): raise ValueError(f"runs given twice (normalization, fold, seed): {_rows(dup)}; one run each is paired")
    bad = df[~df[metric].between(0, 1) & df[metric].notna()]
    if len(bad): raise ValueError(f"`{metric}` is an accuracy in [0, 1]; got {_rows(bad, metric)}")
    return df


def _rows(df: pd.DataFrame, metric: str | None = None) -> str:
    "The first runs of `df` named as (normalization, fold, seed), with `metric`'s value where given"
    return listed([f"({r.normalization}, {r.fold}, {r.seed})" + (f" = {getattr(r, metric)!r}" if metric else '')
                   for r in df.itertuples()], most=3)


def _differences(df: pd.DataFrame, pairs, metric: str = METRIC) -> dict:
    "`a - b` per (fold, seed) where both ran, for each contrast, at `RESOLUTION` (`resolved`), of runs `_checked_runs`"
    wide = df.pivot_table(index=['fold', 'seed'], columns='normalization', values=metric)
    return {f"{a} - {b}": resolved((wide[a] - wide[b]).dropna()) for a, b in pairs if a in wide and b in wide}


def contrast_differences(df: pd.DataFrame, pairs=None, metric: str = METRIC) -> dict:
    "Each contrast's `a - b` per (fold, seed) (`_differences`): of `pairs`, checked against `df`, or the grid's own"
    df = _checked_runs(df, metric)
    return _differences(df, _pairs(df, pairs), metric)


def pair_sides(df: pd.DataFrame, column: str, pairs=None, metric: str = METRIC) -> dict:
    "Per contrast `a - b`: its pair differences, and `column` of the run on side a and on side b of each pair"
    wide = df.pivot_table(index=['fold', 'seed'], columns='normalization', values=column, aggfunc='first')
    return {name: (d, *(wide[n].reindex(d.index) for n in name.split(' - ')))
            for name, d in contrast_differences(df, pairs, metric).items()}


def what_else_changes(df: pd.DataFrame, pairs=None) -> pd.DataFrame:
    """Per contrast of pooled runs `df`: its pairs, how many take their two runs from two folders and from two
    machines, and the machines of each side (a contrast across machines also changes the machine)"""
    rows, folders = {}, pair_sides(df, 'folder', pairs)
    for name, (d, ma, mb) in pair_sides(df, 'machine', pairs).items():
        _, fa, fb = folders[name]
        rows[name] = dict(pairs=len(d), across_folders=int((fa != fb).sum()), across_machines=int((ma != mb).sum()),
                          machines_a=', '.join(sorted(ma.unique())), machines_b=', '.join(sorted(mb.unique())))
    return pd.DataFrame.from_dict(rows, orient='index').rename_axis('contrast')


def _pairs(df: pd.DataFrame, pairs):
    "The contrasts asked for (`pairs`, each normalization one that `df` holds), or the grid's own"
    if pairs is None: return contrasts(in_study_order(df).normalization.unique())
    held = list(in_study_order(df).normalization.unique())
    unknown = [n for pair in pairs for n in pair if n not in held]
    if unknown: raise ValueError(f"{unknown_name('normalization', unknown, held)} (in pairs={list(pairs)!r})")
    return pairs


def paired_differences(df: pd.DataFrame, pairs=None, metric: str = METRIC) -> pd.DataFrame:
    "Each contrast `a - b` over runs matched on (fold, seed): mean, CI, wins, t-test and Wilcoxon p"
    # the p-values raw and Holm-corrected; these are the pair-level tests (the pair is the unit)
    return paired_tests(contrast_differences(df, pairs, metric), 'difference')


def paired_tests(diffs: dict, names) -> pd.DataFrame:
    """The pair-level tests (`_paired_row`) of each entry of `diffs` (key -> paired differences), the index named
    `names` (one name, or one per part of tuple keys), their p-values Holm-corrected over all of them"""
    rows = {k: _paired_row(d.to_numpy(float)) for k, d in diffs.items() if len(d)}
    if not rows: return pd.DataFrame()
    return _notes(_holm(pd.DataFrame.from_dict(rows, orient='index').rename_axis(names)))


def _t(x: np.ndarray) -> tuple:
    "Mean, standard error, degrees of freedom and t-test p of values `x` (SE 0 or NaN: no test)"
    n = len(x)
    se = (x.std(ddof=1) / np.sqrt(n) if _spread(x) else 0.0) if n > 1 else np.nan
    p = st.ttest_1samp(x, 0).pvalue if n > 1 and se > 0 else np.nan
    return _exact(x.mean()), se, n - 1, p


def _mixedlm(d: np.ndarray, folds: np.ndarray):
    "Intercept, its SE and Wald z p of `d ~ 1` with a random intercept per fold (REML); None when the fit fails"
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')         # a fit on the boundary (no variance between folds) warns; it stands
        try: r = MixedLM(d, np.ones((len(d), 1)), groups=folds).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError): return None
    est, se, p = float(r.fe_params[0]), float(r.bse_fe[0]), float(r.pvalues[0])
    return (est, se, p) if np.isfinite(se) and se > 0 and np.isfinite(p) else None


def _interval(est: float, se: float, df: float, level: float) -> tuple:
    "The `level` confidence interval of `est` with standard error `se`: t on `df` degrees of freedom, normal if inf"
    if not (np.isfinite(se) and se > 0): return (np.nan, np.nan)
    h = (st.norm if np.isinf(df) else st.t(df)).ppf((1 + level) / 2) * se
    return (est - h, est + h)


def _anova(d: pd.Series) -> float:
    "One-way ANOVA p of differences `d` by fold: do the folds' effects differ? (NaN: fewer than 2 seeds in a fold)"
    groups = [g.to_numpy(float) for _, g in d.groupby(level='fold')]
    if len(groups) < 2 or min(map(len, groups)) < 2: return np.nan
    if not any(_spread(g) for g in groups): return np.nan                      # no spread within folds: no F
    return float(st.f_oneway(*groups).pvalue)


SEEDS_AGREE = 'the seeds agree within every fold'
"A fold-aware test's note where several seeds a fold leave no variance within folds"


def _design(d: pd.Series) -> tuple:
    "The unit of replication of differences `d` and the primary test that follows from the design"
    folds, n = d.index.get_level_values('fold').nunique(), len(d)
    if folds == 1: return 'pair', 't-test'                     # one split: the seeds vary, the fold is fixed
    if n == folds: return 'fold', 'fold t-test'                # one seed a fold: fold and pair tests coincide
    return 'fold', 'MixedLM'


def fold_aware(d: pd.Series) -> dict:
    """The fold-aware test of paired differences `d` (indexed by fold and seed): the estimate, its SE and CIs, the
    primary p (MixedLM with a random intercept per fold when folds hold several seeds, else a t-test of the units),
    beside it the fold means' t-test, the pair-level t-test and Wilcoxon, and the ANOVA of `d` by fold"""
    d = resolved(d.astype(float))                               # float noise is no spread (`RESOLUTION`)
    x = d.to_numpy(float)
    per_fold = _exact(d.groupby(level='fold').mean())
    unit, test = _design(d)
    units = per_fold.to_numpy(float) if unit == 'fold' else x
    est, se, df, p = _t(units)
    fold_p, note = _t(per_fold.to_numpy(float))[3], ''
    if test == 'MixedLM':
        # seeds that agree within every fold leave no variance within folds: the model is then the fold means' t-test,
        # and statsmodels' fit degenerates (its SE fell to 0.0056 where the fold means give 0.0088: a false 'ahead')
        within = any(_spread(g.to_numpy(float)) for _, g in d.groupby(level='fold'))
        fit = _mixedlm(x, d.index.get_level_values('fold').to_numpy()) if within else None
        # its Wald statistic on t with folds - 1 degrees of freedom (the containment df of the intercept), not normal:
        # with 5 folds the normal z-test is liberal (cv-bf16 channel - global: z p 0.0003, fold t-test p 0.023)
        if fit:
            (est, se, _), df = fit, len(per_fold) - 1
            est, p = _exact(est), float(2 * st.t(df).sf(abs(est / se)))
        else:
            test = 'fold t-test'
            note = ('MixedLM could not be fitted: the fold t-test is the primary' if within else
                    f"{SEEDS_AGREE}: the fold means' t-test is the primary")
    if len(x) < 2: note = f"{len(x)} pair: no test"
    elif not se > 0 and est == 0: note = f"all {len(units)} {unit} differences are 0: no spread, no test"
    elif not se > 0: note = f"all {len(units)} {unit} differences equal {est:+.4f}: no spread, no test"
    lo95, hi95 = np.clip(_interval(est, se, df, 0.95), -1, 1)   # a difference of accuracies stays in [-1, 1]
    lo90, hi90 = np.clip(_interval(est, se, df, 0.90), -1, 1)
    return dict(pairs=len(x), folds=len(per_fold), unit=unit, test=test, estimate=est, se=se, df=df, p=p,
                ci95_low=lo95, ci95_high=hi95, ci90_low=lo90, ci90_high=hi90, fold_t_p=fold_p,
                t_test_p=_t(x)[3], wilcoxon_p=wilcoxon_p(x), anova_p=_anova(d), units=len(units),
                unit_sd=se * np.sqrt(len(units)) if len(units) > 1 else np.nan, note=note)


def fold_aware_tests(diffs: dict, names) -> pd.DataFrame:
    """The fold-aware test (`fold_aware`) of each entry of `diffs` (key -> paired differences), the index named `names`
    (one name, or one per part of tuple keys), with the primary p Holm-corrected over all of them"""
    rows = {k: fold_aware(d) for k, d in diffs.items() if len(d)}
    if not rows: return pd.DataFrame()
    t = pd.DataFrame.from_dict(rows, orient='index').rename_axis(names)
    t.insert(t.columns.get_loc('p') + 1, 'p_holm', holm(t.p))
    return t


def fold_aware_table(df: pd.DataFrame, pairs=None, metric: str = METRIC) -> pd.DataFrame:
    "Each contrast's fold-aware test (`fold_aware`), with the primary p Holm-corrected over the contrasts of the grid"
    return fold_aware_tests(contrast_differences(df, pairs, metric), 'contrast')


def per_fold(d: pd.Series) -> pd.Series:
    "Pair differences `d` averaged over the seeds of each fold, without float residue (`_exact`)"
    return _exact(d.groupby(level='fold').mean())


def fold_effects(df: pd.DataFrame, pairs=None, metric: str = METRIC) -> pd.DataFrame:
    "Each contrast's mean difference per fold (columns), and the one-way ANOVA p of the differences by fold"
    diffs = {k: d for k, d in contrast_differences(df, pairs, metric).items() if len(d)}
    if not diffs: return pd.DataFrame()
    t = pd.DataFrame({k: per_fold(d) for k, d in diffs.items()}).T.rename_axis('contrast')
    t.columns = [f"fold {f}" for f in t.columns]
    return t.assign(anova_p=[_anova(d) for d in diffs.values()])


def tost_p(est: float, se: float, df: float, margin: float) -> float:
    "Two one-sided tests of `est` (SE `se`, t on `df` degrees of freedom, normal if inf) against +-`margin`"
    if not (np.isfinite(se) and se > 0): return np.nan
    dist = st.norm if np.isinf(df) else st.t(df)
    return float(max(dist.sf((est + margin) / se), dist.cdf((est - margin) / se)))


def units_needed(est: float, sd: float, n: int, power: float = 0.8, alpha: float = ALPHA, bound: float = 0.8) -> float:
    """The units (folds or pairs) a two-sided t-test at `alpha` needs for `power` against effect `est`, with the SD at
    its one-sided `bound` upper confidence bound (chi-square, from `n` units); NaN when there is no effect (under
    `RESOLUTION`: float noise of a zero mean) or no SD"""
    if n < 2 or not (np.isfinite(sd) and sd > 0) or abs(est) < RESOLUTION: return np.nan
    sd_up = sd * np.sqrt((n - 1) / st.chi2.ppf(1 - bound, n - 1))
    try: need = TTestPower().solve_power(effect_size=abs(est) / sd_up, alpha=alpha, power=power)
    except (ValueError, RuntimeError): return np.nan
    need = float(np.squeeze(need))
    return float(max(2, np.ceil(need))) if np.isfinite(need) else np.nan


def last_quarter(epochs: int) -> list:
    "The epochs (numbered from 1, as in the histories) of the last quarter of training, at least two when there are"
    k = min(epochs, max(2, int(np.ceil(epochs / 4))))
    return list(range(epochs - k + 1, epochs + 1))


def budget_table(hist: pd.DataFrame, pairs=None) -> pd.DataFrame:
    """Each contrast's mean paired difference in validation accuracy at each epoch of the last quarter of training, and
    whether its sign is the same at every one of them (`sign_stable`)"""
    if not len(hist): return pd.DataFrame()
    epochs = last_quarter(int(hist.epoch.max()))
    per = {e: _differences(_checked_runs(hist[hist.epoch == e], 'accuracy'), _pairs(hist, pairs), 'accuracy')
           for e in epochs}
    t = pd.DataFrame({f"epoch {e}": {k: _exact(d.mean()) for k, d in diffs.items() if len(d)}
                      for e, diffs in per.items()})
    if not len(t): return t
    signs = np.sign(t.round(int(-np.log10(RESOLUTION))))
    return t.rename_axis('contrast').assign(sign_stable=signs.nunique(axis=1) == 1)     # 0 at every epoch: stable


def frontend_table(df: pd.DataFrame, starts: dict) -> pd.DataFrame:
    """Per normalization and parameter of a PCEN front end, from the run files' `frontend_params`: the value it started
    at (`starts[normalization][parameter]`, one per band: their mean) and, over its runs and bands, where it ended"""
    rows = []
    for n, g in in_study_order(df.dropna(subset=['frontend_params'])).groupby('normalization', sort=False):
        ends = [json.loads(s) for s in g.frontend_params]
        for k in ends[0]:
            v, start = np.array([e[k] for e in ends]), np.asarray(starts[n][k], dtype=float)   # runs x bands
            rows.append(dict(normalization=n, parameter=k, start=start.mean(), mean=v.mean(), min=v.min(),
                             max=v.max(), moved=float(np.mean(~np.isclose(v, start, rtol=1e-5, atol=0))),
                             runs=len(v)))
    return pd.DataFrame(rows, columns=['normalization', 'parameter', 'start', 'mean', 'min', 'max', 'moved', 'runs'])
