"The report: its numbers against hand computations, the contrasts it chooses, Holm's correction, time, plots, comparisons"
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from esc50_norm.study.cli import main as cli
from esc50_norm.study.presets import get_preset
from esc50_norm.study.report import (compare_equivalence, compare_folders, compare_report, compare_runs, compare_verdicts,
                                     contrasts, fold_aware_table, fold_contrasts, fold_means, fold_table, missing_runs,
                                     paired_differences, plot_folds, plot_paired, pooled_runs, study_time, summary_table,
                                     write_report)
from esc50_norm.study.runs import read_preset, read_results

RESULTS = Path(__file__).resolve().parents[1] / 'results'
README = RESULTS.parent / 'docs' / 'results.md'


def _fake_results(accs: dict, fold: int = 1) -> pd.DataFrame:
    "Runs of one fold: normalization -> accuracy per seed"
    return pd.DataFrame([dict(fold=fold, seed=s, normalization=n, final_accuracy=a) for n, xs in accs.items() for s, a in enumerate(xs)])


def test_summary_matches_hand_computed_mean_and_t_interval():
    df = _fake_results({'none': [0.5, 0.6, 0.7], 'channel': [0.6, 0.65, 0.8]})
    s = summary_table(df).loc['none']
    half = 4.302652729911275 * 0.1 / np.sqrt(3)                # t(0.975, 2) * sd / sqrt(n)
    assert (s.n, s['mean'], s['std']) == (3, pytest.approx(0.6), pytest.approx(0.1))
    assert (s.ci95_low, s.ci95_high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))


def test_summary_interval_is_over_fold_means_when_there_are_several_folds():
    # fold 1 has three seeds, folds 2 and 3 one: the interval and mean weigh each fold once, not each run
    runs = {(1, 0): 0.50, (1, 1): 0.52, (1, 2): 0.54, (2, 0): 0.60, (3, 0): 0.70}
    df = pd.DataFrame([dict(fold=f, seed=s, normalization='global', final_accuracy=a) for (f, s), a in runs.items()])
    s = summary_table(df).loc['global']
    means = np.array([0.52, 0.60, 0.70])
    half = st.t.ppf(0.975, 2) * means.std(ddof=1) / np.sqrt(3)
    assert (s.n, s.folds, s.ci_over) == (5, '1-3', 'folds')
    assert s['mean'] == pytest.approx(means.mean()) and s['std'] == pytest.approx(np.std(list(runs.values()), ddof=1))
    assert (s.ci95_low, s.ci95_high) == (pytest.approx(means.mean() - half), pytest.approx(min(1, means.mean() + half)))
    assert summary_table(_fake_results({'none': [0.5, 0.6, 0.7]})).loc['none', 'ci_over'] == 'seeds'
    two = pd.concat([_fake_results({'none': [0.5, 0.6, 0.7]}, fold=f) for f in (1, 2)])      # 2 folds x 3 seeds
    assert summary_table(two).loc['none', 'ci_over'] == 'folds' and summary_table(two).ci95_low.isna().all()
    holed = df.assign(final_accuracy=df.final_accuracy.where(df.seed != 1))         # a run without accuracy: left out
    assert summary_table(holed).loc['global', 'n'] == 4 and summary_table(holed).loc['global', 'min'] == 0.50


def test_the_note_under_a_summary_names_only_the_columns_of_its_table():
    "The printed summary (a narrower table) and report.md's: every column the note says is over the runs is shown"
    from esc50_norm.study.report.markdown import terminal_summary
    report = (RESULTS / 'mel-cpu' / 'report.md').read_text()
    for text in (terminal_summary(RESULTS / 'mel-cpu'), report[report.index('## Accuracy per normalization'):]):
        header = next(l for l in text.splitlines() if l.startswith('|'))
        shown = {c.strip() for c in header.strip('|').split('|')}
        named = re.search(r"\. ((?:`\w+`(?:, )?)+): over the runs\.", text)[1]
        assert named and set(re.findall(r"`(\w+)`", named)) <= shown, (named, shown)


def test_paired_differences_use_matched_seeds():
    df = _fake_results({'none': [0.5, 0.6, 0.7], 'global': [0.55, 0.62, 0.78], 'channel': [0.6, 0.65, 0.8]})
    p = paired_differences(df)
    assert list(p.index) == ['global - none', 'channel - none', 'channel - global']
    assert p.loc['channel - none', 'mean'] == pytest.approx(np.mean([0.1, 0.05, 0.1]))
    assert p.loc['channel - none', 'pairs'] == 3 and p.loc['channel - none', 'wins'] == 3
    assert p.loc['channel - global', 'mean'] == pytest.approx(np.mean([0.05, 0.03, 0.02]))
    assert p.loc['global - none', 't_test_p'] == pytest.approx(st.ttest_rel([0.55, 0.62, 0.78], [0.5, 0.6, 0.7]).pvalue)
    shuffled = paired_differences(df.sample(frac=1, random_state=0).query('not (normalization == "global" and seed == 1)'))
    assert shuffled.loc['global - none', 'pairs'] == 2                  # matched on the seed, not on the row's place
    assert shuffled.loc['global - none', 'mean'] == pytest.approx(np.mean([0.05, 0.08]))


def test_holm_correction_matches_a_hand_computation():
    df = _fake_results({'none': [0.5, 0.6, 0.7, 0.65], 'global': [0.55, 0.62, 0.78, 0.66], 'channel': [0.6, 0.65, 0.8, 0.6]})
    p = paired_differences(df)
    raw = p.t_test_p.to_numpy()
    order = np.argsort(raw)
    holm = np.empty(3)
    running = 0.0
    for rank, i in enumerate(order):                           # Holm: (m - rank) * p, made monotone, capped at 1
        running = max(running, min(1.0, (3 - rank) * raw[i]))
        holm[i] = running
    assert np.allclose(p.t_test_p_holm, holm) and (p.t_test_p_holm >= p.t_test_p).all()
    assert list(p.columns).index('t_test_p_holm') == list(p.columns).index('t_test_p') + 1


