"Recipes sized by the data, the cropping report and the classical baseline, on generated collections of tones"
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
import soundfile as sf
import torch

from esc50_norm.configs import Decoding
from esc50_norm.precision import cpu_model
from esc50_norm.study import PRESETS, Study, get_dataset, get_preset
from esc50_norm.study.baseline import compute_baseline, ensure_baseline, read_baseline
from esc50_norm.study.cache import load_or_build_cache
from esc50_norm.study.datasets import clip_duration, clip_info
from esc50_norm.study.presets import CHOSEN
from esc50_norm.study.runs import provenance
from esc50_norm.study.report import paired_differences, summary_table, write_report
from esc50_norm.study.report.sections import md_table
from esc50_norm.study.report.markdown import _chosen_line
from esc50_norm.study.sizing import MIN_FRAMES, MIN_STEPS, bs_for, epochs_for, hop_for, n_frames, size_recipe
from fake_collections import make_esc50, make_tone_classes

RESULTS = Path(__file__).resolve().parents[1] / 'results'


@pytest.fixture(scope='module')
def tones(tmp_path_factory) -> Path:
    "6 classes of tones and chirps x 12 clips of 0.6-2.0 s at 8-44.1 kHz, some stereo, WAV and FLAC"
    return make_tone_classes(tmp_path_factory.mktemp('tones') / 'tones', n_classes=6, per_class=12)


def test_frames_hop_batch_and_epochs_follow_the_rules():
    quick = PRESETS['quick'].spec
    assert n_frames(quick, 5.0) == 79 and n_frames(quick, 1.27) == 20         # the 1.27-s words: 20 frames
    assert hop_for(quick, 5.0) == 1024 and hop_for(quick, 1.27) == 256
    assert n_frames(quick.update(hop_length=256), 1.27) == 80
    assert n_frames(quick.update(center=False), 1.0) == 1 + (16000 - 1024) // 1024
    assert bs_for(64, 1600) == 64 and bs_for(64, 240) == 32 and bs_for(64, 5) == 2
    assert epochs_for(4, 1600, 64) == 8 and epochs_for(4, 240, 32) == 29 and epochs_for(40, 240, 32) == 40


def test_esc50_and_esc10_recipes_are_not_sized(tmp_path):
    "Every preset on ESC-50-shaped data keeps its recipe hash; so do the committed folders, ESC-10 included"
    root = make_esc50(tmp_path / 'esc50')
    for kind in ('esc50', 'esc10'):
        ds = get_dataset(kind, root, full=False)
        for name, p in PRESETS.items():
            p = p.resolved('cpu').update(duration=5.0, folds=p.folds or (1, 2, 3, 4, 5))
            assert size_recipe(p, ds) == {}, (kind, name)
            assert p.for_dataset(ds, log=None).training_hash() == p.training_hash(), (kind, name)
    for f in sorted(RESULTS.glob('*/preset.json')):
        first = next((f.parent / 'runs').glob('fold*-seed0.json'), None)
        if first is None: continue                                          # a grid whose first run is still going
        run = json.loads(first.read_text())
        recorded = json.loads(f.read_text())
        epochs = recorded['epochs'] if recorded['epochs'] != get_preset(run['preset']).epochs else None  # --epochs; a probe
        again = get_preset(run['preset'], epochs=epochs, bf16=recorded['bf16'], channels_last=recorded['channels_last'])
        ds = get_dataset((recorded.get('dataset') or {}).get('kind', 'esc50'), root, full=False)
        assert again.for_dataset(ds, log=None).training_hash() == run['training_hash'], f.parent.name


