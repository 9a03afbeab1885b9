"Pooling folders of one recipe into one grid: the round trip through two folders, repeats, machines, refusals"
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats as st

from esc50_norm.study.cli import main as cli
from esc50_norm.study.report import (compare_report, fold_aware_table, fold_span, machine_of, pooled_report, pooled_runs,
                                     read_folder, summary_table, what_else_changes)

RESULTS = Path(__file__).resolve().parents[1] / 'results'


def _split(tmp_path, first: set, second: set, second_device: str | None = None) -> tuple[Path, Path]:
    "quick-cpu split in two folders holding the runs of normalizations `first` and `second`; the second's device set"
    outs = []
    for name, keep in (('a', first), ('b', second)):
        out = Path(shutil.copytree(RESULTS / 'quick-cpu', tmp_path / name))
        for f in (out / 'runs').glob('fold*'):
            if f.name.split('-')[1] not in keep: f.unlink()
        if name == 'b' and second_device:
            for f in (out / 'runs').glob('fold*-seed?.json'):
                f.write_text(json.dumps({**json.loads(f.read_text()), 'device': second_device}))
        outs.append(out)
    return tuple(outs)


def test_two_halves_of_a_grid_pool_into_the_whole_grid(tmp_path):
    "quick-cpu split in two folders (global in both) pools back to quick-cpu: the same runs, means and verdicts"
    a, b = _split(tmp_path, {'none', 'global'}, {'global', 'channel'})
    pooled, repeats = pooled_runs([a, b])
    whole = read_folder(RESULTS / 'quick-cpu')[1]
    assert len(pooled) == len(whole) == 9 and set(pooled.folder) == {'a', 'b'}
    assert (pooled[pooled.normalization == 'global'].folder == 'a').all()         # a repeat comes from the first
    assert len(repeats['b']) == 3 and (repeats['b'] == 0).all()
    pd.testing.assert_frame_equal(summary_table(pooled), summary_table(whole))
    pd.testing.assert_frame_equal(fold_aware_table(pooled), fold_aware_table(whole))
    assert '3 runs of `b` are also in an earlier folder, their final_accuracy equal to the last digit' in \
        pooled_report([a, b])


def test_a_repeat_that_differs_is_reported_and_the_first_folders_run_is_pooled(tmp_path):
    a, b = _split(tmp_path, {'none', 'global'}, {'global', 'channel'})
    f = b / 'runs' / 'fold1-global-seed1.json'
    run = json.loads(f.read_text())
    f.write_text(json.dumps({**run, 'final_accuracy': run['final_accuracy'] + 0.0125}))
    pooled, repeats = pooled_runs([a, b])
    assert repeats['b'].abs().max() == pytest.approx(0.0125)
    first = read_folder(a)[1]
    assert pooled.set_index(['normalization', 'seed']).loc[('global', 1), 'final_accuracy'] == \
        first.set_index(['normalization', 'seed']).loc[('global', 1), 'final_accuracy']
    assert 'differing by up to 0.0125 (mean +0.0042)' in pooled_report([a, b])


def test_pairs_across_folders_and_machines_are_counted(tmp_path):
    "channel's runs come from the second folder, made on a GPU: its contrasts cross folders and machines, none's not"
    a, b = _split(tmp_path, {'none', 'global'}, {'channel'}, second_device='NVIDIA H200')
    pooled, _ = pooled_runs([a, b])
    t = what_else_changes(pooled)
    assert t.loc['global - none', ['pairs', 'across_folders', 'across_machines']].tolist() == [3, 0, 0]
    assert t.loc['channel - none', ['pairs', 'across_folders', 'across_machines']].tolist() == [3, 3, 3]
    assert t.loc['channel - global', 'machines_a'] == 'NVIDIA H200'
    assert t.loc['channel - global', 'machines_b'] == 'CPU model not recorded'
    text = pooled_report([a, b])
    assert 'Contrasts with such pairs: `channel - none`, `channel - global`.' in text


def test_machine_of_names_the_gpu_or_the_cpu_model_and_its_bf16():
    "Two EPYCs, one with avx512_bf16 and one with AVX2 only, are two machines"
    df = pd.DataFrame(dict(device=['NVIDIA H100 80GB HBM3', 'cpu (2 cores)', 'cpu (2 cores)', 'cpu (2 cores)',
                                   'cpu (2 cores)'],
                           cpu=['Intel(R) Xeon(R) Processor', 'AMD EPYC', 'AMD EPYC', 'Intel(R) Xeon(R) Processor', None],
                           cpu_bf16=[True, True, False, True, None], cpu_amx=[True, False, False, True, None]))
    assert machine_of(df).tolist() == ['NVIDIA H100 80GB HBM3', 'CPU AMD EPYC, native bf16', 'CPU AMD EPYC, no native bf16',
                                       'CPU Intel(R) Xeon(R) Processor, AMX', 'CPU model not recorded']