def test_contrasts_follow_the_normalizations_of_the_grid():
    assert contrasts(get_preset('cv').normalizations) == [('global', 'none'), ('channel', 'none'), ('channel', 'global')]
    # each statistic against its baseline (wave for a normalized waveform, else none), then each mode against global
    # in the same waveform state: Holm's family, "over the seven" and "over eight contrasts" on the results page
    assert contrasts(get_preset('ablation').normalizations) == [
        ('wave', 'none'), ('global', 'wave'), ('channel', 'wave'), ('global_nowave', 'none'), ('channel_nowave', 'none'),
        ('channel', 'global'), ('channel_nowave', 'global_nowave')]
    assert contrasts(get_preset('mel').normalizations) == [
        ('wave', 'none'), ('global', 'wave'), ('channel', 'wave'), ('minmax', 'wave'), ('instance', 'wave'),
        ('channel', 'global'), ('minmax', 'global'), ('instance', 'global')]
    assert ('channel_meanonly', 'channel') in contrasts(['none', 'wave', 'channel', 'channel_meanonly'])
    fronts = contrasts(['global', 'pcen', 'pcen_learned', 'pcen_frozen', 'bn_freq'])
    assert fronts == [('pcen', 'global'), ('pcen_learned', 'global'), ('pcen_learned', 'pcen'),
                      ('pcen_learned', 'pcen_frozen'), ('pcen_frozen', 'global'), ('pcen_frozen', 'pcen'),
                      ('bn_freq', 'global')]
    assert contrasts(['global', 'pcen_learned']) == [('pcen_learned', 'global')]    # only the arms the grid holds
    # learned PCEN in parts: each against the module frozen (and, where a grid holds it, against learning all four)
    assert contrasts(['pcen_frozen', 'pcen_learn_smooth', 'pcen_learn_compress']) == [
        ('pcen_learn_smooth', 'pcen_frozen'), ('pcen_learn_compress', 'pcen_frozen')]
    assert contrasts(['pcen_learned', 'pcen_learn_smooth']) == [('pcen_learn_smooth', 'pcen_learned')]
    # frozen PCEN normalized per band: against frozen PCEN, and against learning gain, bias and root
    assert contrasts(['pcen_frozen', 'pcen_learn_smooth', 'pcen_learn_compress', 'pcen_frozen_bn']) == [
        ('pcen_learn_smooth', 'pcen_frozen'), ('pcen_learn_compress', 'pcen_frozen'), ('pcen_frozen_bn', 'pcen_frozen'),
        ('pcen_frozen_bn', 'pcen_learn_compress')]
    # the curve alone (bias and root): against frozen PCEN and against learning the gain as well
    assert contrasts(['pcen_frozen', 'pcen_learn_compress', 'pcen_frozen_bn', 'pcen_learn_bias_root'])[-2:] == [
        ('pcen_learn_bias_root', 'pcen_frozen'), ('pcen_learn_bias_root', 'pcen_learn_compress')]
    # the gain exponent alone: the same two
    assert contrasts(['pcen_frozen', 'pcen_learn_compress', 'pcen_frozen_bn', 'pcen_learn_gain'])[-2:] == [
        ('pcen_learn_gain', 'pcen_frozen'), ('pcen_learn_gain', 'pcen_learn_compress')]
    # instance_global beside instance: per-bin against all-value statistics of each clip, its spectral envelope
    assert contrasts(['wave', 'global', 'instance', 'instance_global']) == [
        ('global', 'wave'), ('instance', 'wave'), ('instance_global', 'wave'), ('instance', 'global'),
        ('instance_global', 'global'), ('instance', 'instance_global')]


def test_study_time_is_first_start_to_last_finish():
    df = pd.DataFrame(dict(started_at=['2026-01-01T10:00:00+0000', '2026-01-01T10:00:30+0000'],
                           finished_at=['2026-01-01T10:05:00+0000', '2026-01-01T10:06:00+0000'],
                           setup_s=[1.0, 1.0], wall_s=[299.0, 329.0]))
    t = study_time(df)
    assert t['wall_s'] == 360 and t['summed_s'] == 630 and not t['estimated'] and t['parallel'] == pytest.approx(1.75)
    old = df.drop(columns='started_at')                         # run files that predate start times: estimated
    t = study_time(old)
    assert t['estimated'] and t['wall_s'] == 360


def test_paired_plot_has_a_point_per_pair_coloured_by_fold():
    df = pd.concat([_fake_results({'none': [0.5, 0.6], 'global': [0.55, 0.62]}, fold=1),
                    _fake_results({'none': [0.7, 0.8], 'global': [0.78, 0.8]}, fold=2)])
    fig = plot_paired(df)
    ax = fig.axes[0]
    points = [c for c in ax.collections if len(c.get_offsets())]
    assert sum(len(c.get_offsets()) for c in points[:2]) == 4                    # 2 folds x 2 seeds
    assert len({tuple(c.get_facecolor()[0]) for c in points[:2]}) == 2             # one colour per fold
    assert [t.get_text() for t in ax.get_xticklabels()] == ['global\n- none']
    # the bar is the verdict's 95% CI (over folds here), wider than a t interval over the 4 pairs as if independent
    (lo, hi), = [seg[:, 1] for seg in ax.containers[0].lines[2][0].get_segments()]
    v = fold_aware_table(df).loc['global - none']
    d = np.array([0.05, 0.02, 0.08, 0.0])
    pairs_half = st.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (lo, hi) == pytest.approx((v.ci95_low, v.ci95_high), abs=1e-12) and hi - lo > 2 * pairs_half + 0.01