def test_a_small_collection_gets_enough_frames_batches_and_steps_and_preset_json_says_so(tones, tmp_path):
    ds, logs = get_dataset(tones), []
    p = get_preset('quick').resolved('cpu').for_dataset(ds, log=logs.append)
    n_train = len(ds.meta()) - int((ds.meta().fold == 1).sum())            # 72 clips in 5 folds; quick: fold 1
    assert n_frames(p.spec, p.duration) >= MIN_FRAMES > n_frames(PRESETS['quick'].spec, p.duration)
    assert p.spec.hop_length == 256 and p.bs == 8 and n_train // p.bs * p.epochs >= MIN_STEPS
    assert p.sized['hop_length'] == [1024, 256] and p.sized['bs'] == [64, 8] and p.sized['epochs'] == [4, p.epochs]
    assert p.sized['steps'] == n_train // 8 * p.epochs and p.sized['train_clips'] == n_train
    # by hand: 57 training clips (fold 1 holds 15 of the 72), 7 full batches of 8, so ceil(200 / 7) = 29 epochs
    assert (n_train, p.epochs, p.sized['steps']) == (57, 29, 203)
    assert any(l.startswith(f"recipe sized for tones: hop 1024 -> 256 ({p.sized['frames']} frames") for l in logs)
    study = Study(get_preset('quick'), tmp_path / 'res', dataset=ds, device='cpu')
    study.prepare()
    recorded = json.loads((tmp_path / 'res' / 'preset.json').read_text())
    assert recorded['sized'] == p.sized and recorded['spec']['hop_length'] == 256 and recorded['epochs'] == p.epochs
    assert Study(get_preset('quick'), tmp_path / 'res', dataset=ds, device='cpu').prepare() is None    # the same recipe


def test_epochs_and_bs_set_by_hand_and_the_smoke_form_are_kept(tones):
    ds = get_dataset(tones)
    p = get_preset('quick', epochs=3, bs=16).for_dataset(ds, log=None)
    assert (p.epochs, p.bs, p.spec.hop_length) == (3, 16, 256) and set(p.sized) >= {'hop_length'}
    assert 'epochs' not in p.sized and 'bs' not in p.sized
    line = _chosen_line(p.update(dataset=ds.describe()))                      # and the report says so
    assert line.startswith(f"How this recipe was chosen: {CHOSEN['quick']} Then the recipe sized for tones: hop 1024 -> 256")
    assert 'epochs' not in line.split('Then')[1].split('.')[0] and line.endswith('Kept as given, not sized: epochs, bs.')
    s = get_preset('quick', smoke=True).for_dataset(ds, log=None)
    assert s.sized is None and (s.epochs, s.bs) == (1, 16) and s.spec == PRESETS['quick'].smoke().spec


def test_the_default_duration_keeps_nearly_every_clip_and_the_cropping_is_reported(tones, tmp_path):
    ds, logs = get_dataset(tones), []
    d = clip_info(ds).duration
    length = clip_duration(ds, log=logs.append)
    cut = d[d > length]
    assert length == pytest.approx(np.quantile(d, 0.99, method='higher')) and length > d.median()
    assert cut.empty and len(logs) == 1                                  # 72 clips: the 99th percentile is the longest
    assert f"the 99th percentile of its {len(d)} clips" in logs[0]
    # 201 clips, two longer than the 99th percentile: they lose 1 - 1/2 and 1 - 1/3 of their length
    logs.clear()
    info = pd.DataFrame(dict(duration=[1.0] * 199 + [2.0, 3.0]))
    assert clip_duration(ds, info=info, log=logs.append) == 1.0
    assert logs[1] == ("warning: 2 of 201 clips are longer than 1.00 s and are cropped, losing 58% of the clip (median) "
                       "and at most 67%; 1 lose more than half; --duration 3.00 keeps every clip whole")
    logs.clear()
    df = ds.meta()                           # --duration 0.8: the data report counts the cropped clips and their loss
    cache = load_or_build_cache(ds.audio_root, df.file, tmp_path / 'c', Decoding(duration=0.8), progress=False, log=logs.append)
    lost = 1 - 0.8 / d[d > 0.8]
    line = next(l for l in cache.report().splitlines() if l.startswith('cropped:'))
    assert f"{int((d > 0.8).sum())} of {len(d)} clips are longer than 0.80 s" in line
    assert f"at most {lost.max():.0%}" in line
    assert (lost > 0.5).sum() > 0 and f"; {int((lost > 0.5).sum())} lose more than half" in line
    assert 'far shorter than the rest (under 0.40 s' in cache.report()             # measured against the crop length
    assert sum('clips are longer than 0.80 s' in l for l in logs) == 1             # the data report, printed once


def test_progress_to_a_pipe_is_a_few_lines(tones, tmp_path, capsys):
    ds = get_dataset(tones)
    load_or_build_cache(ds.audio_root, ds.meta().file, tmp_path / 'c', Decoding(duration=1.0), progress=True, log=print)
    out = capsys.readouterr().out
    assert '\r' not in out and len(out.splitlines()) < 15 and 'decoding: 18 of 72 clips' in out


