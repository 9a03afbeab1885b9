"The study end to end through the same code path as the real one: grid, resume, shards, CSV, report, plots, CLI"
import json
from functools import partial

import numpy as np
import pandas as pd
import pytest

from esc50_norm.study.cli import main as cli
from esc50_norm.study.demo import make_fake_esc50
from esc50_norm.study.experiment import expected_runs, get_preset, read_results, run_study
from esc50_norm.stats import load_stats
from esc50_norm.study.report import missing_runs, paired_differences, summary_table, write_report


@pytest.fixture(scope='module')
def fake_root(tmp_path_factory):
    return make_fake_esc50(tmp_path_factory.mktemp('data') / 'esc50', clips_per_fold=1, sr=16000, seconds=(1.0, 2.0))


@pytest.fixture
def study(fake_root, tmp_path):
    "`run_study` on the fake folder, on the CPU, with this test's own cache"
    return partial(run_study, data=fake_root, cache_dir=tmp_path / 'cache', device='cpu', full_data=False)


def tiny(**kw):
    "The smoke preset, smaller still: 1 fold, 2 normalizations, 1 epoch"
    return get_preset('smoke', **{**dict(folds=(1,), normalizations=('none', 'channel')), **kw})


def test_grid_writes_one_row_per_run_with_config(study, tmp_path):
    out = tmp_path / 'res'
    df = study(tiny(), out)
    csv = pd.read_csv(out / 'results.csv')
    assert len(csv) == len(df) == 2
    assert set(csv.normalization) == {'none', 'channel'}
    for col in ('fold', 'seed', 'final_accuracy', 'best_accuracy', 'wall_s', 'device', 'torch', 'fastai', 'config'):
        assert col in csv, col
    assert json.loads(csv.config[0])['spec']['n_mels'] == 16
    assert csv.final_accuracy.between(0, 1).all() and (csv.best_accuracy >= csv.final_accuracy).all()
    hist = pd.read_csv(out / 'runs' / 'fold1-channel-seed0.history.csv')
    assert list(hist.columns) == ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'seconds'] and len(hist) == 1
    assert hist.accuracy.iloc[-1] == pytest.approx(csv.set_index('normalization').final_accuracy['channel'])
    stats = load_stats(out / 'runs' / 'fold1-channel-seed0.stats.json', shape=(1, 1, 16, 1))
    assert stats['mode'] == 'channel' and stats['fold'] == 1
    assert not (out / 'runs' / 'fold1-none-seed0.stats.json').exists()


def test_rerun_skips_finished_runs_and_resumes_missing_ones(study, tmp_path):
    out, logs = tmp_path / 'res', []
    study(tiny(), out)
    before = (out / 'runs' / 'fold1-none-seed0.json').read_text()
    (out / 'runs' / 'fold1-channel-seed0.json').unlink()          # as if interrupted during this run
    study(tiny(), out, log=logs.append)
    assert '1 runs to do' in logs[0]
    assert (out / 'runs' / 'fold1-none-seed0.json').read_text() == before
    assert len(pd.read_csv(out / 'results.csv')) == 2


def test_same_seed_same_device_repeats_the_result(study, tmp_path):
    p = tiny(normalizations=('global',))
    a = study(p, tmp_path / 'a')
    b = study(p, tmp_path / 'b')
    assert a.final_valid_loss[0] == pytest.approx(b.final_valid_loss[0], rel=1e-6)


def test_shards_split_the_grid_and_merge_into_one_csv(study, tmp_path):
    out, p = tmp_path / 'res', tiny(normalizations=('none', 'global', 'channel'))
    first = study(p, out, shard=(0, 2))
    assert len(first) == 2
    both = study(p, out, shard=(1, 2))
    assert sorted(both.normalization) == ['channel', 'global', 'none']
    assert len(pd.read_csv(out / 'results.csv')) == 3


def test_a_folder_refuses_runs_of_another_recipe(study, tmp_path):
    study(tiny(normalizations=('none',)), tmp_path / 'res')
    with pytest.raises(ValueError, match=r"another recipe.*epochs"):
        study(tiny(normalizations=('none',), epochs=2), tmp_path / 'res')