def test_report_of_an_incomplete_grid_says_so(tmp_path):
    out = tmp_path / 'blog'
    shutil.copytree(RESULTS / 'blog-bf16', out, ignore=shutil.ignore_patterns('*.png', '*.md'))
    (out / 'runs' / 'fold1-channel-seed4.json').unlink()
    (out / 'runs' / 'fold1-channel-seed4.running.json').write_text(json.dumps(dict(host='h', pid=1, started_at='x')))
    preset = get_preset('blog').resolved('cuda')
    assert missing_runs(read_results(out), preset) == ['fold1-channel-seed4']
    text = write_report(out).read_text()
    assert 'Incomplete grid: 14 of 15 runs finished' in text and 'Missing: fold1-channel-seed4' in text
    assert 'Started but not finished (in progress, or interrupted): fold1-channel-seed4' in text
    for f in ('accuracy.png', 'paired.png', 'curves.png'): assert (out / f).stat().st_size > 1000


def test_a_grid_without_contrasts_says_how_to_pool_it_and_draws_no_empty_plot(tmp_path):
    "One normalization: no pair-level table and no paired.png, but the training hash a folder needs to pool with it"
    out = Path(shutil.copytree(RESULTS / 'quick-cpu', tmp_path / 'one', ignore=shutil.ignore_patterns('*.png', '*.md')))
    for f in (out / 'runs').glob('fold*'):
        if f.name.split('-')[1] != 'global': f.unlink()
    text = write_report(out).read_text()
    section = text.split('## Contrasts')[1].split('\n## ')[0]
    assert '`global`' in section and read_preset(out).training_hash() in section and '## Verdicts' not in text
    assert not (out / 'paired.png').exists() and 'paired.png' not in text and (out / 'accuracy.png').exists()
    for f in (out / 'runs').glob('*.history.csv'): f.unlink()                  # no curves: no link to them either
    text = write_report(out).read_text()
    assert not (out / 'curves.png').exists() and 'curves.png' not in text


@pytest.mark.parametrize('folder,n', [('cv-bf16', 75), ('ablation-bf16', None), ('blog-fp32', 15), ('blog-bf16', 15), ('quick-cpu', 9),
                                      ('quick-esc10-cpu', 45), ('quick16-esc10-cpu', 30),
                                      ('quick-bf16-cpu', 9), ('mel-cpu', 60), ('frontends-cpu', None), ('linear-cpu', 40),
                                      ('linear-cpu-epyc', 40), ('mel-cpu-instance-global', 10),
                                      ('mel-cpu-bn-freq', 10), ('mel-aug-cpu', 20), ('mel-aug60-cpu', 20), ('mel-aug-cpu-bn-freq', 10),
                                      ('mel60-cpu', 20), ('mel-aug60-cpu-bn-freq', 10),
                                      ('frontends-cpu-probe40', 1), ('frontends-cpu-probe45', None), ('frontends-cpu-probe60', 1),
                                      ('pcen-parts-cpu', 30), ('pcen-bn-cpu', None),
                                      ('pcen-bn-xeon', None), ('pcen-gain-xeon', 10),
                                      ('pcen-gain094-xeon', 10), ('mel-cpu-global-wave', None)])
def test_committed_reports_are_what_the_current_report_writes(folder, n, tmp_path):
    "The committed report.md of each results folder is regenerated from its run files, unchanged"
    n = n or len(_raw_runs(folder))                       # None: a grid still growing across sessions, or a probe stopped early
    out = tmp_path / folder
    shutil.copytree(RESULTS / folder, out)
    text = write_report(out).read_text()
    assert text == (RESULTS / folder / 'report.md').read_text()
    m = re.search(r"(Complete|Incomplete) grid: (\d+) of (\d+) runs?", text)       # linear-cpu: grown across sessions
    assert m and int(m[2]) == n and (m[1] == 'Complete') == (int(m[3]) == n)
    assert 'Study wall time' in text and 'How this recipe was chosen:' in text
    if _raw_runs(folder).normalization.nunique() > 1:        # one arm alone (pooled with another folder): no contrast
        assert 't_test_p_holm' in text and '## Verdicts' in text and 'How to read:' in text


EPYC, XEON = ('AMD EPYC', True, False), ('Intel(R) Xeon(R) Processor', True, True)     # cpu, cpu_bf16, cpu_amx

REPEATS = {   # a folder of runs made again at a later commit: its original folder, the runs made again, the commits
    # they were first made at (None: every commit the original was made at) and the CPU that made them again, as
    # docs/results.md declares them
    'mel-cpu-repeat': ('mel-cpu', {'fold1-global-seed0', 'fold1-global-seed1', 'fold2-instance-seed0', 'fold4-instance-seed0'},
                       None, EPYC),
    'frontends-cpu-repeat': ('frontends-cpu', {'fold1-global-seed0', 'fold1-pcen_learned-seed0', 'fold3-pcen_learned-seed0'},
                             {'697831c', '0101d2e'}, EPYC),
    'mel-aug60-cpu-repeat': ('mel-aug60-cpu', {'fold1-global-seed0'}, {'995a3d0'}, EPYC),
    'mel60-cpu-repeat': ('mel60-cpu', {'fold1-global-seed0'}, {'6ebe46b'}, EPYC),
    'mel-aug-cpu-repeat': ('mel-aug-cpu', {'fold1-global-seed0'}, {'833281a'}, EPYC),
    'mel-aug-cpu-bn-freq-repeat': ('mel-aug-cpu-bn-freq', {'fold1-bn_freq-seed0'}, {'c501f9a'}, EPYC),
    'mel-cpu-bn-freq-repeat': ('mel-cpu-bn-freq', {'fold1-bn_freq-seed0'}, {'748014b'}, EPYC),
    'frontends-cpu-xeon-repeat': ('frontends-cpu', {'fold1-pcen_frozen-seed0', 'fold1-global-seed1', 'fold3-pcen_learned-seed1',
                                                    'fold1-bn_freq-seed2', 'fold5-global-seed0'},
                                  {'7cfd063', '9775b71', '0f936ae', '3fca55c', 'a09cbf0'}, XEON),
    'linear-cpu-repeat': ('linear-cpu', {'fold1-global-seed0', 'fold4-channel-seed0'}, None, XEON),
    'pcen-bn-xeon-repeat': ('pcen-bn-xeon', {'fold1-pcen_frozen-seed0', 'fold1-pcen_learn_compress-seed0'}, {'aef8299'}, XEON),
    'pcen-gain-xeon-repeat': ('pcen-bn-xeon', {'fold1-pcen_frozen-seed0', 'fold1-pcen_learn_compress-seed0'}, {'aef8299'}, XEON),
    'pcen-gain094-xeon-repeat': ('pcen-gain-xeon', {'fold1-pcen_learn_gain-seed0'}, {'af35a62'}, XEON),
}