@pytest.mark.parametrize('folds,text', [([1, 2, 3, 4, 5], '1-5'), ([1], '1'), ([4, 1, 3, 1], '1, 3-4'),
                                        ([2, 5, 6, 8], '2, 5-6, 8')])
def test_fold_span_joins_consecutive_folds(folds, text):
    assert fold_span(folds) == text


def test_folders_of_two_recipes_are_refused_before_anything_is_written(tmp_path, capsys):
    a = Path(shutil.copytree(RESULTS / 'quick-cpu', tmp_path / 'quick-cpu'))
    (a / 'report.md').write_text('left alone')
    assert cli(['report', str(a), '--with', str(RESULTS / 'blog-fp32')]) == 2
    err = capsys.readouterr().err
    assert 'blog-fp32 has another recipe than' in err and "'epochs'" in err and 'esc50-norm compare' in err
    assert (a / 'report.md').read_text() == 'left alone' and not list(a.glob('with-*'))
    assert cli(['report', str(a), str(a), '--with', str(a)]) == 2
    assert '--with pools into one results folder; 2 were given' in capsys.readouterr().err
    with pytest.raises(ValueError, match='holds runs of dataset esc10'):
        pooled_runs([RESULTS / 'quick-cpu', RESULTS / 'quick-esc10-cpu'])


def test_report_with_writes_the_pooled_report_beside_the_folders_own(tmp_path, capsys):
    a, b = _split(tmp_path, {'none', 'global'}, {'global', 'channel'})
    assert cli(['report', str(a), '--with', str(b)]) == 0
    assert f"pooled report: {a / 'with-b.md'}" in capsys.readouterr().out
    assert (a / 'with-b.md').read_text() == pooled_report([a, b])
    c = Path(shutil.copytree(b, tmp_path / 'c'))
    for f in (c / 'runs').glob('fold*-global-*'): f.unlink()              # c: channel alone, b: global alone
    for f in (b / 'runs').glob('fold*-channel-*'): f.unlink()
    assert cli(['report', str(a), '--with', str(b), '--with', str(c)]) == 0      # two folders pooled: named by '+'
    assert f"pooled report: {a / 'with-b+c.md'}" in capsys.readouterr().out
    assert (a / 'with-b+c.md').read_text() == pooled_report([a, b, c])


def _raw(folder: str) -> pd.DataFrame:
    "The committed run files read with json and pandas alone: an independent path to the numbers"
    return pd.DataFrame([json.loads(p.read_text()) for p in (RESULTS / folder / 'runs').glob('fold*-seed*.json')
                         if p.name.count('.') == 1])


def _rows(text: str, first: str) -> list:
    "The cells of every table row of `text` whose first cell is `first`, in order"
    cells = ([x.strip() for x in l.split('|')[1:-1]] for l in text.splitlines() if l.startswith('|'))
    return [c for c in cells if c[0] == first]


def test_the_committed_pooled_ablation_report_is_what_pooling_writes_and_its_numbers_are_the_run_files():
    "with-cv-bf16.md regenerates unchanged; global - wave fold by fold, its fold t-test and its machines from raw files"
    folders = [RESULTS / 'ablation-bf16', RESULTS / 'cv-bf16']
    text = (RESULTS / 'ablation-bf16' / 'with-cv-bf16.md').read_text()
    assert text == pooled_report(folders)
    runs = pd.concat([_raw('ablation-bf16'), _raw('cv-bf16')]).drop_duplicates(['fold', 'normalization', 'seed'])
    wide = runs.pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    d = (wide['global'] - wide['wave']).round(6).groupby(level='fold').mean()          # at 1e-6, as docs/study.md says
    verdict, tests, effects, changes, one = _rows(text, 'global - wave')      # the report's five tables, in order
    assert len(d) == 5 and [float(x) for x in effects[1:6]] == pytest.approx(d.to_numpy(), abs=5e-5)
    assert tests[4] == 'MixedLM' and float(tests[12]) == pytest.approx(st.ttest_1samp(d, 0).pvalue, abs=5e-5)
    device = runs.pivot_table(index=['fold', 'seed'], columns='normalization', values='device', aggfunc='first')
    assert changes[1:4] == ['25', '20', str(int((device['global'] != device['wave']).sum()))]
    same = device['global'] == device['wave']                            # the pairs made on one GPU, and their mean
    diff = wide['global'] - wide['wave']
    assert one[1:4] == ['25', str(int(same.sum())), device['global'][same].iloc[0]] and device['global'][same].nunique() == 1
    assert float(one[4]) == pytest.approx(diff[same].mean(), abs=5e-5)


