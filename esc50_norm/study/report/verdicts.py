"A verdict for every contrast: ahead, behind, equivalent within a margin, or unsettled (with what would settle it)"
from __future__ import annotations
import numpy as np
import pandas as pd

from .folders import machine_of, read_folder, recorded_machine
from .statistics import ALPHA, METRIC, fold_aware, fold_aware_table, holm, pair_sides, tost_p, units_needed

__all__ = ['VERDICT_MARGIN', 'verdict', 'add_verdicts', 'grid_verdicts', 'verdict_table', 'folder_verdicts',
           'one_machine_table', 'how_to_read']

VERDICT_MARGIN = 0.01
"A contrast is equivalent to no difference when the 90% CI of its fold-aware estimate lies within +-this (TOST)"


def verdict(estimate: float, p_holm: float, tost: float, margin: float = VERDICT_MARGIN, alpha: float = ALPHA) -> str:
    """`ahead`/`behind` when the primary test is significant after Holm (by the estimate's sign), `equivalent within
    +-margin` when the two one-sided tests are, else `unsettled`"""
    if p_holm < alpha: return 'ahead' if estimate > 0 else 'behind'
    if tost < alpha: return f"equivalent within ±{margin:g}"
    return 'unsettled'


def _needed(r) -> str:
    "What 80% power would need, in the contrast's unit (folds at its seeds per fold, or pairs)"
    n = units_needed(r.estimate, r.unit_sd, r.units)
    if np.isnan(n): return 'n/a'
    seeds = r.pairs / r.folds                           # not whole where folds hold unequal numbers of seeds
    if r.unit == 'fold' and seeds > 1:
        return f"{int(n)} folds of " + (f"{seeds:g} seeds" if seeds == int(seeds) else f"{seeds:.1f} seeds on average")
    return f"{int(n)} {'pairs' if r.unit == 'pair' else 'folds (pairs)'}"


def _tost(r, margin: float) -> float:
    "TOST p of a fold-aware row; NaN without spread (no test, so no tie: the differences may all be equal by chance)"
    return tost_p(r.estimate, r.se, r.df, margin) if r.se > 0 else np.nan


def add_verdicts(tests: pd.DataFrame, margin: float = VERDICT_MARGIN) -> pd.DataFrame:
    "Fold-aware tests (`fold_aware_table`, with `p_holm`) plus each row's TOST p, verdict, margin and the units needed"
    if not len(tests): return tests
    t = tests.copy()
    t['tost_p'] = [_tost(r, margin) for r in t.itertuples()]
    t['verdict'] = [verdict(r.estimate, r.p_holm, r.tost_p, margin) for r in t.itertuples()]
    t['margin'] = margin
    t['needed_for_80%_power'] = [_needed(r) if v == 'unsettled' else '' for r, v in zip(t.itertuples(), t.verdict)]
    return t


COLUMNS = ['estimate', 'ci90_low', 'ci90_high', 'unit', 'test', 'p', 'p_holm', 'tost_p', 'verdict', 'margin',
           'needed_for_80%_power']


def grid_verdicts(df: pd.DataFrame, pairs=None, margin: float = VERDICT_MARGIN, metric: str = METRIC) -> pd.DataFrame:
    "Per contrast of the grid's runs `df`: its fold-aware test (`fold_aware_table`) and verdict (`add_verdicts`)"
    return add_verdicts(fold_aware_table(df, pairs, metric), margin)


def verdict_table(df: pd.DataFrame, pairs=None, margin: float = VERDICT_MARGIN, metric: str = METRIC) -> pd.DataFrame:
    "Per contrast of the grid's runs `df`: estimate, 90% CI, primary p raw and Holm, TOST p, verdict, units needed"
    t = grid_verdicts(df, pairs, margin, metric)
    return t[COLUMNS] if len(t) else t


def folder_verdicts(out, margin: float = VERDICT_MARGIN) -> pd.DataFrame:
    "The verdict table of results folder `out` (its finished runs)"
    return verdict_table(read_folder(out)[1], margin=margin)


def _one_machine(df: pd.DataFrame, pairs, metric: str) -> tuple[dict, dict, dict]:
    """Per contrast of runs `df` (with their `machine_of` as column `machine`): all its pair differences, those whose
    two runs were made on one recorded machine, and that machine"""
    diffs, kept, machines = {}, {}, {}
    for name, (d, ma, mb) in pair_sides(df, 'machine', pairs, metric).items():
        one = ((ma == mb) & recorded_machine(ma)).to_numpy()
        diffs[name], kept[name], machines[name] = d, d[one], ma[one]
    return diffs, kept, machines