@pytest.mark.parametrize('folder', REPEATS)
def test_a_repeat_equals_its_original_epoch_by_epoch_and_its_report_is_regenerated(folder, tmp_path):
    """Runs made again from a later commit, one thread each, on the CPU declared (docs/results.md declares each set
    before its runs): every epoch's numbers equal the original's to the last digit, from another commit, with the
    original's recipe (training hash), covering the commits declared (mel-cpu's: every one of its sessions); where
    the original's file names its CPU, the same kind"""
    original, names, commits, cpu = REPEATS[folder]
    out = Path(shutil.copytree(RESULTS / folder, tmp_path / folder))
    assert write_report(out).read_text() == (RESULTS / folder / 'report.md').read_text()
    assert read_preset(RESULTS / folder).training_hash() == read_preset(RESULTS / original).training_hash()
    runs = sorted((RESULTS / folder / 'runs').glob('fold*-seed?.json'))
    assert {p.stem for p in runs} == names
    made_from = set()
    for p in runs:
        new, old = json.loads(p.read_text()), json.loads((RESULTS / original / 'runs' / p.name).read_text())
        assert new['git_commit'] != old['git_commit'] and not new['git_dirty'] and new['final_accuracy'] == old['final_accuracy']
        machine = lambda run: (run.get('cpu'), run.get('cpu_bf16'), run.get('cpu_amx'))
        assert machine(new) == cpu and new['threads'] == 1 and machine(old) in {cpu, (None, None, None)}
        history = lambda f: pd.read_csv(RESULTS / f / 'runs' / p.name.replace('.json', '.history.csv'))
        cols = ['train_loss', 'valid_loss', 'accuracy']
        pd.testing.assert_frame_equal(history(folder)[cols], history(original)[cols])
        made_from.add(old['git_commit'][:7])
    assert made_from == (commits or {c[:7] for c in _raw_runs(original).git_commit})


def _raw_runs(folder: str) -> pd.DataFrame:
    "The committed run files read with json and pandas alone: an independent path to the numbers"
    return pd.DataFrame([json.loads(p.read_text()) for p in (RESULTS / folder / 'runs').glob('fold*-seed*.json') if p.name.count('.') == 1])


def _readme_section(heading: str) -> str:
    "The README's text from the heading that starts with `heading` to the next heading"
    return README.read_text().split(f"\n{heading}")[1].split('\n#')[0]


@pytest.mark.parametrize('folder,heading', [('cv-bf16', '### Five folds'), ('mel-cpu', '### Log-mel input'),
                                            ('frontends-cpu', '### The strong recipe and the front ends'),
                                            ('quick-esc10-cpu', '### ESC-10 on 2 CPU cores'),
                                            ('quick16-esc10-cpu', '### ESC-10 on 2 CPU cores')])
def test_answer_against_an_independent_computation_and_as_the_results_page_includes_it(folder, heading):
    "The report's numbers equal pandas/scipy on the raw run files; the results page includes its tables, none typed"
    raw = _raw_runs(folder)
    df = read_results(RESULTS / folder)
    s, p = summary_table(df), paired_differences(df)
    means, per_fold = raw.groupby('normalization').final_accuracy.mean(), raw.groupby(['normalization', 'fold']).final_accuracy.mean()
    assert np.allclose(s['mean'], means[s.index]) and np.allclose(s['std'], raw.groupby('normalization').final_accuracy.std()[s.index])
    folds = fold_table(df)
    assert np.allclose(folds.to_numpy(float), per_fold.unstack(0)[folds.columns].loc[folds.index].to_numpy(float))
    wide = raw.pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    assert len(p) == len(contrasts(s.index))
    for name, row in p.iterrows():
        a, b = name.split(' - ')
        both = wide[[a, b]].dropna()                      # the (fold, seed) pairs where both runs finished
        d = (both[a] - both[b]).round(6)                  # at 1e-6, as docs/study.md says: float32 noise is no spread
        assert (row['mean'], row.wins, row.losses) == (pytest.approx(d.mean()), (d > 0).sum(), (d < 0).sum())
        assert row.t_test_p == pytest.approx(st.ttest_1samp(d, 0).pvalue)
    page = _readme_section(heading)
    assert f"<!-- include: results/{folder}/report.md ## Accuracy per normalization -->" in page
    assert f"<!-- include: results/{folder}/report.md ## Verdicts -->" in README.read_text()
    assert not re.search(r"^\| (none|global|channel) +\| \d+ \| \**0\.\d+", page, re.M), "a typed results table"


def _covered_seconds(start, end) -> int:
    "Independently: the whole seconds at which some run was in progress, counted one by one"
    t0 = min(start)
    spans = [((a - t0).total_seconds(), (b - t0).total_seconds()) for a, b in zip(start, end)]
    grid = np.arange(0, max(b for _, b in spans)) + 0.5
    return int(sum(any(a <= x < b for a, b in spans) for x in grid))