@pytest.mark.parametrize('base,arm,a,b,n,machines', [
    ('mel-cpu', 'mel-cpu-instance-global', 'instance', 'instance_global', 70, 10),
    ('mel-cpu', 'mel-cpu-bn-freq', 'bn_freq', 'global', 70, 10),
    ('mel-aug-cpu', 'mel-aug-cpu-bn-freq', 'bn_freq', 'global', 30, 0),
    ('mel-aug60-cpu', 'mel-aug60-cpu-bn-freq', 'bn_freq', 'global', 30, 0),
    ('pcen-bn-xeon', 'pcen-bias-root-xeon', 'pcen_learn_bias_root', 'pcen_frozen', 40, 0),
    ('pcen-bn-xeon', 'pcen-gain-xeon', 'pcen_learn_gain', 'pcen_frozen', 40, 0),
    ('pcen-bn-xeon', 'pcen-gain-xeon+pcen-gain094-xeon', 'pcen_gain094', 'pcen_learn_gain', 50, 0)])
def test_a_committed_pooled_arm_report_is_what_pooling_writes_and_its_numbers_are_the_run_files(base, arm, a, b, n, machines):
    """A grid with an arm run into a folder of its own (or two: `A+B`): the report regenerates unchanged; its contrast
    from raw files; its pairs change the machine where one folder's files predate the recording of the CPU (mel-cpu's)"""
    folders = [RESULTS / base, *(RESULTS / f for f in arm.split('+'))]
    text = (folders[0] / f'with-{arm}.md').read_text()
    assert text == pooled_report(folders)
    runs = pd.concat([_raw(f.name) for f in folders])
    assert len(runs) == n and runs.training_hash.nunique() == 1               # one recipe: each arm pairs on (fold, seed)
    wide = runs.pivot_table(index=['fold', 'seed'], columns='normalization', values='final_accuracy')
    d = (wide[a] - wide[b]).round(6).groupby(level='fold').mean()                  # at 1e-6, as docs/study.md says
    verdict, tests, effects, changes = _rows(text, f'{a} - {b}')             # no one-machine table: no pair kept
    assert len(d) == 5 and [float(x) for x in effects[1:6]] == pytest.approx(d.to_numpy(), abs=5e-5 + 1e-9)
    assert tests[4] == 'MixedLM' and float(tests[12]) == pytest.approx(st.ttest_1samp(d, 0).pvalue, abs=5e-5)
    assert changes[1:4] == ['10', '10', str(machines)]          # every pair takes its two runs from two folders


def test_a_pooled_report_names_each_folders_commits_and_what_it_still_lacks(tmp_path):
    "A folder of the pool whose grid is unfinished is named with its count; each folder's commits are listed"
    a, b = _split(tmp_path, {'none', 'global', 'channel'}, {'global'})
    for f, commit in ((a, 'aaaaaaaaaa11'), (b, 'bbbbbbbbbb22')):
        for run in (f / 'runs').glob('fold*-seed?.json'):
            run.write_text(json.dumps({**json.loads(run.read_text()), 'esc50_norm': '0.4.0', 'git_commit': commit,
                                       'git_dirty': f == b}))
    text = pooled_report([a, b])
    assert "**Incomplete: `b` holds 3 of its grid's 9 runs** (missing: fold1-none-seed0, " in text
    assert "**Incomplete: `a`" not in text
    assert "- `a`: esc50_norm 0.4.0; git aaaaaaaaaa.\n- `b`: esc50_norm 0.4.0; git bbbbbbbbbb (with changes)." in text


def test_a_folder_with_no_finished_run_is_refused_by_name(tmp_path, capsys):
    a, b = _split(tmp_path, {'none', 'global', 'channel'}, set())
    with pytest.raises(ValueError, match=f"{b} holds no finished run yet"):
        pooled_runs([a, b])
    assert cli(['report', str(a), '--with', str(b)]) == 2
    assert 'holds no finished run yet: there is nothing of it to pool' in capsys.readouterr().err
    assert not list(a.glob('with-*'))
    # compared, not pooled: refused by name too (it crashed when every folder was empty, or made the second the
    # reference when the first was)
    for folders in ([b, a], [b, b.parent / 'b2']):
        if not folders[1].exists(): shutil.copytree(b, folders[1])
        with pytest.raises(ValueError, match=f"{re.escape(str(folders[0]))}.* no finished run yet: there is nothing of "
                                             "(it|them) to compare"):
            compare_report(folders)
    assert cli(['compare', str(b), str(a)]) == 2
    assert f'{b} holds no finished run yet: there is nothing of it to compare' in capsys.readouterr().err