def test_the_baseline_learns_the_tones_on_the_same_folds_and_is_computed_once(tones, tmp_path):
    ds = get_dataset(tones)
    study = Study(get_preset('quick'), tmp_path / 'res', dataset=ds, cache_dir=tmp_path / 'c', device='cpu')
    logs = []
    b = ensure_baseline(study, log=logs.append)
    assert set(b['per_fold']) == {'1', '2', '3', '4', '5'} and b['chance'] == pytest.approx(1 / 6) and b['mean'] > 0.5
    assert any(l.startswith('classical baseline (MFCC statistics + logistic regression)') for l in logs)
    assert read_baseline(tmp_path / 'res') == b
    assert ensure_baseline(study, log=logs.append) == b                                  # read again, not computed
    assert sum(l.startswith('classical') for l in logs) == 1
    sd = study.load_data(log=None)
    again = compute_baseline(sd.cache, sd.df, (1, 2))
    assert again['per_fold'] == {k: b['per_fold'][k] for k in ('1', '2')}
    made = b['made_by']                                              # the machine and software that computed it
    assert made['cpu'] == cpu_model() and made['sklearn'] == sklearn.__version__ and made['threads'] >= 1
    assert b['key']['version'] == 2 and made['git_commit'] == provenance()['git_commit']


def test_the_baseline_features_do_not_depend_on_the_cpus_kernels(tmp_path):
    """MFCC statistics in float64: with MKL capped at AVX2 (another FFT and matrix path on an AVX-512 CPU) they agree
    to 1e-9 of their largest value; in float32 they moved by 2e-7 of it on a Xeon, enough to move a clip's prediction"""
    x = torch.randn(16, 1, 32000, generator=torch.Generator().manual_seed(0)) * 0.1
    torch.save(x, tmp_path / 'x.pt')
    code = ("import sys, numpy as np, torch; from esc50_norm.study.baseline import clip_features; "
            "np.save(sys.argv[2], clip_features(torch.load(sys.argv[1]), 16000))")
    for name, env in (('as_is', {}), ('avx2', {'MKL_ENABLE_INSTRUCTIONS': 'AVX2'})):
        subprocess.run([sys.executable, '-c', code, str(tmp_path / 'x.pt'), str(tmp_path / f'{name}.npy')], check=True,
                       env={**os.environ, 'OMP_NUM_THREADS': '1', **env}, timeout=120)
    a, b = np.load(tmp_path / 'as_is.npy'), np.load(tmp_path / 'avx2.npy')
    assert a.shape == (16, 80) and a.dtype == np.float64
    assert np.abs(a - b).max() <= 1e-9 * np.abs(a).max()


def _with_baseline(tmp_path, per_fold: dict, **more) -> Path:
    out = tmp_path / 'quick'
    shutil.copytree(RESULTS / 'quick-cpu', out, ignore=shutil.ignore_patterns('*.png', '*.md'))
    b = dict(per_fold=per_fold, mean=float(np.mean(list(per_fold.values()))), chance=0.02, classifier='LR',
             features=dict(n_mfcc=20, stats=['mean', 'std']), **more)
    (out / 'baseline.json').write_text(json.dumps(b))
    return out


def test_the_report_puts_the_baseline_beside_the_deep_model_and_names_the_likely_cause(tmp_path, capsys):
    from esc50_norm.study.cli import main as cli
    text = write_report(_with_baseline(tmp_path, {'1': 0.9, '2': 0.8})).read_text()
    assert '## Classical baseline' in text
    assert re.search(r"\|\s+1 \|\s+0\.9000\s+\|\s+0\.3533\s+\|\s+0\.4200\s+\|\s+0\.4117\s+\|", text)
    # against the baseline of the folds it ran (fold 1: 0.9), not of every fold the baseline holds (0.85)
    assert ('**The deep model is far below the classical baseline**: its best normalization, global, reaches 0.4200 '
            'against 0.9000 (-0.4800)') in text
    assert ('Likely cause: too few optimizer steps (100: 25 batches of 64 per epoch x 4 epochs; a sized recipe trains '
            'at least 200: --epochs 8 does with these batches)') in text
    assert cli(['report', str(tmp_path / 'quick')]) == 0
    out = capsys.readouterr().out
    assert 'accuracy per normalization' in out and 'far below' in out
    assert re.search(r"\|\s+global \|\s+1 \|\s+3 \|\s+0\.4200\s+\|", out)           # folds, runs, mean
    assert 'computed in float32 (`baseline.json` version 1), whose rounding depends on the CPU' in text
    made = dict(cpu='Some CPU 9000', threads=2, torch='2.11.0', sklearn='1.7.0', git_commit='0123456789abcdef')
    text = write_report(_with_baseline(tmp_path / 'b', {'1': 0.45}, made_by=made)).read_text()
    assert 'The deep model is within 0.05 of the classical baseline: its best normalization, global, reaches' in text
    assert ('Its MFCCs were computed in float64 on Some CPU 9000 (2 threads; torch 2.11.0, scikit-learn 1.7.0; '
            'git 0123456789).') in text and 'version 1' not in text