def test_study_time_of_a_grid_run_in_pieces_counts_only_the_time_with_a_run_in_progress():
    at = lambda hm: f"2026-01-01T{hm}:00+0000"
    df = pd.DataFrame(dict(started_at=[at('10:00'), at('10:01'), at('11:00'), at('11:02')],   # two pieces, 54 min apart
                           finished_at=[at('10:05'), at('10:06'), at('11:10'), at('11:04')],
                           setup_s=[0.0] * 4, wall_s=[300.0, 300.0, 600.0, 120.0]))
    t = study_time(df)
    assert t['wall_s'] == 70 * 60 and t['busy_s'] == 16 * 60 and t['parallel'] == pytest.approx(22 / 16)
    mel = read_results(RESULTS / 'mel-cpu')                     # run in pieces across sessions, with gaps
    start, end = pd.to_datetime(mel.started_at, utc=True), pd.to_datetime(mel.finished_at, utc=True)
    t = study_time(mel)
    assert abs(t['busy_s'] - _covered_seconds(start, end)) <= 5 and t['busy_s'] < t['wall_s'] - 60 * 60
    assert t['parallel'] == pytest.approx((mel.setup_s + mel.wall_s).sum() / t['busy_s'])
    assert f"some run was in progress for {t['busy_s'] / 60:.1f} min" in (RESULTS / 'mel-cpu' / 'report.md').read_text()


def test_study_time_of_the_cv_folder_is_first_start_to_last_finish():
    "Its run files predate recorded start times: each start is its finish minus its set-up and training time"
    raw = _raw_runs('cv-bf16')
    assert 'started_at' not in raw
    end = pd.to_datetime(raw.finished_at, utc=True)
    start = end - pd.to_timedelta(raw.setup_s + raw.wall_s, unit='s')
    t = study_time(read_results(RESULTS / 'cv-bf16'))
    assert t['wall_s'] == pytest.approx((end.max() - start.min()).total_seconds()) and t['estimated']
    assert t['summed_s'] == pytest.approx((raw.setup_s + raw.wall_s).sum())


def test_compare_folders_pairs_runs_across_folders(tmp_path, capsys):
    means, paired = compare_folders([RESULTS / 'blog-fp32', RESULTS / 'blog-bf16'])
    assert means.loc['global', 'blog-fp32'] == pytest.approx(0.73) and means.loc['global', 'blog-bf16'] == pytest.approx(0.727)
    row = paired.loc[('blog-bf16', 'global')]
    assert row['pairs'] == 5 and row['mean'] == pytest.approx(-0.003, abs=1e-6)
    assert cli(['compare', str(RESULTS / 'blog-fp32'), str(RESULTS / 'blog-bf16'), '--out', str(tmp_path / 'c.md')]) == 0
    out = capsys.readouterr().out
    assert 'blog-bf16 - blog-fp32' in out and (tmp_path / 'c.md').read_text().startswith('# Comparison')
    assert cli(['compare', str(tmp_path), str(RESULTS / 'blog-bf16')]) == 2
    assert 'holds no preset.json' in capsys.readouterr().err
    assert cli(['report', str(tmp_path / 'nosuch')]) == 2 and 'nosuch does not exist' in capsys.readouterr().err
    assert cli(['report', str(tmp_path / 'c.md')]) == 2 and 'c.md is a file, not a results folder' in capsys.readouterr().err


def test_compare_pools_the_reference_with_its_arms_run_apart_and_refuses_another_recipe(tmp_path, capsys):
    "mel-cpu ran bn_freq apart: --with adds that arm to the reference; a folder of another recipe is refused, unwritten"
    out = tmp_path / 'c.md'
    args = ['compare', str(RESULTS / 'mel-cpu'), str(RESULTS / 'frontends-cpu'), '--out', str(out)]
    with pytest.warns(UserWarning, match='another recipe'):
        assert cli([*args, '--with', str(RESULTS / 'mel-cpu-bn-freq')]) == 0
    text = out.read_text()
    assert text.startswith(f"# Comparison of {RESULTS / 'mel-cpu'} + {RESULTS / 'mel-cpu-bn-freq'}, ")
    assert '| frontends-cpu |  bn_freq - global |      10 |' in text and 'mel-cpu+mel-cpu-bn-freq' in capsys.readouterr().out
    assert ("`mel-cpu+mel-cpu-bn-freq` pools folders of one recipe: `bn_freq - global` (10 of 10 pairs) take their two "
            "runs from two folders") in text                    # global from mel-cpu, bn_freq from mel-cpu-bn-freq
    out.unlink()
    assert cli([*args, '--with', str(RESULTS / 'linear-cpu')]) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert 'linear-cpu' in err and 'only folders of one recipe and one dataset pool into one grid' in err


def test_compare_pools_each_folder_into_the_compared_folder_of_its_recipe():
    """--with pools a folder into the first compared folder of its recipe, the reference or a later one: with the
    reference the other way round, pooling mel-cpu-bn-freq into mel-cpu as a later folder negates every estimate; two
    pools find two homes; one of no compared recipe is refused, naming it and the folders it was checked against"""
    ref, later, bn = RESULTS / 'mel-cpu', RESULTS / 'mel-aug-cpu', RESULTS / 'mel-cpu-bn-freq'
    runs = compare_runs([later, ref], [bn])
    assert list(runs) == ['mel-aug-cpu', 'mel-cpu+mel-cpu-bn-freq']
    assert runs['mel-cpu+mel-cpu-bn-freq'].equals(pooled_runs([ref, bn])[0])
    back, forth = (compare_verdicts(f, runs=r).droplevel('folder') for f, r in
                   (([later, ref], runs), ([ref, later], compare_runs([ref, later], [bn]))))
    assert list(back.index) == list(forth.index) == ['global', 'instance']
    assert back.estimate.to_numpy() == pytest.approx(-forth.estimate.to_numpy())
    assert list(compare_runs([ref, RESULTS / 'ablation-bf16'], [bn, RESULTS / 'cv-bf16'])) == [
        'mel-cpu+mel-cpu-bn-freq', 'ablation-bf16+cv-bf16']
    with pytest.raises(ValueError, match=r"linear-cpu holds the recipe and dataset of none of .*mel-cpu, .*mel-aug-cpu"):
        compare_runs([ref, later], [RESULTS / 'linear-cpu'])