def test_unknown_fold_and_normalization_are_named():
    with pytest.raises(ValueError, match=r"fold\(s\) \[7\]"): get_preset('smoke', folds=(7,))
    with pytest.raises(ValueError, match="'spectral'"): get_preset('smoke', normalizations=('spectral',))
    with pytest.raises(ValueError, match="'huge'"): get_preset('huge')


def test_presets_match_the_reference_recipe():
    blog = get_preset('blog')
    assert (blog.folds, blog.seeds, blog.epochs, blog.bs, blog.lr) == ((1,), (0, 1, 2, 3, 4), 20, 64, 1e-3)
    assert blog.spec_cfg.n_freq == 201 and blog.spec_cfg.n_frames(80000) == 401
    assert get_preset('cv').folds == (1, 2, 3, 4, 5)
    assert len(expected_runs(get_preset('cv'))) == 75


def _fake_results(accs: dict) -> pd.DataFrame:
    rows = [dict(fold=1, seed=s, normalization=n, final_accuracy=a) for n, xs in accs.items() for s, a in enumerate(xs)]
    return pd.DataFrame(rows)


def test_summary_matches_hand_computed_mean_and_t_interval():
    df = _fake_results({'none': [0.5, 0.6, 0.7], 'channel': [0.6, 0.65, 0.8]})
    s = summary_table(df).loc['none']
    half = 4.302652729911275 * 0.1 / np.sqrt(3)                # t(0.975, 2) * sd / sqrt(n)
    assert (s.n, s['mean'], s['std']) == (3, pytest.approx(0.6), pytest.approx(0.1))
    assert (s.ci95_low, s.ci95_high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))


def test_paired_differences_use_matched_seeds():
    df = _fake_results({'none': [0.5, 0.6, 0.7], 'global': [0.55, 0.62, 0.78], 'channel': [0.6, 0.65, 0.8]})
    p = paired_differences(df)
    assert p.loc['channel - none', 'mean'] == pytest.approx(np.mean([0.1, 0.05, 0.1]))
    assert p.loc['channel - none', 'pairs'] == 3 and p.loc['channel - none', 'wins'] == 3
    assert p.loc['channel - global', 'mean'] == pytest.approx(np.mean([0.05, 0.03, 0.02]))
    assert 0 < p.loc['global - none', 't_test_p'] < 0.2


def test_report_of_an_incomplete_grid_says_so(study, tmp_path):
    out, p = tmp_path / 'res', tiny()
    study(p, out)
    (out / 'runs' / 'fold1-channel-seed0.json').unlink()
    assert missing_runs(read_results(out), p) == ['fold1-channel-seed0']
    text = write_report(out).read_text()
    assert 'Incomplete grid: 1 of 2 runs finished' in text and 'fold1-channel-seed0' in text
    assert (out / 'accuracy.png').stat().st_size > 1000 and (out / 'curves.png').stat().st_size > 1000


def test_cli_study_then_report(fake_root, tmp_path, capsys):
    out = tmp_path / 'cli'
    rc = cli(['study', '--preset', 'smoke', '--folds', '1', '--normalizations', 'none,global', '--data', str(fake_root),
              '--cache-dir', str(tmp_path / 'cache'), '--out', str(out), '--device', 'cpu', '--partial-data'])
    assert rc == 0
    text = (out / 'report.md').read_text()
    assert 'Complete grid: 2 of 2 runs' in text and 'global - none' in text
    assert cli(['study', '--preset', 'smoke', '--folds', '9', '--data', str(fake_root)]) == 2
    assert 'fold(s) [9] do not exist' in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_study_on_real_clips(shared_esc50, tmp_path):
    "CI's end-to-end study: the smoke preset (1 clip per class and fold, 1 epoch) on the real ESC-50 copy"
    out = tmp_path / 'smoke'
    assert cli(['study', '--preset', 'smoke', '--data', str(shared_esc50), '--cache-dir', str(tmp_path / 'cache'),
                '--out', str(out), '--device', 'cpu']) == 0
    csv = pd.read_csv(out / 'results.csv')
    assert len(csv) == 6 and set(csv.fold) == {1, 2} and (csv.n_valid == 50).all() and (csv.n_train == 200).all()
    assert 'Complete grid: 6 of 6 runs' in (out / 'report.md').read_text()
    for f in ('accuracy.png', 'curves.png', 'summary.csv', 'paired.csv'): assert (out / f).stat().st_size > 100, f