def test_small_grids_give_intervals_in_range_or_na_and_say_why_a_p_value_is_missing():
    runs = pd.DataFrame([dict(fold=1, seed=s, normalization=n, final_accuracy=a) for n, xs in
                         {'none': [0.99, 1.0, 1.0], 'global': [1.0, 1.0, 1.0], 'channel': [0.5, 0.9, 0.6]}.items()
                         for s, a in enumerate(xs)])
    s = summary_table(runs)
    assert (s.ci95_high <= 1).all() and (s.ci95_low >= 0).all()
    two = summary_table(runs[runs.seed < 2])
    assert two.ci95_low.isna().all() and re.search(r"\|\s+n/a \|\s+n/a \|", md_table(two))
    none = runs[runs.normalization == 'none']
    p = paired_differences(pd.concat([runs, none.assign(normalization='wave')]))
    assert p.loc['wave - none', 'note'] == 'all 3 differences are 0: no test'
    assert np.isnan(p.loc['wave - none', 't_test_p'])
    shifted = pd.concat([none, none.assign(normalization='wave', final_accuracy=none.final_accuracy - 0.1)])
    note = paired_differences(shifted).loc['wave - none', 'note']
    assert note == 'all 3 differences equal -0.1000: no spread, no t-test'
    assert 'note' not in paired_differences(runs)


@pytest.mark.slow
def test_the_default_recipe_on_a_small_collection_comes_near_the_classical_baseline(tmp_path, capsys):
    "study --dataset DIR, the default preset (one seed, global): far above chance, near the baseline on the same fold"
    from esc50_norm.study.cli import main as cli
    root = make_tone_classes(tmp_path / 'words', n_classes=6, per_class=20, seconds=(0.5, 1.5))
    out = tmp_path / 'res'
    assert cli(['study', '--dataset', str(root), '--seeds', '0', '--normalizations', 'global', '--device', 'cpu',
                '--cache-dir', str(tmp_path / 'c'), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    run = json.loads((out / 'runs' / 'fold1-global-seed0.json').read_text())
    base = read_baseline(out)['per_fold']['1']
    assert run['final_accuracy'] > 3 / 6 and run['final_accuracy'] >= base - 0.1, (run['final_accuracy'], base)
    assert 'recipe sized for words' in printed and 'classical baseline' in printed
    recipe = json.loads((out / 'preset.json').read_text())                     # the report says how it was sized
    assert (f"Then the recipe sized for words: hop {recipe['sized']['hop_length'][0]} -> {recipe['spec']['hop_length']} "
            in (out / 'report.md').read_text()) and recipe['given'] == []
    assert 'accuracy per normalization' in printed


@pytest.mark.parametrize('folder', ['baseline-esc50', 'baseline-esc10'])
def test_the_committed_baselines_are_what_the_results_page_quotes(folder):
    "results/baseline-esc50 and -esc10 hold every official fold, and docs/results.md quotes their mean and folds"
    b, readme = read_baseline(RESULTS / folder), (RESULTS.parent / 'docs' / 'results.md').read_text()
    assert set(b['per_fold']) == {'1', '2', '3', '4', '5'}
    assert b['mean'] == pytest.approx(np.mean(list(b['per_fold'].values())))
    assert f"`results/{folder}`" in readme and f"{b['mean']:.4f}" in readme
    assert ' / '.join(f"{b['per_fold'][str(f)]:.3f}" for f in range(1, 6)) in readme.replace('\n', ' ')