def test_compare_minus_tests_an_interaction_and_refuses_one_folder_twice(tmp_path, capsys):
    """--minus R2 F2 adds the verdicts on (F - R) - (F2 - R2) on the runs all four hold, and names the pair in the
    title; a partial folder named on both sides is noted once; the same folder twice is refused before any writing"""
    part, out = tmp_path / 'mel-aug-cpu', tmp_path / 'c.md'
    shutil.copytree(RESULTS / 'mel-aug-cpu', part)
    (part / 'runs' / 'fold5-global-seed1.json').unlink()
    args = ['compare', str(RESULTS / 'mel-cpu'), str(part), '--out', str(out), '--minus']
    with pytest.warns(UserWarning, match='another recipe'):
        assert cli([*args, str(RESULTS / 'linear-cpu'), str(part)]) == 0
    text = out.read_text()
    assert text.startswith(f"# Comparison of {RESULTS / 'mel-cpu'}, {part}, minus {part} - {RESULTS / 'linear-cpu'}\n")
    assert text.count(f"**Incomplete: {part} holds 19 of its grid's 20 runs** (missing: fold5-global-seed1)") == 1
    section = text.split('## Interaction')[1]
    assert "minus `mel-aug-cpu`'s to `linear-cpu`" in section
    assert ("Of the recipe, `mel-aug-cpu` against `mel-cpu` changes `augment`, `mixup`; `mel-aug-cpu` against "
            "`linear-cpu` changes `augment`, `mixup`, `spec`. **`mel-aug-cpu` against `mel-cpu` changes other keys") in section
    assert re.search(r"\| mel-aug-cpu \|\s+global \|\s+9 \|\s+5 \|", section)    # global alone: linear-cpu has no instance
    out.unlink()
    capsys.readouterr()
    assert cli([*args, str(part), str(part)]) == 2 and not out.exists()
    assert '--minus takes two different folders' in capsys.readouterr().err


def test_fold_contrasts_find_the_folds_where_two_folders_disagree():
    "Per fold, each folder's mean paired difference over seeds; a contrast flips sign only in fold 2 of the second folder"
    a = pd.concat([_fake_results({'none': [0.5, 0.6], 'global': [0.6, 0.7], 'instance': [0.1, 0.1]}, fold=1),
                   _fake_results({'none': [0.5, 0.5], 'global': [0.52, 0.56]}, fold=2)])
    b = pd.concat([_fake_results({'none': [0.6, 0.6], 'global': [0.7, 0.64], 'wave': [0.9, 0.9]}, fold=1),
                   _fake_results({'none': [0.6, 0.7], 'global': [0.58, 0.66]}, fold=2)])
    fc = fold_contrasts({'a': a, 'b': b})                     # instance and wave: in one folder only, no contrast
    assert list(fc.index) == [('global - none', 1), ('global - none', 2)]
    assert fc.loc[('global - none', 1), 'a'] == pytest.approx(0.1) and fc.loc[('global - none', 2), 'a'] == pytest.approx(0.04)
    assert fc.loc[('global - none', 1), 'b'] == pytest.approx(0.07) and fc.loc[('global - none', 2), 'b'] == pytest.approx(-0.03)
    assert list(fc.agree) == [True, False]
    m = fold_means({'a': a, 'b': b})
    assert m.loc[('b', 'global'), 2] == pytest.approx(0.62) and np.isnan(m.loc[('a', 'instance'), 2])
    assert fold_contrasts({'a': a[a.normalization == 'none'], 'b': b}).empty           # nothing both folders can contrast
    with pytest.raises(ValueError, match='a, b share no normalization'): plot_folds({'a': a[a.normalization == 'instance'], 'b': b})


def test_compare_shows_the_folds_side_by_side_in_words_and_a_figure(tmp_path, capsys):
    "cv-bf16 against blog-bf16 (fold 1 only): the per-fold contrasts computed from results.csv, the figure's panels"
    cv, blog = (read_results(RESULTS / f) for f in ('cv-bf16', 'blog-bf16'))
    def by_hand(df, x, y):
        w = df[df.fold == 1].pivot_table(index='seed', columns='normalization', values='final_accuracy')
        return (w[x] - w[y]).mean()
    assert cli(['compare', str(RESULTS / 'cv-bf16'), str(RESULTS / 'blog-bf16'), '--figure', str(tmp_path / 'f.png')]) == 0
    out = capsys.readouterr().out
    expected = [(c, by_hand(cv, *c.split(' - ')), by_hand(blog, *c.split(' - ')))
                for c in ('global - none', 'channel - none', 'channel - global')]
    rows = {l.split('|')[1].strip(): [float(v) for v in l.split('|')[3:5]] for l in out.split('fold by fold')[1].splitlines()
            if l.count('|') == 6 and ' - ' in l}
    for c, x, y in expected: assert rows[c] == [pytest.approx(x, abs=6e-5), pytest.approx(y, abs=6e-5)]
    flips = [c for c, x, y in expected if np.sign(x) != np.sign(y)]
    assert f"disagree on a contrast's sign: {', '.join(f'`{c}` in fold 1' for c in flips) or 'nowhere'}." in out
    import matplotlib.image as mpimg
    img = mpimg.imread(tmp_path / 'f.png')
    assert img.shape[1] > 3 * img.shape[0]                    # 3 normalizations and the contrasts, side by side
    fig = plot_folds({'cv-bf16': cv, 'blog-bf16': blog})
    assert [ax.get_title() for ax in fig.axes] == ['none', 'global', 'channel', 'contrasts, one point per fold']
    fold1 = fig.axes[1].lines                                 # global: each folder's per-fold means, fold 1 by hand
    assert [ln.get_label() for ln in fold1] == ['cv-bf16', 'blog-bf16'] and len(fold1[0].get_xdata()) == 5
    assert fold1[1].get_ydata()[0] == pytest.approx(blog[blog.normalization == 'global'].final_accuracy.mean())
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_quick_grid_in_bf16_is_equivalent_to_fp32_run_by_run():
    """The CPU's bf16 default was checked so: within +-0.02 at 90% (TOST), no normalization significant; one fold, so its
    3 seeds are the units (a seed's 3 runs share its draws), not the 9 pairs"""
    eq = compare_equivalence([RESULTS / 'quick-cpu', RESULTS / 'quick-bf16-cpu']).loc['quick-bf16-cpu']
    fp32, bf16 = _raw_runs('quick-cpu'), _raw_runs('quick-bf16-cpu')
    d = (bf16.set_index(['normalization', 'seed']).final_accuracy - fp32.set_index(['normalization', 'seed']).final_accuracy)
    d = d.round(6)                                           # the resolution differences are rounded to (docs/study.md)
    seeds = d.groupby(level='seed').mean()                   # computed here from the raw files
    half = st.t.ppf(0.95, len(seeds) - 1) * seeds.std(ddof=1) / np.sqrt(len(seeds))
    assert (eq.pairs, eq.unit, eq.units) == (9, 'seed', 3) and len(d) == 9
    # the seeds' means are differences too, rounded to the same 1e-6
    assert eq['mean'] == pytest.approx(d.mean(), abs=1e-6) and eq.ci90_high == pytest.approx(seeds.mean() + half, abs=1e-6)
    assert eq.equivalent and -0.02 < d.mean() - half and d.mean() + half < 0.02
    _, paired = compare_folders([RESULTS / 'quick-cpu', RESULTS / 'quick-bf16-cpu'])
    assert (paired.t_test_p_holm > 0.05).all()
    assert {json.loads(r)['bf16'] for r in bf16.config} == {True} and {json.loads(r)['bf16'] for r in fp32.config} == {False}


