"The fold-aware statistics and verdicts against independent computations on the raw run files, and each verdict's branch"
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as st

from esc50_norm.study.presets import CHOSEN, PRESETS
from esc50_norm.study.report import (fold_aware_table, fold_effects, folder_verdicts, machines_table, one_machine_table,
                                     pooled_runs, read_histories, units_needed, verdict_table, budget_table,
                                     compare_contrasts, compare_interactions, compare_runs, compare_verdicts,
                                     paired_differences, summary_table, write_report)
from esc50_norm.study.report.statistics import resolved, wilcoxon_p
from esc50_norm.study.runs import read_preset, read_results

RESULTS = Path(__file__).resolve().parents[1] / 'results'


def _raw(*folders: str) -> pd.DataFrame:
    "The run files of `folders` read with json and pandas alone"
    return pd.DataFrame([json.loads(p.read_text()) for f in folders for p in (RESULTS / f / 'runs').glob('fold*-seed*.json')
                         if p.name.count('.') == 1])


def _holm(p: np.ndarray) -> np.ndarray:
    "Holm's step-down adjustment, by hand"
    order, out, running = np.argsort(p), np.empty(len(p)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def _machine(r: dict):
    "A raw run's machine: its GPU, or its CPU's model with the AMX and bf16 flags; None where not recorded"
    if not str(r['device']).startswith('cpu'): return r['device']
    return f"{r['cpu']} {r.get('cpu_amx')} {r.get('cpu_bf16')}" if isinstance(r.get('cpu'), str) else None


def _one_by_hand(d: pd.Series, margin: float = 0.01) -> dict:
    """From paired differences indexed by (fold, seed): MixedLM (formula API, random intercept per fold) when folds hold
    several seeds and it gives a finite SE, else the t-test of the fold differences; the fold means' t-test, the ANOVA
    by fold, the 90% CI and TOST; the differences first rounded to 1e-6, as docs/study.md says (float32 noise of equal
    accuracies is no spread)"""
    d = d.round(6).rename('d').reset_index()
    fm = d.groupby('fold').d.mean()
    dist, anova = st.t(len(fm) - 1), np.nan
    est, se, p = fm.mean(), fm.std(ddof=1) / np.sqrt(len(fm)), st.ttest_1samp(fm, 0).pvalue
    if len(d) > len(fm) and (d.groupby('fold').d.nunique() > 1).any():    # equal seeds in every fold: fold t-test
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            fit = smf.mixedlm('d ~ 1', d, groups=d['fold']).fit(reml=True)
        if np.isfinite(fit.bse_fe['Intercept']):            # else no fit: the fold t-test stands
            est, se = fit.fe_params['Intercept'], fit.bse_fe['Intercept']
            p = 2 * dist.sf(abs(est / se))                  # the Wald statistic on t, folds - 1 df
    if len(d) > len(fm):
        groups = [g.d.to_numpy() for _, g in d.groupby('fold')]
        anova = st.f_oneway(*groups).pvalue if min(map(len, groups)) > 1 else np.nan   # a fold of one seed: none
    tost = max(dist.sf((est + margin) / se), dist.cdf((est - margin) / se))
    return dict(pairs=len(d), estimate=est, se=se, p=p, fold_t_p=st.ttest_1samp(fm, 0).pvalue, anova_p=anova,
                ci90_low=est - dist.ppf(0.95) * se, ci90_high=est + dist.ppf(0.95) * se, tost_p=tost,
                fold_means=fm.to_numpy())


def _verdicts_by_hand(rows: dict, family=(), margin: float = 0.01) -> pd.DataFrame:
    "`_one_by_hand`'s rows with Holm over them (and over `family`'s other members, at p = 1) and each verdict"
    t = pd.DataFrame.from_dict(rows, orient='index')
    ps = {**dict.fromkeys(family, 1.0), **t.p}
    t['p_holm'] = pd.Series(_holm(np.array(list(ps.values()))), index=list(ps)).reindex(t.index)
    t['verdict'] = [('ahead' if r.estimate > 0 else 'behind') if r.p_holm < 0.05 else
                    f"equivalent within ±{margin:g}" if r.tost_p < 0.05 else 'unsettled' for r in t.itertuples()]
    return t


def _by_hand(folder: str | tuple, contrasts: list, margin: float = 0.01, one_machine: bool = False) -> pd.DataFrame:
    """Per contrast, from the raw files, `_one_by_hand` and the verdicts. `folder`: one, or a tuple of folders holding
    unlike runs of one recipe, read as one grid. `one_machine`: on the pairs whose two runs name one machine (Holm: a
    contrast without any, p = 1)"""
    raw = _raw(*([folder] if isinstance(folder, str) else folder))
    w = raw.pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    m = raw.assign(m=[_machine(r) for r in raw.to_dict('records')]).pivot(index=['fold', 'seed'], columns='normalization',
                                                                          values='m')
    rows = {}
    for a, b in contrasts:
        d = (w[a] - w[b]).dropna()
        if one_machine: d = d[(m[a].reindex(d.index) == m[b].reindex(d.index)) & m[a].reindex(d.index).notna()]
        if len(d): rows[f"{a} - {b}"] = _one_by_hand(d, margin)
    return _verdicts_by_hand(rows, [f"{a} - {b}" for a, b in contrasts], margin)


def _needed_by_hand(est: float, sd: float, n: int) -> int:
    "The fewest units whose two-sided t-test at 0.05 has 80% power (noncentral t), SD at its one-sided 80% upper bound"
    sd_up = sd * np.sqrt((n - 1) / st.chi2.ppf(0.2, n - 1))
    power = lambda k: (st.nct.sf(st.t.ppf(0.975, k - 1), k - 1, abs(est) / sd_up * np.sqrt(k))
                       + st.nct.cdf(-st.t.ppf(0.975, k - 1), k - 1, abs(est) / sd_up * np.sqrt(k)))
    return next(k for k in range(2, 10_000) if power(k) >= 0.8)


def _agree(t: pd.DataFrame, hand: pd.DataFrame):
    "A verdict table's rows equal to those computed by hand: estimate, CI, p, Holm's p, TOST p, verdict"
    assert list(t.index) == list(hand.index)
    cols = ['estimate', 'ci90_low', 'ci90_high', 'p', 'p_holm', 'tost_p']
    assert t[cols].to_numpy(float) == pytest.approx(hand[cols].to_numpy(float), rel=1e-4, abs=1e-9)
    assert list(t.verdict) == list(hand.verdict) and list(t.pairs) == list(hand.pairs)


@pytest.mark.parametrize('folder', ['cv-bf16', 'mel-cpu', 'frontends-cpu', 'mel-aug-cpu', 'mel-aug60-cpu', 'mel60-cpu',
                                    'pcen-parts-cpu', 'pcen-bn-xeon',
                                    ('mel-cpu', 'mel-cpu-instance-global'),
                                    ('mel-cpu', 'mel-cpu-bn-freq'), ('mel-aug-cpu', 'mel-aug-cpu-bn-freq'),
                                    ('mel-aug60-cpu', 'mel-aug60-cpu-bn-freq'), ('pcen-bn-xeon', 'pcen-bias-root-xeon'),
                                    ('pcen-bn-xeon', 'pcen-gain-xeon')])
def test_fold_aware_statistics_equal_an_independent_computation(folder):
    "Each folder's statistics, and folders pooled with an arm run apart into a folder of its own (Holm over their contrasts)"
    df = read_results(RESULTS / folder) if isinstance(folder, str) else pooled_runs([RESULTS / f for f in folder])[0]
    tests, v = fold_aware_table(df), verdict_table(df)
    hand = _by_hand(folder, [tuple(c.split(' - ')) for c in tests.index])
    assert list(v.index) == list(hand.index)
    for c, h in hand.iterrows():
        r = tests.loc[c]
        assert (r.estimate, r.se, r.p, r.p_holm, r.fold_t_p) == pytest.approx(
            (h.estimate, h.se, h.p, h.p_holm, h.fold_t_p), rel=1e-4, abs=1e-9), c
        assert (v.loc[c, 'ci90_low'], v.loc[c, 'ci90_high']) == pytest.approx((h.ci90_low, h.ci90_high), abs=1e-6), c
        assert v.loc[c, 'tost_p'] == pytest.approx(h.tost_p, rel=1e-3, abs=1e-9) and v.loc[c, 'verdict'] == h.verdict, c
        assert np.isnan(r.anova_p) if np.isnan(h.anova_p) else r.anova_p == pytest.approx(h.anova_p), c
        assert np.allclose(fold_effects(df).loc[c].filter(like='fold ').to_numpy(float), h.fold_means)


def test_cv_global_none_is_unsettled_at_the_fold_level_and_channel_global_behind_in_every_fold():
    "The expected outcomes of issue 34 on cv-bf16 (5 folds x 5 seeds)"
    df = read_results(RESULTS / 'cv-bf16')
    t, v, e = fold_aware_table(df), verdict_table(df), fold_effects(df)
    g = t.loc['global - none']
    assert e.loc['global - none'].filter(like='fold ').to_numpy(float) == pytest.approx([0.011, -0.002, -0.0035, 0.054, 0.018], abs=1e-6)
    assert g.anova_p == pytest.approx(0.002, abs=5e-4) and g.fold_t_p == pytest.approx(0.21, abs=0.01)
    pairs = df.pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    pairs = (pairs['global'] - pairs['none']).dropna().round(6)
    assert len(pairs) == 25 and g.t_test_p == pytest.approx(st.ttest_1samp(pairs, 0).pvalue, rel=1e-6)
    assert g.test == 'MixedLM' and g.p == pytest.approx(0.21, abs=0.01) and g.t_test_p < 0.05     # pair level: 0.012
    assert v.loc['global - none', 'verdict'] == 'unsettled'
    hand = _by_hand('cv-bf16', [('global', 'none')]).loc['global - none']
    k = _needed_by_hand(hand.estimate, np.std(hand.fold_means, ddof=1), 5)
    assert v.loc['global - none', 'needed_for_80%_power'] == f"{k} folds of 5 seeds"
    c = t.loc['channel - global']
    assert c.fold_t_p == pytest.approx(0.023, abs=1e-3) and (e.loc['channel - global'].filter(like='fold ') < 0).all()
    # significant at the fold level (every fold negative, p 0.023 on 4 df), not after Holm over three contrasts
    assert c.p == pytest.approx(0.023, abs=1e-3) and c.p_holm == pytest.approx(0.069, abs=1e-3)
    assert v.loc['channel - global', 'verdict'] == 'unsettled'
    # balanced design, between-fold variance above 0: MixedLM's SE is the fold means' SE (an identity, not a fit)
    fm = df.pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    fm = (fm['global'] - fm['none']).groupby(level='fold').mean()
    assert g.se == pytest.approx(fm.std(ddof=1) / np.sqrt(5), rel=1e-4)


def test_mel_cpu_channel_global_is_equivalent_and_frontends_cpu_unsettled():
    mel = folder_verdicts(RESULTS / 'mel-cpu').loc['channel - global']
    assert mel.verdict == 'equivalent within ±0.01' and mel.tost_p == pytest.approx(0.017, abs=1e-3) and mel.margin == 0.01
    fe = folder_verdicts(RESULTS / 'frontends-cpu').loc['channel - global']
    assert fe.verdict == 'unsettled' and fe.test == 'fold t-test' and fe.unit == 'fold'
    assert (fe.ci90_low, fe.ci90_high) == pytest.approx((-0.012, 0.009), abs=5e-4)
    hand = _by_hand('frontends-cpu', [('channel', 'global')]).loc['channel - global']
    k = _needed_by_hand(hand.estimate, np.std(hand.fold_means, ddof=1), hand.pairs)
    assert fe['needed_for_80%_power'] == f"{k} folds (pairs)"


def test_wilcoxon_ranks_differences_at_the_metric_resolution():
    "Accuracies are k/400: the differences as whole clips (integers) tie exactly; the report's p is that one"
    df = read_results(RESULTS / 'cv-bf16')
    w = df.pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    clips = np.rint((w['channel'] - w['none']).to_numpy() * 400)                # whole clips of 400
    expected = st.wilcoxon(clips).pvalue
    assert fold_aware_table(df).loc['channel - none', 'wilcoxon_p'] == pytest.approx(expected)
    assert expected == pytest.approx(0.99, abs=0.005)
    assert st.wilcoxon((w['channel'] - w['none']).to_numpy()).pvalue != pytest.approx(expected)  # float noise alone


def test_wilcoxon_p_is_scipys_with_and_without_ties_and_zeros():
    "The exact permutation test vectorized over sign flips gives scipy.stats.wilcoxon's p, whichever method scipy picks"
    rng, methods = np.random.default_rng(0), set()
    for n in [*range(2, 16), 20, 60]:
        d = rng.integers(-4, 5, n) / 400 if rng.random() < 0.8 else rng.normal(0, 0.02, n)   # whole clips: ties, zeros
        x = resolved(d)
        if not np.any(x != 0): continue
        ties = np.any(x == 0) or len(np.unique(np.abs(x))) < n
        methods.add('asymptotic' if n > 50 or (ties and n > 13) else 'permutation' if ties else 'exact')
        assert wilcoxon_p(d) == pytest.approx(st.wilcoxon(x).pvalue, rel=1e-12, abs=0), d
    assert methods == {'asymptotic', 'permutation', 'exact'}
    assert np.isnan(wilcoxon_p(np.zeros(5))) and np.isnan(wilcoxon_p(np.array([0.01])))


def test_the_pairs_of_one_machine_give_what_an_independent_computation_on_them_gives():
    "frontends-cpu: seed 0 predates the CPU's recording, seeds 1-2 ran on a Xeon and an EPYC, both arms of a pair on one"
    df = read_results(RESULTS / 'frontends-cpu')
    t = one_machine_table(df)
    hand = _by_hand('frontends-cpu', [tuple(c.split(' - ')) for c in fold_aware_table(df).index], one_machine=True)
    tested = t[t.pairs > 0]
    assert sorted(tested.index) == sorted(hand.index) and len(tested) == 4 and (tested.all_pairs == 15).all()
    assert (t[t.pairs == 0].all_pairs == 5).all() and t[t.pairs == 0].verdict.isna().all()   # seed 0 only: no test
    for c, h in hand.iterrows():
        r = tested.loc[c]
        assert (r.estimate, r.p, r.p_holm) == pytest.approx((h.estimate, h.p, h.p_holm), rel=1e-4), c
        assert r.verdict == h.verdict and r.pairs == 10, c
    assert tested.verdict['pcen_learned - pcen_frozen'] == 'ahead'
    assert not len(one_machine_table(read_results(RESULTS / 'linear-cpu')))     # one Xeon: every pair on one machine


def test_contrasts_without_a_pair_on_one_recorded_machine_are_named_and_not_tested():
    "mel-cpu's files predate the CPU's recording: alone, no section; with its instance_global arm (an EPYC), all named"
    assert not len(one_machine_table(read_results(RESULTS / 'mel-cpu')))
    t = one_machine_table(pooled_runs([RESULTS / 'mel-cpu', RESULTS / 'mel-cpu-instance-global'])[0])
    assert len(t) == 11 and (t.pairs == 0).all() and (t.all_pairs == 10).all() and t.verdict.isna().all()
    section = (RESULTS / 'mel-cpu' / 'with-mel-cpu-instance-global.md').read_text().split('## Pairs made on one machine')[1]
    assert all(f"`{c}`" in section for c in t.index) and '|' not in section       # named, and no table of n/a


def _grid(effects: dict, seeds: int = 3, sd: float = 0.002, seed: int = 0) -> pd.DataFrame:
    "Runs of folds 1-5 x `seeds`: none at random, each other normalization none + its effect + noise"
    rng, rows = np.random.default_rng(seed), []
    for fold in range(1, 6):
        for s in range(seeds):
            base = rng.uniform(0.6, 0.8)
            rows.append(dict(fold=fold, seed=s, normalization='none', final_accuracy=base))
            for n, (eff, noise) in effects.items():
                rows.append(dict(fold=fold, seed=s, normalization=n, final_accuracy=base + eff + rng.normal(0, noise)))
    return pd.DataFrame(rows)


def test_each_verdict_branch_on_synthetic_grids():
    df = _grid({'wave': (0.05, 0.005), 'global': (-0.05, 0.005), 'channel': (0.0, 0.002), 'minmax': (0.004, 0.05)})
    pairs = [('wave', 'none'), ('global', 'none'), ('channel', 'none'), ('minmax', 'none')]
    v = verdict_table(df, pairs)
    assert list(v.verdict) == ['ahead', 'behind', 'equivalent within ±0.01', 'unsettled']
    assert (v.test == 'MixedLM').all() and list(v['needed_for_80%_power'] != '') == [False, False, False, True]
    assert verdict_table(df, pairs, margin=0.0005).loc['channel - none', 'verdict'] == 'unsettled'   # a tighter margin
    # the number of folds needed: by a noncentral t, 80% power is reached there and not one fold before
    t = fold_aware_table(df, pairs).loc['minmax - none']
    n = units_needed(t.estimate, t.unit_sd, 5)
    assert n == _needed_by_hand(t.estimate, t.unit_sd, 5)
    assert f"{int(n)} folds of 3 seeds" == v.loc['minmax - none', 'needed_for_80%_power']
    # a mean difference of zero in float32 noise (quick-bf16-cpu's channel minus quick-cpu's) has no effect to power:
    # no number of units, not the 2.7e13 pairs it gave
    d = np.array([-0.004999995231628418, 0.010000020265579224, -0.004999995231628418])
    assert 0 < d.mean() < 1e-7
    assert np.isnan(units_needed(d.mean(), d.std(ddof=1), 3)) and units_needed(0.005, d.std(ddof=1), 3) > 2


def test_one_seed_a_fold_uses_the_fold_t_test_without_mixedlm():
    df = _grid({'global': (0.03, 0.01)}, seeds=1)
    t = fold_aware_table(df, [('global', 'none')]).loc['global - none']
    d = df.pivot_table(index='fold', columns='normalization', values='final_accuracy')
    d = np.round((d['global'] - d['none']).to_numpy(), 6)
    assert (t.test, t.unit, t.pairs, t.folds) == ('fold t-test', 'fold', 5, 5)
    assert t.p == pytest.approx(st.ttest_1samp(d, 0).pvalue) == t.t_test_p == t.fold_t_p
    assert np.isnan(t.anova_p) and np.isnan(fold_effects(df, [('global', 'none')]).anova_p.iloc[0])
    h = st.t.ppf(0.95, 4) * d.std(ddof=1) / np.sqrt(5)
    assert (t.ci90_low, t.ci90_high) == pytest.approx((d.mean() - h, d.mean() + h))


def test_one_fold_makes_the_seed_the_unit():
    df = _grid({'global': (0.03, 0.01)}, seeds=5)
    t = fold_aware_table(df[df.fold == 1], [('global', 'none')]).loc['global - none']
    assert (t.test, t.unit, t.folds, t.pairs) == ('t-test', 'pair', 1, 5) and np.isnan(t.fold_t_p)


def test_budget_check_equals_the_histories_read_by_hand():
    "Each contrast at every epoch of the last quarter, from the history files with pandas alone"
    out = RESULTS / 'mel-cpu'
    b = budget_table(read_histories(out))
    h = pd.concat([pd.read_csv(f).assign(**{k: v for k, v in zip(('fold', 'normalization', 'seed'), _key(f))})
                   for f in (out / 'runs').glob('*.history.csv')])
    assert [c for c in b.columns if c.startswith('epoch')] == [f"epoch {e}" for e in range(16, 21)]
    hand = pd.DataFrame({f"epoch {e}": {c: (w[c.split(' - ')[0]] - w[c.split(' - ')[1]]).mean() for c in b.index}
                         for e in range(16, 21)
                         for w in [h[h.epoch == e].pivot_table(index=['fold', 'seed'], columns='normalization',
                                                                values='accuracy')]})
    assert len(b) == 8 and b.filter(like="epoch").to_numpy() == pytest.approx(hand.to_numpy(), abs=1e-7)   # at 1e-6
    last = b.filter(like='epoch').iloc[:, -1]
    assert last.to_numpy() == pytest.approx(fold_aware_table(read_results(out)).estimate[last.index].to_numpy(), abs=1e-6)
    # a sign that changes over epochs 16-20, from the hand means (0 counts as a sign of its own)
    moving = {c for c, r in hand.iterrows() if len({np.sign(round(x, 6)) for x in r}) > 1}
    assert set(b.index[~b.sign_stable]) == moving
    flat = h.assign(accuracy=0.5)                                          # no difference at any epoch: no sign change
    assert budget_table(flat).sign_stable.all()


def _key(f: Path) -> tuple:
    fold, *norm, seed = f.name.split('.')[0].split('-')
    return int(fold[4:]), '-'.join(norm), int(seed[4:])


def test_machines_are_listed_with_run_counts_and_old_run_files_say_they_predate():
    df = pd.DataFrame([dict(device='cpu (2 cores)', cpu='AMD EPYC 9R14', cpu_bf16=True, cpu_amx=False, onednn='3.7',
                            onednn_max_isa=None, threads=1, torch='2.14.1')] * 3
                      + [dict(device='cpu (2 cores)', threads=1, torch='2.14.1')])
    m = machines_table(df)
    assert list(m.runs) == [3, 1] and m.iloc[1].cpu == 'not recorded' and m.iloc[1].onednn_max_isa == 'not recorded'
    assert m.iloc[0].onednn_max_isa == 'none'       # recorded, and no cap was set
    text = (RESULTS / 'mel-cpu' / 'report.md').read_text()
    assert ("Machines: these run files predate the recording of the CPU model, its bf16/AMX and oneDNN; they name "
            "device cpu (2 cores); torch 2.14.1+cu130; threads 1.") in text


def test_every_preset_says_how_its_recipe_was_chosen_and_the_report_prints_it():
    assert set(CHOSEN) == set(PRESETS)
    assert 'test fold' in CHOSEN['frontends-cpu'] and 'under 0.78' in CHOSEN['frontends-cpu']
    assert 'blog post' in CHOSEN['blog'] and 'linear' in CHOSEN['linear-cpu'] and '2 CPU cores' in CHOSEN['mel-cpu']
    for folder in ('frontends-cpu', 'mel-cpu', 'cv-bf16'):
        name = read_preset(RESULTS / folder).name
        assert f"How this recipe was chosen: {CHOSEN[name]}" in (RESULTS / folder / 'report.md').read_text()
        hashes = set(_raw(folder).get('training_hash', pd.Series(dtype=str)).dropna())    # the recipe hash is kept
        assert hashes <= {read_preset(RESULTS / folder).training_hash()}


def test_reports_state_where_the_statistics_come_from():
    cv, fe, blog = ((RESULTS / f / 'report.md').read_text() for f in ('cv-bf16', 'frontends-cpu', 'blog-fp32'))
    assert 'random intercept per fold' in cv and "Holm's method over the contrasts of this grid (3 tests)" in cv
    assert 'with one seed a fold, fold and pair coincide' in fe and 'MixedLM is not fitted' in fe
    assert 'the seeds are the unit' in blog and '±0.01' in cv


def test_compare_gives_per_normalization_verdicts_by_the_same_rules():
    runs = {'mel-cpu': read_results(RESULTS / 'mel-cpu'), 'frontends-cpu': read_results(RESULTS / 'frontends-cpu')}
    v = compare_verdicts(list(runs), runs=runs).loc['frontends-cpu']
    w = pd.concat(runs, names=['folder']).reset_index(0).pivot_table(
        index=['normalization', 'fold', 'seed'], columns='folder', values='final_accuracy').dropna()
    w = (w['frontends-cpu'] - w['mel-cpu']).round(6)                               # at 1e-6, as docs/study.md says
    d = w.loc['channel']                                                           # seed 0 of each fold: one a fold
    assert v.loc['channel', 'p'] == pytest.approx(st.ttest_1samp(d, 0).pvalue) and v.loc['channel', 'verdict'] == 'ahead'
    g = w.loc['global']                                                            # seed 1 too in some folds: MixedLM
    assert (v.loc['global', 'test'], v.loc['global', 'pairs']) == ('MixedLM', len(g))
    assert v.loc['global', 'fold_t_p'] == pytest.approx(st.ttest_1samp(g.groupby(level='fold').mean(), 0).pvalue)
    assert set(v.index) == {'global', 'channel', 'instance'}


def test_the_margin_is_about_one_runs_spread_between_seeds_as_the_results_page_says():
    "docs/results.md: the SD over seeds, per fold and normalization, averages 1.0 to 1.45 points in these folders"
    from esc50_norm.study.report import VERDICT_MARGIN
    text = (RESULTS.parent / 'docs' / 'results.md').read_text()
    assert VERDICT_MARGIN == 0.01 and 'averages 1.0 to 1.45 points' in text
    means = [_raw(f).groupby(['fold', 'normalization']).final_accuracy.std(ddof=1).dropna().mean() * 100
             for f in ('cv-bf16', 'mel-cpu', 'linear-cpu', 'frontends-cpu')]
    assert round(min(means), 2) == 1.0 and round(max(means), 2) == 1.45


def test_the_declared_power_of_the_augmentation_by_epochs_interaction_is_what_the_run_files_give():
    "docs/results.md plans mel60-cpu's interaction from the fold means of mel-aug-cpu - mel-cpu on global"
    from statsmodels.stats.power import TTestPower
    w = {f: _raw(f).pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
         for f in ('mel-cpu', 'mel-aug-cpu')}
    d = (w['mel-aug-cpu']['global'] - w['mel-cpu']['global']).dropna()
    sd = d.groupby('fold').mean().std(ddof=1)
    needed = TTestPower().solve_power(nobs=5, alpha=0.05, power=0.8) * np.sqrt(2) * sd
    power = TTestPower().power(effect_size=-d.mean() / (np.sqrt(2) * sd), nobs=5, alpha=0.05)
    text = _page()
    said = (f"spread with an SD of {sd * 100:.1f} points, so an interaction (a difference of two such differences, SD "
            f"about √2 × {sd * 100:.1f}) needs about {needed * 100:.1f} points for 80% power with 5 folds")
    assert said in text and f"merely vanishes at 60 epochs (+{-d.mean() * 100:.1f}), the power is about {power:.1f}," in text


@pytest.mark.parametrize('before,carrier', [('mel-cpu', 'augmentation alone carries'),
                                            ('mel-aug-cpu', 'the epochs carry')])
def test_the_declared_power_of_input_batchnorm_grids_is_what_the_run_files_give(before, carrier):
    """docs/results.md plans mel-aug-cpu-bn-freq's and mel-aug60-cpu-bn-freq's tests from the fold means of how
    bn_freq - global changes from `before` (pooled with its bn_freq folder) to frontends-cpu, pair by pair"""
    from statsmodels.stats.power import TTestPower
    w = {f: _raw(f).pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
         for f in (before, f'{before}-bn-freq', 'frontends-cpu')}
    ref = w[f'{before}-bn-freq']['bn_freq'] - w[before]['global']
    d = ((w['frontends-cpu']['bn_freq'] - w['frontends-cpu']['global']) - ref).dropna()
    sd = d.groupby('fold').mean().std(ddof=1)
    needed = TTestPower().solve_power(nobs=5, alpha=0.05, power=0.8) * sd
    power = TTestPower().power(effect_size=d.mean() / sd, nobs=5, alpha=0.05)
    text = _page()
    said = (f"spread with an SD of {sd * 100:.1f} points, so 80% power needs about {needed * 100:.1f} points with 5 "
            f"folds (statsmodels `TTestPower`, two-sided at 0.05); if {carrier} the whole "
            f"+{d.mean() * 100:.1f}, the power is about {power:.2f}.")
    assert len(d) == 10 and said in text


def test_the_declared_power_of_learned_pcen_in_parts_is_what_the_run_files_give():
    "docs/results.md plans pcen-parts-cpu's two tests (Holm over two, two seeds a fold) from frontends-cpu's pairs"
    from statsmodels.stats.power import TTestPower
    w = _raw('frontends-cpu').pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    d = (w['pcen_learned'] - w['pcen_frozen']).dropna()
    sd = d.std(ddof=1) / np.sqrt(2)                                        # a fold's mean of two seeds' pairs
    power = lambda effect: TTestPower().power(effect_size=effect / sd, nobs=5, alpha=0.025)
    needed = TTestPower().solve_power(nobs=5, alpha=0.025, power=0.8) * sd
    text = _page()
    said = (f"spread with an SD of {d.std(ddof=1) * 100:.1f} points, so a fold's mean of two seeds has an SD of about "
            f"{sd * 100:.1f} (more if the folds differ); at Holm's first step (0.025), 80% power with 5 folds needs "
            f"about {needed * 100:.1f} points (statsmodels `TTestPower`, two-sided); if one part carries the whole "
            f"+{d.mean() * 100:.1f}, the power is about {power(d.mean()):.2f}, if each carries half, about "
            f"{power(d.mean() / 2):.2f}.")
    assert len(d) == 15 and said in text


def _planned(folders: tuple, a: str, b: str, tests: int):
    """A plan's figures, as docs/results.md gives them, from the fold means `d` of `a - b` in `folders`' run files: `d`,
    their SD, Holm's first level over `tests`, the effect 80% power needs with 5 folds, the power of an effect and the
    90% CI's half-width (statsmodels, scipy)"""
    w = _raw(*folders).pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    d = (w[a] - w[b]).groupby(level='fold').mean()
    sd, alpha = d.std(ddof=1), 0.05 / tests
    return d, sd, alpha, *_plan(sd, alpha)


def _plan(sd: float, alpha: float = 0.05):
    """For fold means with SD `sd` over 5 folds (statsmodels, scipy): the effect 80% power needs at `alpha`, the power
    of an effect, and the 90% CI's half-width"""
    from statsmodels.stats.power import TTestPower
    needed = TTestPower().solve_power(nobs=5, alpha=alpha, power=0.8) * sd
    power = lambda effect: TTestPower().power(effect_size=effect / sd, nobs=5, alpha=alpha)
    return needed, power, st.t.ppf(0.95, 4) * sd / np.sqrt(5)


def _page() -> str:
    "docs/results.md with its whitespace collapsed, as its sentences are quoted"
    return ' '.join((RESULTS.parent / 'docs' / 'results.md').read_text().split())


@pytest.mark.parametrize('grid,tests', [('pcen-bn-cpu', 4), ('pcen-bn-xeon', 3)])
def test_the_declared_power_of_frozen_pcen_normalized_per_band_is_what_the_run_files_give(grid, tests):
    """docs/results.md plans pcen-bn-cpu's tests (Holm over the pooled grid's four) and pcen-bn-xeon's (Holm over its
    three) from pcen-parts-cpu's fold means"""
    d, sd, alpha, needed, power, half = _planned(('pcen-parts-cpu',), 'pcen_learn_compress', 'pcen_frozen', tests)
    text = _page()
    if grid == 'pcen-bn-cpu':
        said = (f"the fold means of `pcen_learn_compress − pcen_frozen` spread with an SD of {sd * 100:.2f} points; at "
                f"Holm's first step over four ({alpha:.4f}), 80% power with 5 folds needs about {needed * 100:.1f} "
                f"points (statsmodels `TTestPower`, two-sided); if the normalization gives half the "
                f"+{d.mean() * 100:.1f}, the power is about {power(d.mean() / 2):.2f}, if all of it, about 1; and the "
                f"equivalence the second contrast could reach needs its estimate within about ±{1 - half * 100:.2f} "
                f"points of zero (the 90% CI's half-width at that SD is about {half * 100:.2f}).")
    else:
        said = (f"(an SD of {sd * 100:.2f} points between its fold means of `pcen_learn_compress − pcen_frozen`): at "
                f"Holm's first step over three ({alpha:.4f}), 80% power with 5 folds needs about {needed * 100:.1f} "
                f"points; if the normalization gives half the +{d.mean() * 100:.1f}, the power is about "
                f"{power(d.mean() / 2):.2f}, if all of it, about 1; the equivalence needs the estimate within about "
                f"±{1 - half * 100:.2f} points of zero.")
    assert f"`results/{grid}`" in text and said in text
    assert np.isnan(power(d.mean())) or power(d.mean()) > 0.995          # 'about 1' (statsmodels: nan this far out)


@pytest.mark.parametrize('grid,part', [('pcen-bias-root-xeon', 'curve'), ('pcen-gain-xeon', 'gain exponent')])
def test_the_declared_power_of_pcen_parts_on_the_xeon_is_what_the_run_files_give(grid, part):
    "docs/results.md plans pcen-bias-root-xeon's and pcen-gain-xeon's two tests (Holm over five) from pcen-bn-xeon's fold means"
    d, sd, alpha, needed, power, half = _planned(('pcen-bn-xeon',), 'pcen_learn_compress', 'pcen_frozen', 5)
    text = _page()
    said = (f"(an SD of {sd * 100:.2f} points between its fold means of `pcen_learn_compress − pcen_frozen`): at Holm's "
            f"first step over five ({alpha:.4f}), 80% power with 5 folds needs about {needed * 100:.1f} points; if the "
            f"{part} gives all of the +{d.mean() * 100:.1f}, the power is about {power(d.mean()):.2f}, if half of it, "
            f"about {power(d.mean() / 2):.2f}. Equivalence with learned compression is out of reach at that SD (the "
            f"90% CI's half-width is about {half * 100:.2f} points, so the estimate would have to lie within "
            f"±{1 - half * 100:.2f} points of zero)")
    assert f"`results/{grid}`" in text and said in text and len(d) == 5


def test_learned_pcen_in_parts_is_run_as_declared():
    """pcen-parts-cpu: frontends-cpu's recipe, its three arms, seed 0 of every arm before any seed 1, clean commits at
    or after the declaring one, one thread a run; the frozen arm's PCEN ended where librosa's starts, and the part
    that was not learned stayed there too"""
    from esc50_norm.pcen import smoothing_coef
    df = _raw('pcen-parts-cpu')
    assert read_preset(RESULTS / 'pcen-parts-cpu').training_hash() == read_preset(RESULTS / 'frontends-cpu').training_hash()
    assert set(df.normalization) == {'pcen_frozen', 'pcen_learn_smooth', 'pcen_learn_compress'} and len(df) == 30
    assert set(df.seed) == {0, 1} and set(df.fold) == {1, 2, 3, 4, 5}
    first_seed1 = pd.to_datetime(df[df.seed == 1].started_at).min()
    assert (pd.to_datetime(df[df.seed == 0].started_at) < first_seed1).all()      # seed 0 of every arm started first
    assert (~df.git_dirty).all() and (df.threads == 1).all() and '6b99949' in {c[:7] for c in df.git_commit}
    start = dict(alpha=0.98, delta=2.0, root=2.0, smooth_coef=smoothing_coef(16000, 512))
    fixed = dict(pcen_frozen=set(start), pcen_learn_smooth={'alpha', 'delta', 'root'}, pcen_learn_compress={'smooth_coef'})
    for _, r in df.iterrows():
        ended = {k: np.array(v) for k, v in json.loads(r.frontend_params).items()}
        for k in start:
            stayed = np.allclose(ended[k], start[k], rtol=1e-5, atol=0)
            assert stayed == (k in fixed[r.normalization]) and ended[k].shape == (64,), (r.normalization, r.fold, k)


def test_frozen_pcen_per_band_on_the_xeon_is_run_as_declared():
    """pcen-bn-xeon: frontends-cpu's recipe, its three arms, seed 0 of every arm before any seed 1, every run from a
    clean worktree of the one commit that declared it, one thread a run, on the Intel Xeon with AMX alone"""
    df = _raw('pcen-bn-xeon')
    assert read_preset(RESULTS / 'pcen-bn-xeon').training_hash() == read_preset(RESULTS / 'frontends-cpu').training_hash()
    assert set(df.normalization) == {'pcen_frozen', 'pcen_learn_compress', 'pcen_frozen_bn'} and len(df) == 30
    assert set(df.fold) == {1, 2, 3, 4, 5} and set(df.seed) == {0, 1}
    assert {c[:7] for c in df.git_commit} == {'aef8299'} and (~df.git_dirty).all() and (df.threads == 1).all()
    assert set(df.cpu) == {'Intel(R) Xeon(R) Processor'} and df.cpu_amx.all()
    assert (pd.to_datetime(df[df.seed == 0].started_at) < pd.to_datetime(df[df.seed == 1].started_at).min()).all()


@pytest.mark.parametrize('grid,arm,commit,learned', [
    ('pcen-bias-root-xeon', 'pcen_learn_bias_root', '5157dbb', ('delta', 'root')),
    ('pcen-gain-xeon', 'pcen_learn_gain', 'af35a62', ('alpha',))])
def test_a_grid_of_pcen_learning_one_part_on_the_xeon_is_run_as_declared(grid, arm, commit, learned):
    """pcen-bias-root-xeon, pcen-gain-xeon: frontends-cpu's recipe, one arm, every fold of seed 0 started before any of
    seed 1, every run from a clean worktree of the one commit that declared it, one thread a run, on the Intel Xeon with
    AMX alone; the parameters the arm learns moved in every run, the others stayed at librosa's values"""
    from esc50_norm.pcen import smoothing_coef
    df = _raw(grid)
    assert read_preset(RESULTS / grid).training_hash() == read_preset(RESULTS / 'pcen-bn-xeon').training_hash()
    assert set(df.normalization) == {arm} and len(df) == 10
    assert set(df.fold) == {1, 2, 3, 4, 5} and set(df.seed) == {0, 1}
    assert {c[:7] for c in df.git_commit} == {commit} and (~df.git_dirty).all() and (df.threads == 1).all()
    assert set(df.cpu) == {'Intel(R) Xeon(R) Processor'} and df.cpu_amx.all()
    assert (pd.to_datetime(df[df.seed == 0].started_at) < pd.to_datetime(df[df.seed == 1].started_at).min()).all()
    start = dict(alpha=0.98, delta=2.0, root=2.0, smooth_coef=smoothing_coef(16000, 512))
    for _, r in df.iterrows():
        ended = {k: np.array(v) for k, v in json.loads(r.frontend_params).items()}
        for k in start:
            stayed = np.allclose(ended[k], start[k], rtol=1e-5, atol=0)
            assert stayed == (k not in learned) and ended[k].shape == (64,), (r.fold, r.seed, k)


def test_the_pairs_of_learned_pcen_in_parts_that_change_the_commit_are_those_the_results_page_names():
    "Every pair on one CPU; the pairs whose two runs name two commits, and those commits, as docs/results.md says"
    df = _raw('pcen-parts-cpu').assign(commit=lambda d: d.git_commit.str[:7])
    assert df.cpu.nunique() == 1 and df.cpu_bf16.all() and not df.cpu_amx.any()
    c = df.pivot(index=['fold', 'seed'], columns='normalization', values='commit')
    changed = {a: [i for i in c.index if c.loc[i, a] != c.loc[i, 'pcen_frozen']]
               for a in ('pcen_learn_smooth', 'pcen_learn_compress')}
    assert changed == {'pcen_learn_smooth': [(1, 1)], 'pcen_learn_compress': [(1, 1), (3, 0)]}
    said = (f"fold 1 of seed 1 (`pcen_frozen` from `{c.loc[(1, 1), 'pcen_frozen']}`, both learning arms from "
            f"`{c.loc[(1, 1), 'pcen_learn_smooth']}`) and fold 3 of seed 0 (`pcen_learn_compress` from "
            f"`{c.loc[(3, 0), 'pcen_learn_compress']}`, `pcen_frozen` from `{c.loc[(3, 0), 'pcen_frozen']}`)")
    assert c.loc[(1, 1), 'pcen_learn_smooth'] == c.loc[(1, 1), 'pcen_learn_compress']
    assert said in _page()


@pytest.mark.parametrize('later,shared', [('linear-cpu', {'wave - none', 'global - wave', 'channel - wave', 'channel - global'}),
                                          ('mel-aug-cpu', {'instance - global'})])
def test_how_a_contrast_changes_between_folders_equals_an_independent_computation(later, shared):
    "Against mel-cpu: each shared contrast, later minus first pair by pair, MixedLM by formula, Holm and verdicts by hand"
    t = compare_contrasts([RESULTS / 'mel-cpu', RESULTS / later]).loc[later]
    w = {f: _raw(f).pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
         for f in ('mel-cpu', later)}
    assert set(t.index) == shared
    rows = {}
    for c in t.index:
        a, b = c.split(' - ')
        rows[c] = _one_by_hand(((w[later][a] - w[later][b]) - (w['mel-cpu'][a] - w['mel-cpu'][b])).dropna())
        assert rows[c]['pairs'] == 10                                   # 5 folds x 2 seeds in both folders
    _agree(t, _verdicts_by_hand(rows))
    assert (t.test == 'MixedLM').all()


@pytest.mark.parametrize('first,later', [('mel-aug-cpu', 'mel-aug60-cpu'), ('mel-aug60-cpu', 'frontends-cpu'),
                                         ('mel-cpu', 'mel60-cpu'), ('mel60-cpu', 'mel-aug60-cpu')])
def test_the_declared_verdicts_of_one_change_equal_an_independent_computation(first, later):
    """docs/results.md declares the verdicts of the schedule split in two (mel-aug60-cpu: epochs alone against
    mel-aug-cpu, learning rate alone in frontends-cpu against it) and of augmentation x epochs (mel60-cpu: epochs alone
    against mel-cpu, augmentation alone in mel-aug60-cpu against it): global and instance, Holm over the two;
    instance - global, one test. By hand from the raw files: the pairs of each (fold, seed) both folders hold, MixedLM
    or fold t-test, Holm and verdicts"""
    runs = {f: read_results(RESULTS / f) for f in (first, later)}
    v, c = (fn([first, later], runs=runs).loc[later] for fn in (compare_verdicts, compare_contrasts))
    w = {f: _raw(f).pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
         for f in (first, later)}
    per = {n: _one_by_hand((w[later][n] - w[first][n]).dropna()) for n in ('global', 'instance')}
    gap = lambda f: w[f]['instance'] - w[f]['global']
    _agree(v, _verdicts_by_hand(per))
    _agree(c, _verdicts_by_hand({'instance - global': _one_by_hand((gap(later) - gap(first)).dropna())}))
    assert {n: r['pairs'] for n, r in per.items()} == ({'global': 10, 'instance': 10} if later != 'frontends-cpu'
                                                       else {'global': 10, 'instance': 5})   # frontends-cpu: seed 0 of instance
    if later == 'frontends-cpu':                        # declared on seed 0: the results page gives global's seed 0 too
        g = _verdicts_by_hand({n: _one_by_hand((w[later][n] - w[first][n]).xs(0, level='seed', drop_level=False).dropna())
                               for n in ('global', 'instance')}).loc['global']
        pt = lambda x: f"{x * 100:+.1f}".replace('-', '−')
        said = (f"On seed 0 alone global is {pt(g.estimate)} points (90% CI {pt(g.ci90_low)} … {pt(g.ci90_high)}, "
                f"fold t-test p = {g.p:.2f}, {g.p_holm:.2f} after Holm over the two; computed by hand by the reports' rules, "
                f"not in a report), {g.verdict} as well")
        assert said in _page()


def test_the_declared_interaction_of_augmentation_and_epochs_equals_an_independent_computation():
    """docs/results.md declares mel60-cpu's interaction: augmentation's effect at 60 epochs (mel-aug60-cpu - mel60-cpu)
    minus its effect at 20 (mel-aug-cpu - mel-cpu), on global and instance, Holm over the two; by hand from the raw
    files, pair by pair on the (fold, seed) all four folders hold"""
    names = ('mel-cpu', 'mel-aug-cpu', 'mel60-cpu', 'mel-aug60-cpu')
    runs = {f: read_results(RESULTS / f) for f in names}
    t = compare_interactions(list(names[2:]), list(names[:2]), runs={f: runs[f] for f in names[2:]},
                             minus_runs={f: runs[f] for f in names[:2]}).loc['mel-aug60-cpu']
    w = {f: _raw(f).pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy') for f in names}
    effect = lambda aug, plain, n: w[aug][n] - w[plain][n]
    rows = {n: _one_by_hand((effect('mel-aug60-cpu', 'mel60-cpu', n) - effect('mel-aug-cpu', 'mel-cpu', n)).dropna())
            for n in ('global', 'instance')}
    _agree(t, _verdicts_by_hand(rows))
    assert (t.pairs == 10).all()


@pytest.mark.parametrize('ref,later,pool', [
    (('mel-cpu', 'mel-cpu-bn-freq'), ('frontends-cpu',), ['mel-cpu-bn-freq']),
    (('mel-cpu', 'mel-cpu-bn-freq'), ('mel-aug-cpu', 'mel-aug-cpu-bn-freq'), ['mel-cpu-bn-freq', 'mel-aug-cpu-bn-freq']),
    (('mel-aug-cpu', 'mel-aug-cpu-bn-freq'), ('mel-aug60-cpu', 'mel-aug60-cpu-bn-freq'),
     ['mel-aug-cpu-bn-freq', 'mel-aug60-cpu-bn-freq']),
    (('mel-aug60-cpu', 'mel-aug60-cpu-bn-freq'), ('frontends-cpu',), ['mel-aug60-cpu-bn-freq'])])
def test_how_a_contrast_changes_against_a_pooled_reference_equals_an_independent_computation(ref, later, pool):
    """Against a folder pooled with its bn_freq arm run apart: mel-cpu's, against frontends-cpu and mel-aug-cpu pooled
    with mel-aug-cpu-bn-freq (declared before its runs); mel-aug-cpu's against mel-aug60-cpu's (the epochs alone), and
    mel-aug60-cpu's against frontends-cpu (the learning rate alone), both declared before mel-aug60-cpu-bn-freq's runs.
    Each contrast both hold, pair by pair: MixedLM where a fold holds two pairs, the t-test of the fold differences
    where it holds one (frontends-cpu's seed 0 of channel and instance); Holm over the contrasts, verdicts by hand"""
    folders = [RESULTS / ref[0], RESULTS / later[0]]
    t = compare_contrasts(folders, runs=compare_runs(folders, [RESULTS / f for f in pool])).loc['+'.join(later)]
    old, new = (_raw(*f).pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
                for f in (ref, later))
    both = sorted(set(old.columns) & set(new.columns) - {'global'})
    assert sorted(c.split(' - ')[0] for c in t.index) == both and all(c.endswith(' - global') for c in t.index)
    rows = {}
    for c in t.index:
        a, b = c.split(' - ')
        rows[c] = _one_by_hand(((new[a] - new[b]) - (old[a] - old[b])).dropna())
        assert rows[c]['pairs'] == (5 if later == ('frontends-cpu',) and a != 'bn_freq' else 10)
    _agree(t, _verdicts_by_hand(rows))
    assert list(t.test) == ['fold t-test' if r['pairs'] == 5 else 'MixedLM' for r in rows.values()]


def _shift(df: pd.DataFrame, effects: dict, sd: float = 0.002, seed: int = 0) -> pd.DataFrame:
    "The runs of `df` again, each normalization's accuracy moved by its effect (0 where absent) plus noise"
    rng, out = np.random.default_rng(seed), df.copy()
    out['final_accuracy'] += out.normalization.map(effects).fillna(0.0) + rng.normal(0, sd, len(out))
    return out


def test_an_interaction_of_two_changes_equals_an_independent_computation():
    """Synthetic 2x2: a change costs global 4 points on one side (first -> second) and nothing on the other (third ->
    fourth), and costs instance 1 point on both: the interaction on global is ahead, on instance equivalent; every
    number against a MixedLM by formula on (fourth - third) - (second - first), Holm and verdicts by hand"""
    first = _grid({'global': (0.0, 0.002), 'instance': (-0.10, 0.002)}, seeds=2, seed=0)
    second = _shift(first, {'global': -0.04, 'instance': -0.01}, seed=1)
    third = _shift(first, {'global': 0.05, 'instance': 0.05}, seed=2)
    fourth = _shift(third, {'instance': -0.01}, seed=3)
    t = compare_interactions(['third', 'fourth'], ['first', 'second'], runs={'third': third, 'fourth': fourth},
                             minus_runs={'first': first, 'second': second}).loc['fourth']
    assert t.verdict.to_dict() == {'none': 'equivalent within ±0.01', 'global': 'ahead',
                                   'instance': 'equivalent within ±0.01'}
    w = lambda df: df.pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    rows = {n: _one_by_hand((w(fourth)[n] - w(third)[n]) - (w(second)[n] - w(first)[n])) for n in t.index}
    _agree(t, _verdicts_by_hand(rows))
    assert rows['global']['estimate'] == pytest.approx(0.04, abs=0.003) and (t.pairs == 10).all()
    gone = compare_interactions(['third', 'fourth'], ['first', 'second'], runs={'third': third, 'fourth': fourth},
                                minus_runs={'first': first[first.fold > 3], 'second': second[second.fold < 4]})
    assert not len(gone)                                        # no (fold, seed) that all four hold: nothing to test


def test_a_contrast_that_grows_is_ahead_one_that_shrinks_behind_and_one_that_stays_equivalent():
    """Synthetic: wave rises 5 points above none and global falls 5 under it, channel stays 2 above: each contrast's
    change has its sign; the same grid made again with new noise keeps every contrast within the margin"""
    first = _grid({'wave': (0.0, 0.002), 'global': (0.0, 0.002), 'channel': (0.02, 0.001)}, seed=1)
    later = _grid({'wave': (0.05, 0.002), 'global': (-0.05, 0.002), 'channel': (0.02, 0.001)}, seed=2)
    runs = {'first': first, 'later': later}
    v = compare_contrasts(list(runs), runs=runs).loc['later'].verdict
    assert (v['wave - none'], v['global - wave'], v['channel - global']) == ('ahead', 'behind', 'ahead')
    assert v['channel - wave'] == 'behind'                        # 0.02 - 0.05 against 0.02 - 0
    same = compare_contrasts(['first', 'again'], runs={'first': first, 'again': _grid(
        {'wave': (0.0, 0.002), 'global': (0.0, 0.002), 'channel': (0.02, 0.001)}, seed=3)}).loc['again'].verdict
    assert (same == 'equivalent within ±0.01').all()


def test_what_the_results_page_says_of_the_epochs_change_beside_its_verdict_is_the_run_files():
    """mel-aug60-cpu-bn-freq's epochs' change on bn_freq - global: the numbers docs/results.md gives beside the declared
    verdict, which no report prints (fold means, fold 3's two seeds, the fold means' t-test, the mixed model's fold and
    residual SDs), from the raw files"""
    w = {f: _raw(*f).pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
         for f in (('mel-aug-cpu', 'mel-aug-cpu-bn-freq'), ('mel-aug60-cpu', 'mel-aug60-cpu-bn-freq'))}
    gap = [v['bn_freq'] - v['global'] for v in w.values()]
    d = (gap[1] - gap[0]).dropna().rename('d').reset_index()
    folds = d.groupby('fold').d.mean()
    with warnings.catch_warnings():                                    # on the boundary: statsmodels says so
        warnings.simplefilter('ignore')
        fit = smf.mixedlm('d ~ 1', d, groups=d.fold).fit(reml=True)
    pt = lambda x: f"{x * 100:+.1f}".replace('-', '−')
    text = _page()
    assert (folds > 0).all()
    said = [f"larger in all 5 folds (+{folds.min() * 100:.2f} to +{folds.max() * 100:.1f} fold by fold)",
            "the two seeds' changes are {} and {} points".format(*(pt(x) for x in d[d.fold == 3].d)),
            f"(SD {np.sqrt(float(fit.cov_re.iloc[0, 0])) * 100:.1f} points, against {np.sqrt(fit.scale) * 100:.1f} within",
            f"gives {st.ttest_1samp(folds, 0).pvalue:.3f} (computed by hand from the run files after the verdict was read"]
    assert [s for s in said if s not in text] == []


def _float32_grid(clips: dict, above: int = 3) -> pd.DataFrame:
    "Seed 0 of each fold of `clips` (fold -> clips right of 400 under global), channel `above` clips more; float32 as runs"
    acc = lambda k: float(np.float32(k / 400))
    return pd.DataFrame([dict(fold=f, seed=0, normalization=n, final_accuracy=acc(k + above * (n == 'channel')))
                         for f, k in clips.items() for n in ('global', 'channel')])


def test_equal_differences_in_float32_noise_have_no_spread_so_neither_a_verdict_nor_a_tie():
    """3 clips more in each fold: the float32 differences differ by about 1e-8, which decided 'ahead' (p 2.5e-6 on a
    spread of noise) or, where they happened to be equal, 'equivalent' without a test; at 1e-6 they are equal: no test"""
    for clips in ({1: 280, 2: 286}, {1: 280, 2: 286, 3: 300, 4: 250, 5: 320}):
        df = _float32_grid(clips)
        w = df.pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
        assert (w['channel'] - w['global']).nunique() > 1                              # unequal in float32 noise
        t = fold_aware_table(df, [('channel', 'global')]).loc['channel - global']
        v = verdict_table(df, [('channel', 'global')]).loc['channel - global']
        assert t.estimate == 0.0075 and t.se == 0 and t.note == f"all {len(clips)} fold differences equal +0.0075: no spread, no test"
        assert v.verdict == 'unsettled' and np.isnan(v.p) and np.isnan(v.tost_p)


def test_a_verdict_table_that_mixes_units_shows_the_unit():
    "minmax on fold 1 alone (its seeds the unit) beside contrasts over 5 folds: the table says which is which"
    from esc50_norm.study.report.sections import verdict_section
    from esc50_norm.study.report.verdicts import add_verdicts
    df = _grid({'global': (0.03, 0.01), 'minmax': (0.03, 0.01)}, seeds=3)
    df = df[(df.normalization != 'minmax') | (df.fold == 1)]
    tests = add_verdicts(fold_aware_table(df, [('global', 'none'), ('minmax', 'none')]))
    text = '\n'.join(verdict_section(tests, fold_effects(df, [('global', 'none'), ('minmax', 'none')])))
    header = next(l for l in text.splitlines() if l.startswith('|') and 'verdict' in l)
    assert list(tests.unit) == ['fold', 'pair'] and [c.strip() for c in header.strip('|').split('|')][:2] == ['contrast', 'unit']
    assert "where a contrast's pairs are all of one fold (`unit`: pair), the seeds are the unit" in text
    alone = add_verdicts(fold_aware_table(df, [('global', 'none')]))
    assert 'unit' not in next(l for l in verdict_section(alone, fold_effects(df, [('global', 'none')])) if 'verdict |' in l)


def test_a_grid_with_one_seed_in_some_folds_says_why_the_folds_are_not_tested_against_each_other():
    "Two seeds in folds 1-2, one in folds 3-5 (a grid growing seed by seed): no ANOVA, and the reason fits the grid"
    from esc50_norm.study.report.sections import verdict_section
    from esc50_norm.study.report.verdicts import add_verdicts
    pair = [('global', 'none')]
    df = _grid({'global': (0.03, 0.01)}, seeds=2)
    uneven = df[(df.seed == 0) | (df.fold <= 2)]
    for runs, why in ((uneven, "the ANOVA needs two seeds in every fold, and a fold with one leaves no variation within it."),
                      (df[df.seed == 0], "one seed a fold leaves no variation within a fold.")):
        effects = fold_effects(runs, pair)
        text = '\n'.join(verdict_section(add_verdicts(fold_aware_table(runs, pair)), effects))
        assert np.isnan(effects.anova_p.iloc[0]) and f"No test of heterogeneity between folds: {why}" in text
    assert fold_effects(df, pair).anova_p.notna().all()                 # two seeds in every fold: the ANOVA is there


def _two_arms(fold_diffs: dict) -> pd.DataFrame:
    "none at 0.5 and global at 0.5 + d for each (fold, seed): `fold_diffs` maps a fold to its seeds' differences"
    return pd.DataFrame([dict(fold=f, seed=s, normalization=n, final_accuracy=0.5 + (n == 'global') * x)
                         for f, ds in fold_diffs.items() for s, x in enumerate(ds) for n in ('none', 'global')])


def test_seeds_that_agree_within_every_fold_are_tested_by_their_fold_means():
    """No variance within folds: statsmodels' MixedLM fit degenerated there (SE 0.0056 where the fold means give 0.0088,
    p 0.027: a false 'ahead'); the model is then the fold means' t-test, which decides"""
    pair = [('global', 'none')]
    t = fold_aware_table(_two_arms({1: [.02, .02], 2: [.03, .03], 3: [.05, .05]}), pair).loc['global - none']
    fm = np.array([.02, .03, .05])
    assert t.test == 'fold t-test' and t.note == "the seeds agree within every fold: the fold means' t-test is the primary"
    assert (t.se, t.p) == pytest.approx((fm.std(ddof=1) / np.sqrt(3), st.ttest_1samp(fm, 0).pvalue), rel=1e-6)
    assert verdict_table(_two_arms({1: [.02, .02], 2: [.03, .03], 3: [.05, .05]}), pair).verdict.iloc[0] == 'unsettled'
    t = fold_aware_table(_two_arms({1: [.02, .021], 2: [.03, .03], 3: [.05, .05]}), pair).loc['global - none']
    assert t.test == 'MixedLM'                                             # one seed apart: the model is fitted


def test_the_report_says_why_seeds_that_agree_within_every_fold_have_no_mixed_model_and_no_anova():
    "Two seeds in every fold, equal within each: neither 'one seed a fold' nor 'a fold with one seed' is the reason"
    from esc50_norm.study.report.sections import verdict_section
    from esc50_norm.study.report.verdicts import add_verdicts
    pair, df = [('global', 'none')], _two_arms({1: [.02, .02], 2: [.03, .03], 3: [.05, .05], 4: [.01, .01]})
    text = '\n'.join(verdict_section(add_verdicts(fold_aware_table(df, pair)), fold_effects(df, pair)))
    assert ("where the folds hold several seeds that agree within every fold (or MixedLM could not be fitted: "
            "`note`), the primary test is the t-test of the fold means") in text and 'with one seed a fold' not in text
    assert ("No test of heterogeneity between folds: the seeds agree within every fold, which leaves no variation "
            "within a fold.") in text and 'needs two seeds' not in text
    replay = _two_arms({1: [.0, .0], 2: [.0, .0], 3: [.0, .0]})                 # every difference 0: no spread at all
    text = '\n'.join(verdict_section(add_verdicts(fold_aware_table(replay, pair)), fold_effects(replay, pair)))
    assert 'the seeds agree within every fold, which leaves no variation' in text and 'a fold with one' not in text


def test_the_power_figure_follows_the_test_that_decided():
    """MixedLM decides (p 0.19) while the fold means agree closely: the folds needed come from MixedLM's SE (the SD of
    a fold's difference it implies, SE x sqrt(folds)), not from the fold means' SD, which asked for the 4 folds there are"""
    df = _two_arms({1: [.025, .025], 2: [.1, -.05], 3: [0, .075], 4: [.025, .025]})
    pair = [('global', 'none')]
    t, v = fold_aware_table(df, pair).loc['global - none'], verdict_table(df, pair).loc['global - none']
    hand = _one_by_hand(pd.Series({(r.fold, r.seed): r.d for r in df.pivot_table(
        index=['fold', 'seed'], columns='normalization', values='final_accuracy').assign(
        d=lambda w: w['global'] - w['none']).reset_index().itertuples()}).rename_axis(['fold', 'seed']))
    assert t.test == 'MixedLM' and t.se == pytest.approx(hand['se'], rel=1e-4) and v.verdict == 'unsettled'
    needed = _needed_by_hand(hand['estimate'], hand['se'] * 2, 4)
    assert needed > 4 and v['needed_for_80%_power'] == f"{needed} folds of 2 seeds"
    uneven = verdict_table(_two_arms({1: [.01], 2: [.0, .03, .02], 3: [.04, .0, .01]}), pair)
    assert uneven['needed_for_80%_power'].iloc[0].endswith(' folds of 2.3 seeds on average')


def test_runs_the_statistics_cannot_pair_are_refused_by_name():
    "Accuracies in percent, a run given twice, a misspelt arm: each a ValueError naming it, not a table of nonsense"
    df = _two_arms({1: [.02, .01], 2: [.03, .0], 3: [.05, .02]})
    pct = df.assign(final_accuracy=df.final_accuracy * 100)
    for f in (summary_table, verdict_table, paired_differences):
        with pytest.raises(ValueError, match=r"`final_accuracy` is an accuracy in \[0, 1\]; got \(none, 1, 0\) = 50\.0, "
                                             r"\(global, 1, 0\) = 52\.0, \(none, 1, 1\) = 50\.0 and 9 more$"):
            f(pct)
    twice = pd.concat([df, df.tail(1).assign(final_accuracy=0.2)])
    with pytest.raises(ValueError, match=r"runs given twice \(normalization, fold, seed\): \(global, 3, 1\), \(global, 3, 1\)"):
        verdict_table(twice)
    with pytest.raises(ValueError, match=r"unknown normalization \['globl'\] \(did you mean 'global'\?\)"):
        fold_effects(df, [('globl', 'none')])
    apart = pd.concat([df[df.normalization == 'none'], df[df.normalization == 'global'].assign(seed=lambda d: d.seed + 7)])
    assert fold_effects(apart).empty and verdict_table(apart).empty         # no (fold, seed) holds both arms
    for f in (summary_table, verdict_table, paired_differences):             # no runs, or not runs: named, no KeyError
        with pytest.raises(ValueError, match=r"these lack normalization, fold, seed, final_accuracy \(no run at all"):
            f(pd.DataFrame())
        with pytest.raises(ValueError, match=r"runs need the columns .*; these lack final_accuracy$"):
            f(df.drop(columns='final_accuracy'))


def test_a_contrast_without_spread_on_one_machine_leaves_that_tables_holm_family_as_it_leaves_the_verdicts():
    """channel - none is +0.01 in every pair (no spread, no test): Holm over the one-machine table's contrasts counts
    global - none and channel - global only, as the grid's verdicts do"""
    from statsmodels.stats.multitest import multipletests
    rng = np.random.default_rng(0)
    rows = []
    for fold in (1, 2, 3):
        for seed in (0, 1, 2):
            none = 0.5 + rng.normal(0, 0.02)
            for n, acc in (('none', none), ('global', none + 0.03 + rng.normal(0, 0.01)), ('channel', none + 0.01)):
                xeon = (n, fold, seed) == ('global', 1, 0)                   # one run made on another CPU
                rows.append(dict(fold=fold, seed=seed, normalization=n, final_accuracy=round(acc, 4),
                                 device='cpu (2 cores)', cpu='Intel Xeon' if xeon else 'AMD EPYC', cpu_bf16=True,
                                 cpu_amx=xeon))
    t = one_machine_table(pd.DataFrame(rows))
    assert sorted(t.index) == ['channel - global', 'global - none'] and (t.pairs == 8).all()
    assert np.isnan(fold_aware_table(pd.DataFrame(rows)).loc['channel - none', 'p'])
    assert t.p_holm.to_numpy() == pytest.approx(multipletests(t.p.to_numpy(), method='holm')[1])


def test_a_contrast_without_pairs_is_in_neither_holm_family():
    """channel ran other seeds than none and global (no pair): the grid's verdicts test global - none alone, and so
    does the one-machine table, whose Holm p is then the p itself"""
    rng = np.random.default_rng(1)
    rows = [dict(fold=fold, seed=seed + (3 if n == 'channel' else 0), normalization=n,
                 final_accuracy=round(0.5 + 0.03 * (n == 'global') + rng.normal(0, 0.02), 4), device='cpu (2 cores)',
                 cpu='Intel Xeon' if (n, fold, seed) == ('global', 1, 0) else 'AMD EPYC', cpu_bf16=True, cpu_amx=False)
            for fold in (1, 2, 3) for seed in (0, 1, 2) for n in ('none', 'global', 'channel')]
    grid, t = fold_aware_table(pd.DataFrame(rows)), one_machine_table(pd.DataFrame(rows))
    assert list(grid.index) == list(t.index) == ['global - none'] and grid.p_holm.iloc[0] == grid.p.iloc[0]
    assert t.pairs.iloc[0] == 8 and t.p_holm.iloc[0] == pytest.approx(t.p.iloc[0], rel=1e-12)


def test_the_declared_power_of_the_lower_fixed_gain_exponent_is_what_the_run_files_give():
    "docs/results.md plans pcen-gain094-xeon's two tests (Holm over seven) from pcen-bn-xeon and pcen-gain-xeon's fold means"
    d, sd, alpha, needed, power, half = _planned(('pcen-bn-xeon', 'pcen-gain-xeon'), 'pcen_learn_gain', 'pcen_frozen', 7)
    text = _page()
    said = (f"(an SD of {sd * 100:.2f} points between the fold means of `pcen_learn_gain − pcen_frozen`): at Holm's "
            f"first step over seven ({alpha:.4f}), 80% power with 5 folds needs about {needed * 100:.1f} points; if the "
            f"lower exponent gives all of the +{d.mean() * 100:.1f}, the power is about {power(d.mean()):.2f}, if half "
            f"of it, about {power(d.mean() / 2):.2f}. At that SD the 90% CI's half-width is about {half * 100:.2f} "
            f"points, so the second contrast is called equivalent within ±1 point only if its estimate lies within "
            f"about ±{1 - half * 100:.2f} points of zero")
    assert "`results/pcen-gain094-xeon`" in text and said in text and len(d) == 5


def test_the_declared_power_of_global_after_waveform_normalization_is_what_the_run_files_give():
    """docs/results.md plans mel-cpu-global-wave (4 new seeds a fold, one contrast) from mel-cpu's pair differences:
    their SD between the seeds of a fold, and the fold means' SD that 4 seeds a fold imply"""
    w = _raw('mel-cpu').pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    d = (w['global'] - w['wave']).unstack('seed')
    within, folds = d.var(axis=1, ddof=1).mean(), d.mean(axis=1)
    assert folds.var(ddof=1) <= within / 2                     # the fold means vary no more than their seeds imply
    sd = np.sqrt(within / 4)
    needed, power, half = _plan(sd)
    said = (f"their SD between the seeds of a fold is about {np.sqrt(within) * 100:.2f} points and the fold means vary "
            f"no more than those seeds imply, so with 4 seeds a fold the fold means should spread with an SD of about "
            f"{sd * 100:.2f} points; then 80% power with 5 folds (two-sided, 0.05) needs about "
            f"{needed * 100:.2f} points; at `mel-cpu`'s "
            f"+{folds.mean() * 100:.2f} the power is about {power(folds.mean()):.2f}, at half of it about "
            f"{power(folds.mean() / 2):.2f}. At that SD the 90% CI's half-width is about "
            f"{half * 100:.2f} points")
    assert "`results/mel-cpu-global-wave`" in _page() and said in _page()


def test_global_after_waveform_normalization_is_run_as_declared():
    """mel-cpu-global-wave (40 runs over sessions): mel-cpu's recipe, wave and global, seeds 2-5, every run from a clean
    worktree of the commit that declared it, one thread a run, in bf16 on a CPU with native bf16; each (fold, seed) pair
    started together on one CPU, the pairs in the order declared (each seed in turn, each fold in turn)"""
    df = _raw('mel-cpu-global-wave')
    assert read_preset(RESULTS / 'mel-cpu-global-wave').training_hash() == read_preset(RESULTS / 'mel-cpu').training_hash()
    assert set(df.normalization) == {'wave', 'global'} and set(df.seed) <= {2, 3, 4, 5} and len(df) <= 40
    assert {c[:7] for c in df.git_commit} == {'b633300'} and (~df.git_dirty).all() and (df.threads == 1).all()
    assert df.cpu_bf16.all() and all(json.loads(c)['bf16'] for c in df.config)
    pairs = df.assign(started=pd.to_datetime(df.started_at)).groupby(['seed', 'fold'])
    assert (pairs.size() == 2).all() and (pairs.cpu.nunique() == 1).all() and (pairs.host.nunique() == 1).all()
    assert (pairs.started.max() - pairs.started.min()).max() < pd.Timedelta(minutes=1)
    order = pairs.started.min()                                  # indexed by (seed, fold), sorted
    assert order.is_monotonic_increasing
    done = list(order.index)
    assert done == [(s, f) for s in (2, 3, 4, 5) for f in (1, 2, 3, 4, 5)][:len(done)]


def test_the_lower_fixed_gain_exponent_is_run_as_declared():
    """pcen-gain094-xeon (10 runs over two sessions): frontends-cpu's recipe, one arm, every fold of seed 0 started before
    any of seed 1, every run from a clean worktree of the commit that declared it, one thread a run, on the Intel Xeon
    with AMX alone; its PCEN stayed at librosa's values but the gain exponent, 0.94 in every band"""
    from esc50_norm.pcen import smoothing_coef
    df = _raw('pcen-gain094-xeon')
    assert read_preset(RESULTS / 'pcen-gain094-xeon').training_hash() == read_preset(RESULTS / 'pcen-bn-xeon').training_hash()
    assert set(df.normalization) == {'pcen_gain094'} and len(df) == 10 and set(df.seed) == {0, 1}
    assert {c[:7] for c in df.git_commit} == {'68e92c1'} and (~df.git_dirty).all() and (df.threads == 1).all()
    assert set(df.cpu) == {'Intel(R) Xeon(R) Processor'} and df.cpu_amx.all()
    if (df.seed == 1).any():
        assert set(df[df.seed == 0].fold) == {1, 2, 3, 4, 5}
        assert (pd.to_datetime(df[df.seed == 0].started_at) < pd.to_datetime(df[df.seed == 1].started_at).min()).all()
    start = dict(alpha=0.94, delta=2.0, root=2.0, smooth_coef=smoothing_coef(16000, 512))
    for _, r in df.iterrows():
        ended = {k: np.array(v) for k, v in json.loads(r.frontend_params).items()}
        assert all(ended[k].shape == (64,) and np.allclose(ended[k], v, rtol=1e-5, atol=0) for k, v in start.items())