def one_machine_table(df: pd.DataFrame, pairs=None, margin: float = VERDICT_MARGIN, metric: str = METRIC) -> pd.DataFrame:
    """The contrasts of runs `df` with a pair made on two machines (or on one not recorded, `machine_of`), each tested
    again on its pairs made on one recorded machine: Holm over the grid's contrasts, each on such pairs. Columns:
    `all_pairs`, `machines` (of the pairs kept), then `add_verdicts`' (of those only `verdict`, empty, where no
    contrast keeps a pair); no rows when every pair is on one machine, or when no run names its machine"""
    # a contrast with pairs but none such stays in Holm's family as p = 1, so that the family is the grid's (whose
    # verdicts leave out a contrast without pairs);
    # one tested on such pairs without spread (p NaN) leaves it, as a contrast without spread leaves the verdicts' family
    machine = machine_of(df)
    diffs, kept, on = _one_machine(df.assign(machine=machine), pairs, metric)
    mixed = [k for k, d in diffs.items() if len(kept[k]) < len(d)]
    tested = {k: fold_aware(d) for k, d in kept.items() if len(d)}
    if not mixed or not (tested or recorded_machine(machine).any()): return pd.DataFrame()
    if not tested:                     # some runs name their machine, but no pair of these names one on both sides
        return pd.DataFrame(dict(all_pairs=[len(diffs[k]) for k in mixed], machines='none', pairs=0, verdict=np.nan),
                            index=pd.Index(mixed, name='contrast'))
    t = pd.DataFrame.from_dict(tested, orient='index').rename_axis('contrast')
    family = pd.Series({k: tested[k]['p'] if k in tested else 1.0 for k, d in diffs.items() if len(d)})  # NaN: out
    t.insert(t.columns.get_loc('p') + 1, 'p_holm', pd.Series(holm(family), index=family.index).reindex(t.index)
             .where(t.p.notna()))
    t = add_verdicts(t, margin).reindex(mixed)
    t.insert(0, 'all_pairs', [len(diffs[k]) for k in mixed])
    t.insert(2, 'machines', ['; '.join(sorted(on[k].unique())) or 'none' for k in mixed])
    t['pairs'] = [len(kept[k]) for k in mixed]            # kept pairs, also where none is (no test)
    return t


def _unit_text(tests: pd.DataFrame) -> str:
    "How the design decides the unit of replication and the primary test, for the designs in `tests`"
    tests_ = set(tests.test)
    parts = []
    if 'MixedLM' in tests_:
        parts.append("the folds hold several seeds each, so the fold is the unit that varies: the primary test is a "
                     "linear mixed model of the pair differences with a random intercept per fold (statsmodels "
                     "`MixedLM`, `d ~ 1`, REML; its Wald statistic and CI on t with folds - 1 degrees of freedom, "
                     "not normal, which with 5 folds would be liberal), with the fold means' t-test (`fold_t_p`) "
                     "beside it")
    fold_t = tests[tests.test == 'fold t-test']
    if (fold_t.pairs == fold_t.folds).any():
        parts.append("with one seed a fold, fold and pair coincide: the primary test is the t-test of the fold "
                     "differences, and the pair-level tests test the same units (MixedLM is not fitted)")
    if (fold_t.pairs > fold_t.folds).any():
        parts.append("where the folds hold several seeds that agree within every fold (or MixedLM could not be "
                     "fitted: `note`), the primary test is the t-test of the fold means")
    if 't-test' in tests_:
        parts.append(("all runs are of one fold" if tests_ == {'t-test'} else "where a contrast's pairs are all of "
                      "one fold (`unit`: pair)") + ", the seeds are the unit: the primary test is the paired t-test "
                     "over seeds, and it says nothing about other splits")
    return '; '.join(parts)


def how_to_read(tests: pd.DataFrame, margin: float = VERDICT_MARGIN, family: str = 'the contrasts of this grid') -> str:
    "The paragraph that says where each statistic of a verdict table comes from"
    if not len(tests): return ''
    n = int(tests.p.notna().sum())
    return (f"How to read: every contrast is `a - b`, paired on (fold, seed). Unit of replication: "
            f"{_unit_text(tests)}. `p_holm`: the primary p adjusted with Holm's method over {family} "
            f"({n} test{'s' if n != 1 else ''}). Verdict: **ahead**/**behind** when `p_holm` < {ALPHA}; else **equivalent within "
            f"±{margin:g}** when two one-sided tests of the same estimate against ±{margin:g} give p < {ALPHA} "
            f"(`tost_p`; the 90% CI lies within the margin; differences that are all equal have no CI, so no tie); "
            "else **unsettled**, with the units that 80% power would "
            "need for the observed estimate (statsmodels `TTestPower`, two-sided at 0.05, the SD of a unit's "
            "difference that the primary test implies, its SE × √units, at its one-sided 80% upper confidence bound, "
            "chi-square). The pair-level t-test and Wilcoxon "
            f"(`t_test_p`, `wilcoxon_p`; differences rounded to the metric's resolution first) are secondary: they "
            "treat every (fold, seed) pair as independent.")