def _one_fold(diffs) -> dict:
    "Two folders' runs on fold 1: seed s's runs of none, global and channel differ by `diffs[s]` (three numbers)"
    rng = np.random.default_rng(0)
    rows = [dict(normalization=n, fold=1, seed=s, final_accuracy=rng.uniform(0.3, 0.5))
            for s in range(len(diffs)) for n in ('none', 'global', 'channel')]
    ref = pd.DataFrame(rows)
    new = ref.assign(final_accuracy=ref.final_accuracy + np.ravel(diffs))
    return {'ref': ref, 'new': new}


def test_reproduction_on_one_fold_takes_its_seeds_as_units():
    "Equivalent only on a small, steady difference; no spread in the seeds' means, no test; a replay is equivalent"
    rng = np.random.default_rng(1)
    check = lambda diffs: compare_equivalence(['ref', 'new'], runs=_one_fold(diffs)).loc['new']
    assert check(0.001 + rng.normal(0, 0.005, (8, 3))).equivalent
    assert not check(0.03 + rng.normal(0, 0.005, (8, 3))).equivalent                   # a real shift
    assert not check(rng.normal(0, 0.08, (8, 3))).equivalent                            # too noisy to tell
    assert not check(np.full((8, 3), 0.005)).equivalent                                 # no spread: no test
    replay = check(np.zeros((8, 3)))
    assert replay.equivalent and replay.replay and np.isnan(replay.ci90_low)
    # each seed's three differences vary, their means do not: 3 units without spread, not 9 pairs with it
    r = check([[-0.01, 0.0, 0.01], [0.01, -0.01, 0.0], [0.0, 0.01, -0.01]])
    assert (r.pairs, r.units, r.unit) == (9, 3, 'seed') and np.isnan(r.tost_p) and not r.equivalent and not r.replay


def test_compare_says_why_an_equivalence_has_no_interval(tmp_path):
    "A run repeated exactly (what ./run.sh shows on the machine that made the folder): equivalent, and no CI, said so"
    again = Path(shutil.copytree(RESULTS / 'quick-bf16-cpu', tmp_path / 'again'))
    text = compare_report([RESULTS / 'quick-bf16-cpu', again])
    assert "- `again`: equivalent to `quick-bf16-cpu` within +-0.02 (mean +0.0000, no CI: every run repeats exactly, " \
           "9 pairs of 3 seeds); normalizations ahead or behind (fold-aware test, Holm): none." in text
    assert 'nan' not in text.split('Reproduction of')[1]


def _quick_copy(tmp_path) -> Path:
    return Path(shutil.copytree(RESULTS / 'quick-cpu', tmp_path / 'quick-cpu'))


def test_a_report_on_runs_with_and_without_git_commit_does_not_fail(tmp_path):
    "Run files from before provenance was recorded beside newer ones: the line says 'unknown' for the older"
    out = _quick_copy(tmp_path)
    row = json.loads((out / 'runs' / 'fold1-global-seed0.json').read_text())
    newer = {**row, 'seed': 7, 'git_commit': 'abcdef1234567', 'git_dirty': False, 'esc50_norm': '0.3.0'}
    (out / 'runs' / 'fold1-global-seed7.json').write_text(json.dumps(newer))
    shutil.copy(out / 'runs' / 'fold1-global-seed0.history.csv', out / 'runs' / 'fold1-global-seed7.history.csv')
    write_report(out)
    assert 'Provenance: esc50_norm 0.3.0, unknown; git abcdef1234, unknown.' in (out / 'report.md').read_text()


def test_write_report_leaves_the_matplotlib_backend_alone(tmp_path):
    "A notebook's backend stays its own: the report draws on whatever backend there is and writes PNGs"
    import matplotlib
    out = _quick_copy(tmp_path)
    before = matplotlib.get_backend()
    matplotlib.use('pdf')
    try:
        write_report(out)
        assert matplotlib.get_backend() == 'pdf'
    finally: matplotlib.use(before)
    assert (out / 'accuracy.png').read_bytes()[:4] == b'\x89PNG'


def test_compare_warns_across_recipes_and_datasets(capsys):
    with pytest.warns(UserWarning, match="comparing unlike results: .*quick-esc10-cpu holds runs of dataset esc10"):
        text = compare_report([RESULTS / 'quick-cpu', RESULTS / 'quick-esc10-cpu'])
    assert text.startswith('**Warning:') and 'of dataset esc10' in text
    with pytest.warns(UserWarning, match=r"another recipe than .*blog-fp32 \(changed: \['bf16', 'channels_last'\]\)"):
        compare_report([RESULTS / 'blog-fp32', RESULTS / 'blog-bf16'])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert not compare_report([RESULTS / 'quick-cpu', RESULTS / 'quick-cpu']).startswith('**Warning')


def test_compare_says_which_folder_is_incomplete_and_what_it_lacks(tmp_path):
    "A grid still growing: the comparison names it, its finished and expected runs and the missing ones, first"
    partial = tmp_path / 'quick-partial'
    shutil.copytree(RESULTS / 'quick-cpu', partial)
    for p in (partial / 'runs').glob('fold1-channel-seed2.*'): p.unlink()
    text = compare_report([RESULTS / 'quick-cpu', partial])
    assert text.startswith(f"**Incomplete: {partial} holds 8 of its grid's 9 runs** (missing: fold1-channel-seed2): ")
    assert text.count('Incomplete') == 1                                    # quick-cpu itself is complete
    assert 'Incomplete' not in compare_report([RESULTS / 'quick-cpu', RESULTS / 'quick-cpu'])


def _typed_rows(section: str) -> dict:
    "The body rows of the markdown tables in `section`: first cell -> the others, bold marks and signs made plain"
    lines = section.splitlines()
    rows = [l for l, after in zip(lines, lines[1:] + ['']) if l.startswith('| ') and not after.startswith('|---')]
    plain = lambda c: c.strip().strip('*').replace('−', '-')
    return {plain(cells[0]): [plain(c) for c in cells[1:]] for cells in (l.strip().strip('|').split('|') for l in rows)}


def test_the_typed_tables_of_the_reference_and_the_ablation_are_the_run_files():
    "The two tables the results page types (beside a published number, or as a 2x2 design) against the raw run files"
    fp32, bf16, abl = (_raw_runs(f).query('fold == 1').groupby('normalization').final_accuracy.mean()
                       for f in ('blog-fp32', 'blog-bf16', 'ablation-bf16'))     # the ablation's table: its fold 1
    ref = _typed_rows(_readme_section('### Fold 1 against the reference post'))
    assert set(ref) == {'none', 'global', 'channel'}
    for norm, (post, ours, diff, ours_bf16) in ref.items():
        assert (float(ours), float(ours_bf16)) == (round(fp32[norm], 4), round(bf16[norm], 4))
        assert float(diff) == pytest.approx(float(ours) - float(post), abs=1e-9)
    ablation = _typed_rows(_readme_section('### What the ablation adds'))
    assert set(ablation) == set(abl.index)
    for norm, (wave, spec, mean) in ablation.items():
        assert float(mean) == round(abl[norm], 4)
        assert (wave == 'yes') == (norm in ('wave', 'global', 'channel'))
        assert spec == ('no' if norm in ('none', 'wave') else norm.removesuffix('_nowave'))


def test_the_typed_table_of_the_epoch_probes_is_their_run_files():
    "How frontends-cpu's 60 epochs were chosen: each probe's final and best accuracy, best epoch and run time"
    probes = _typed_rows(_readme_section('### The strong recipe and the front ends'))
    assert set(probes) == {'40', '45', '60'}
    for epochs, (final, best, minutes, *_) in probes.items():
        run = json.loads((RESULTS / f"frontends-cpu-probe{epochs}" / 'runs' / 'fold1-global-seed0.json').read_text())
        assert run['epochs'] == int(epochs) and float(final) == round(run['final_accuracy'], 4)
        assert best.split() == [f"{run['best_accuracy']:.4f}", f"({run['best_epoch']})"]
        assert float(minutes.split()[0]) == pytest.approx(run['wall_s'] / 60, abs=0.7)


def _near(a: float, b: float, digits: int) -> bool: return abs(a - b) <= 0.5001 * 10 ** -digits   # either rounding


def test_the_typed_table_of_cpu_precision_is_the_benchmarks_file():
    "fp32 against bf16 on the CPU, as the results page types it: each cell from a row of benchmarks/precision-cpu.md"
    bench = RESULTS.parent / 'benchmarks' / 'precision-cpu.md'
    measured = [r.split('|')[1:-1] for r in bench.read_text().splitlines() if re.match(r"\| mel", r)]
    measured = [dict(preset=c[0].strip(), what=c[3].strip(), fp32=float(c[4]), bf16=float(c[5]), x=float(c[6])) for c in measured]
    rows = _typed_rows(_readme_section('### bf16 and channels-last'))
    assert len(rows) == 2
    for name, cells in rows.items():
        preset = re.match(r"`([\w-]+)`", name)[1]
        for what, cell, digits in (('bare xResNet18 step', cells[0], 2), ("study's epoch", cells[1], 1)):
            fp32, bf16, x = (float(v) for v in re.findall(r"[\d.]+(?=\s*s|×)", cell))
            assert any(_near(m['fp32'], fp32, digits) and _near(m['bf16'], bf16, digits) and _near(m['x'], x, 2)
                       for m in measured if (m['preset'], m['what']) == (preset, what)), (preset, what, cell)


def test_a_folds_mean_difference_carries_no_float_residue_into_the_sign_check():
    "Seeds whose differences sum to zero (+.3, -.1, -.2) give a fold mean of 0, which agrees with another folder's 0"
    a = _fake_results({'none': [0.5, 0.5, 0.5], 'global': [0.8, 0.4, 0.3]})
    b = _fake_results({'none': [0.5, 0.5, 0.5], 'global': [0.5, 0.5, 0.5]})
    assert (a.final_accuracy[3:].to_numpy() - 0.5).mean() != 0                  # the residue the check must not see
    fc = fold_contrasts({'a': a, 'b': b})
    assert fc.loc[('global - none', 1), 'a'] == 0.0 and fc.agree.all()
