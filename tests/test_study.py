"The study end to end through the same code path as the real one: presets, grid, resume, shards, run files, CLI"
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from esc50_norm.study.cli import main as cli
from esc50_norm.study.datasets import get_dataset
from esc50_norm.study.engines import run_study
from esc50_norm.study.presets import get_preset
from esc50_norm.study.report import write_report
from esc50_norm.study.runs import read_results, same_dataset
from esc50_norm.study.study import Study
from esc50_norm import load_exported
from esc50_norm.stats import load_stats

RESULTS = Path(__file__).resolve().parents[1] / 'results'


@pytest.fixture
def study(fake_root, tmp_path):
    "Run a preset's grid on the fake folder, on the CPU, with this test's own cache"
    def run(preset, out, **kw):
        return run_study(Study(preset, out, dataset=esc50(fake_root), cache_dir=tmp_path / 'cache', device='cpu'), **kw)
    return run


def esc50(root): return get_dataset(data=root, full=False)


def tiny(**kw):
    "The smoke preset, smaller still: 1 fold, 2 normalizations, 1 epoch"
    return get_preset('smoke', **{**dict(folds=(1,), normalizations=('none', 'channel')), **kw})


def test_grid_writes_one_row_per_run_with_config_and_provenance(study, tmp_path):
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
    row = json.loads((out / 'runs' / 'fold1-channel-seed0.json').read_text())
    import esc50_norm
    assert row['esc50_norm'] == esc50_norm.__version__ and re.fullmatch(r'[0-9a-f]{40}', row['git_commit'])
    assert row['git_dirty'] in (True, False) and row['engine'] == 'in-process'
    assert pd.Timestamp(row['started_at']) <= pd.Timestamp(row['finished_at'])
    assert not list((out / 'runs').glob('*.running.json'))          # the note of a run in progress is gone once it finished


def test_rerun_skips_finished_runs_and_resumes_missing_ones(study, tmp_path):
    out, logs = tmp_path / 'res', []
    study(tiny(), out)
    before = (out / 'runs' / 'fold1-none-seed0.json').read_text()
    (out / 'runs' / 'fold1-channel-seed0.json').unlink()          # as if interrupted during this run
    study(tiny(), out, log=logs.append)
    assert '1 run to do' in logs[0]
    assert (out / 'runs' / 'fold1-none-seed0.json').read_text() == before
    assert len(pd.read_csv(out / 'results.csv')) == 2


def test_same_seed_same_device_repeats_the_result(study, tmp_path):
    p = tiny(normalizations=('global',))
    a = study(p, tmp_path / 'a')
    b = study(p, tmp_path / 'b')
    assert a.final_valid_loss[0] == pytest.approx(b.final_valid_loss[0], rel=1e-6)


def test_shards_split_the_grid_and_results_csv_is_derived_from_the_run_files(study, tmp_path):
    out, p = tmp_path / 'res', tiny(normalizations=('none', 'global', 'channel'))
    first = study(p, out, shard=(0, 2))
    assert len(first) == 2
    both = study(p, out, shard=(1, 2))
    assert sorted(both.normalization) == ['channel', 'global', 'none']
    (out / 'results.csv').write_text('stale')                     # a derived table: any writer rebuilds it whole
    assert len(study(p, out)) == 3 and len(pd.read_csv(out / 'results.csv')) == 3


def test_a_folder_refuses_runs_of_another_recipe(study, tmp_path):
    study(tiny(normalizations=('none',)), tmp_path / 'res')
    with pytest.raises(ValueError, match=r"another recipe.*epochs"):
        study(tiny(normalizations=('none',), epochs=2), tmp_path / 'res')
    with pytest.raises(ValueError, match=r"another recipe.*mixup"):
        study(tiny(normalizations=('none',), mixup=0.4), tmp_path / 'res')


def test_a_wider_grid_in_the_same_folder_grows_its_preset(study, tmp_path):
    out = tmp_path / 'res'
    study(tiny(normalizations=('none',)), out)
    study(tiny(normalizations=('channel',), seeds=(1,)), out)
    p = json.loads((out / 'preset.json').read_text())      # the axes' union would plan none/1 and channel/0: beside it
    assert (p['normalizations'], p['seeds'], p['added']) == (['none'], [0], [dict(folds=[1], normalizations=['channel'],
                                                                                   seeds=[1])])
    study(tiny(normalizations=('channel',), seeds=(2,)), out)      # a grid that adds only its own runs takes the seed
    assert json.loads((out / 'preset.json').read_text())['added'] == [dict(folds=[1], normalizations=['channel'],
                                                                          seeds=[1, 2])]
    assert len(read_results(out)) == 3 and "Complete grid: 3 of 3 runs" in write_report(out).read_text()


def test_unknown_fold_normalization_preset_and_augmentation_are_named():
    with pytest.raises(ValueError, match=r"fold\(s\) \[7\] do not exist in esc50; its folds are 1-5"):
        get_preset('smoke', folds=(7,)).for_dataset(get_dataset())            # the dataset says which folds exist
    with pytest.raises(ValueError, match=r"folds are numbered from 1, got \[0\]"): get_preset('smoke', folds=(0,))
    with pytest.raises(ValueError, match="'spectral'"): get_preset('smoke', normalizations=('spectral',))
    with pytest.raises(ValueError, match="'huge'"): get_preset('huge')
    with pytest.raises(TypeError, match="wobble"): get_preset('smoke', augment=dict(wobble=1))


def test_presets_match_the_reference_recipe_and_their_estimates(tmp_path):
    esc50 = get_dataset()                                           # folds and clip duration known without reading the data
    blog = get_preset('blog').for_dataset(esc50)
    assert (blog.folds, blog.seeds, blog.epochs, blog.bs, blog.lr, blog.duration) == ((1,), (0, 1, 2, 3, 4), 20, 64, 1e-3, 5.0)
    assert blog.spec.n_freq == 201 and blog.spec.n_frames(80000) == 401
    cv = get_preset('cv')
    assert cv.folds is None and cv.for_dataset(esc50).folds == (1, 2, 3, 4, 5) and len(cv.for_dataset(esc50).jobs()) == 75
    from fake_collections import make_urbansound8k                 # the dataset supplies the folds: cv on UrbanSound8K has 10
    us8k = get_dataset(make_urbansound8k(tmp_path / 'us8k'))
    assert cv.for_dataset(us8k, log=None).folds == tuple(range(1, 11)) and len(cv.for_dataset(us8k, log=None).jobs()) == 150
    mel, strong = get_preset('mel').for_dataset(esc50), get_preset('strong').for_dataset(esc50)
    assert mel.spec.n_freq == 128 and mel.spec.n_frames(80000) == 313 and len(mel.jobs()) == 150
    assert set(mel.normalizations) == {'none', 'wave', 'global', 'channel', 'minmax', 'instance'}
    assert len(strong.jobs()) == 60 and strong.mixup > 0 and strong.augment.freq_mask > 0
    mel_cpu = get_preset('mel-cpu').for_dataset(esc50)
    assert (mel_cpu.spec.n_freq, mel_cpu.spec.n_frames(80000), len(mel_cpu.jobs()), mel_cpu.epochs) == (64, 157, 60, 20)
    assert mel_cpu.normalizations == mel.normalizations and mel_cpu.seeds == (0, 1)
    smoke = get_preset('mel', smoke=True)
    assert smoke.normalizations == mel.normalizations and (smoke.epochs, smoke.clips_per_class, smoke.folds) == (1, 1, (1, 2))


@pytest.mark.parametrize('native', [True, False])
def test_bf16_and_channels_last_are_the_default_on_cuda_and_on_a_cpu_with_native_bf16(native, monkeypatch):
    monkeypatch.setattr('esc50_norm.precision._cpu_flags', lambda: frozenset({'avx512f', 'avx512_bf16'} if native else {'avx2'}))
    p = get_preset('cv')
    assert (p.bf16, p.channels_last) == (None, None)
    assert (p.resolved('cuda').bf16, p.resolved('cuda').channels_last) == (True, True)
    assert (p.resolved('cpu').bf16, p.resolved('cpu').channels_last) == (native, native)
    assert get_preset('cv', bf16=True).resolved('cpu').channels_last is native        # --bf16 alone: channels-last where native
    fp32 = get_preset('cv', bf16=False, channels_last=False).resolved('cuda')
    assert (fp32.bf16, fp32.channels_last) == (False, False)
    with pytest.raises(ValueError, match='resolve'): p.training_hash()


def _copy(folder: str, dest: Path) -> Path:
    "A committed results folder's preset and run files, copied so that a test cannot change them"
    shutil.copytree(RESULTS / folder, dest / folder, ignore=shutil.ignore_patterns('*.png'))
    return dest / folder


_FLAGS = dict(fp32=dict(bf16=False, channels_last=False), bf16=dict(bf16=True, channels_last=True), default={})


@pytest.mark.parametrize('folder,preset,precision', [('cv-bf16', 'cv', 'default'), ('blog-bf16', 'blog', 'default'),
                                                     ('blog-fp32', 'blog', 'fp32'), ('ablation-bf16', 'ablation', 'default'),
                                                     ('quick-cpu', 'quick', 'fp32'), ('quick-bf16-cpu', 'quick', 'bf16')])
def test_committed_folders_resume_with_the_defaults_they_were_made_with(folder, preset, precision, tmp_path, request,
                                                                        monkeypatch):
    "The recipe hash of the committed H100 and CPU folders is that of today's preset, resolved as they ran"
    out, shared = _copy(folder, tmp_path), request.getfixturevalue('shared_esc50')
    monkeypatch.setenv('ESC50_PATH', str(shared))          # the default dataset (no download) of folders without one
    recorded = json.loads((out / 'preset.json').read_text()).get('dataset')       # a recorded fingerprint is checked on the data
    ds = get_dataset(data=shared) if recorded else None
    device = 'cpu' if folder.endswith('cpu') else 'cuda'
    before = (out / 'preset.json').read_text()
    s = Study(get_preset(preset, **_FLAGS[precision]), out, dataset=ds, device=device)
    s.prepare()
    assert s.todo() == [] and (out / 'preset.json').read_text() == before        # nothing to run, nothing rewritten
    other = get_preset(preset, **_FLAGS['bf16' if precision == 'fp32' else 'fp32'])
    with pytest.raises(ValueError, match=r"another recipe \(changed: \['bf16', 'channels_last'\]\)"):
        Study(other, out, dataset=ds, device='cuda').prepare()


def test_cli_study_then_report(fake_root, tmp_path, capsys):
    out = tmp_path / 'cli'
    rc = cli(['study', '--preset', 'smoke', '--folds', '1', '--normalizations', 'none,global', '--data', str(fake_root),
              '--cache-dir', str(tmp_path / 'cache'), '--out', str(out), '--device', 'cpu', '--partial-data'])
    assert rc == 0
    text = (out / 'report.md').read_text()
    assert 'Complete grid: 2 of 2 runs' in text and 'global - none' in text and 'Study wall time' in text
    assert cli(['study', '--preset', 'smoke', '--folds', '9', '--data', str(fake_root), '--partial-data']) == 2
    assert 'fold(s) [9] do not exist' in capsys.readouterr().err


def test_save_models_keeps_each_runs_model_beside_its_files(fake_root, tmp_path, capsys):
    out = tmp_path / 'res'
    assert cli(['study', '--preset', 'smoke', '--folds', '1', '--normalizations', 'minmax', '--data', str(fake_root),
                '--partial-data', '--cache-dir', str(tmp_path / 'cache'), '--out', str(out), '--device', 'cpu',
                '--save-models', '--no-report']) == 0
    model = out / 'runs' / 'fold1-minmax-seed0.pkl'
    assert model.stat().st_size > 1e6
    clip = sorted((fake_root / 'audio').iterdir())[0]
    capsys.readouterr()
    assert cli(['predict', str(model), str(clip), '--json']) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    learn = load_exported(model)                                          # the run's stats travel inside its model
    norm = learn.dls.valid.after_batch.fs[-1]
    saved = load_stats(out / 'runs' / 'fold1-minmax-seed0.stats.json')
    assert norm.mode == 'minmax' and torch.equal(norm.stats['lo'], saved['lo']) and torch.equal(norm.stats['hi'], saved['hi'])


def test_cli_train_exports_a_model_that_predict_uses_and_errors_name_the_file(fake_root, tmp_path, capsys):
    model = tmp_path / 'm.pkl'
    assert cli(['train', '--preset', 'smoke', '--fold', 'all', '--normalization', 'channel', '--data', str(fake_root),
                '--partial-data', '--cache-dir', str(tmp_path / 'cache'), '--device', 'cpu', '--out', str(model)]) == 0
    assert 'trained on every fold' in capsys.readouterr().out and model.stat().st_size > 1e6
    clips = sorted((fake_root / 'audio').iterdir())[:2]
    assert cli(['predict', str(model), *map(str, clips), '--top-k', '2']) == 0
    table = capsys.readouterr().out
    assert all(table.count(c.name) == 2 for c in clips) and 'probability' in table
    assert cli(['predict', str(model), str(clips[0]), '--json']) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r['rank'] for r in rows] == [1, 2, 3] and sum(r['probability'] for r in rows) <= 1 + 1e-6
    assert {r['class'] for r in rows} <= {'low_hum', 'whistle', 'chirp', 'noise_burst'}
    (tmp_path / 'bad.wav').write_bytes(b'not audio')
    (tmp_path / 'notes.pkl').write_text('not a model')
    for args, named in ((['predict', str(model), str(tmp_path / 'gone.wav')], 'gone.wav'),
                        (['predict', str(model), str(tmp_path / 'bad.wav')], 'bad.wav'),
                        (['predict', str(tmp_path / 'notes.pkl'), str(clips[0])], 'notes.pkl'),
                        (['predict', str(tmp_path / 'none.pkl'), str(clips[0])], 'none.pkl')):
        assert cli(args) == 2
        err = capsys.readouterr().err
        assert any(l.startswith('esc50-norm predict: error:') and named in l for l in err.splitlines()), err


@pytest.mark.parametrize('cpu,gpu', [('mel-cpu', 'mel'), ('strong-cpu', 'strong'), ('frontends-cpu', 'frontends')])
def test_the_smoke_form_of_each_cpu_grid_is_that_of_its_gpu_grid(cpu, gpu):
    "What a CPU grid changes (input size, seeds, epochs) its smoke form replaces: one end-to-end smoke study covers the pair"
    assert get_preset(cpu) != get_preset(gpu).update(name=cpu)
    assert get_preset(cpu, smoke=True).update(name=f"{gpu}-smoke") == get_preset(gpu, smoke=True)


def test_the_strong_recipes_smoke_study_is_covered_by_the_front_ends_and_mel_ones():
    "strong-cpu's smoke form is frontends-cpu's but for its normalizations, each of which frontends-cpu or mel-cpu runs"
    strong, fe, mel = (get_preset(n, smoke=True) for n in ('strong-cpu', 'frontends-cpu', 'mel-cpu'))
    assert strong.update(name=fe.name, normalizations=fe.normalizations) == fe
    assert set(strong.normalizations) <= set(fe.normalizations) | set(mel.normalizations)


@pytest.mark.slow
@pytest.mark.parametrize('preset,runs,dataset,classes', [('smoke', 6, 'esc50', 50), ('mel-cpu', 12, 'esc50', 50),
                                                         ('frontends-cpu', 14, 'esc50', 50), ('quick', 6, 'esc10', 10)])
def test_smoke_form_of_each_preset_on_real_clips(shared_esc50, tmp_path, preset, runs, dataset, classes):
    "CI's end-to-end studies: each preset in its smoke form (1 clip per class and fold, 1 epoch) on the real ESC-50 copy, and on ESC-10"
    # mel, strong and frontends: their smoke forms are those of the CPU grids (test_the_smoke_form_of_each_cpu_grid_is_that_of_its_gpu_grid);
    # strong-cpu's is frontends-cpu's recipe over normalizations this test runs (test_the_strong_recipes_smoke_study_is_covered...)
    out = tmp_path / preset
    args = ['study', '--preset', preset, '--dataset', dataset, '--data', str(shared_esc50), '--cache-dir', str(tmp_path / 'cache'),
            '--out', str(out), '--device', 'cpu'] + ([] if preset == 'smoke' else ['--smoke'])
    assert cli(args) == 0
    csv = pd.read_csv(out / 'results.csv')
    assert len(csv) == runs and set(csv.fold) == {1, 2} and (csv.n_valid == classes).all() and (csv.n_train == 4 * classes).all()
    assert (csv.dataset == dataset).all()
    text = (out / 'report.md').read_text()
    assert f'Complete grid: {runs} of {runs} runs' in text and f"Data: {dataset} ({dataset}): {40 * classes} clips, {classes} classes" in text
    for f in ('accuracy.png', 'paired.png', 'curves.png', 'summary.csv', 'paired.csv'): assert (out / f).stat().st_size > 100, f


def test_memory_stays_flat_over_runs_in_one_process(fake_root, tmp_path):
    "Each run's Learner, model, optimizer state and DataLoaders are released when it ends, not left to pile up in cycles"
    import gc
    from fastai.learner import Learner
    from esc50_norm.study.train import resident_gib
    study = Study(tiny(normalizations=('global',), seeds=(0, 1, 2, 3, 4)), tmp_path / 'res', dataset=esc50(fake_root),
                  cache_dir=tmp_path / 'cache', device='cpu')
    study.prepare()
    data, rss = study.load_data(log=lambda *_: None), []
    gc.collect()                                          # what earlier tests left
    gc.disable()                                          # no collection by chance: only what the study releases is gone
    try:
        for job in study.todo():
            row = study.run(job, data)
            rss.append(resident_gib())
            assert 0.1 < row['rss_gib'] < 64                 # recorded in the run file beside gpu_mem_peak_gib
            assert not [o for o in gc.get_objects() if type(o) is Learner], f"a Learner outlived {job.id}"   # type(): not through weak proxies
    finally: gc.enable()
    assert len(rss) == 5 and rss[-1] - rss[0] < 0.15, f"resident memory grew from {rss[0]:.3f} to {rss[-1]:.3f} GiB over 5 runs"


def test_stop_after_starts_no_run_once_the_time_is_spent_and_the_same_command_resumes(study, tmp_path):
    from esc50_norm.study.engines import InProcess
    out, logs = tmp_path / 'res', []
    study(tiny(), out, engine=InProcess(stop_after=0), log=logs.append)
    assert any('time budget spent: 2 runs not started' in l for l in logs) and not list((out / 'runs').glob('fold*.json'))
    assert len(study(tiny(), out)) == 2


def test_a_run_records_the_commit_its_code_started_from_not_the_one_checked_out_when_it_ends(fake_root, tmp_path, monkeypatch):
    "A commit made in the source tree while a run trains is not the run's: provenance is read as the run starts"
    from fastai.learner import Learner
    from esc50_norm.study import runs
    from esc50_norm.study.presets import Job
    from esc50_norm.study.train import load_study_data, train_one
    head = {'commit': 'a' * 40}
    monkeypatch.setattr(runs, '_git', lambda *args: head['commit'] + '\n' if args[0] == 'rev-parse' else '')
    fit = Learner.fit_one_cycle
    def fit_then_commit(self, *args, **kwargs):
        fit(self, *args, **kwargs)
        head['commit'] = 'b' * 40                                          # the tree moves on during the run
    monkeypatch.setattr(Learner, 'fit_one_cycle', fit_then_commit)
    preset = tiny().for_dataset(esc50(fake_root)).resolved('cpu')
    data = load_study_data(preset, esc50(fake_root), tmp_path / 'cache', device='cpu', progress=False, log=None)
    runs.provenance.cache_clear()
    try: row, _ = train_one(preset, data, Job(1, 'none', 0))
    finally: runs.provenance.cache_clear()
    assert row['git_commit'] == 'a' * 40 and row['git_dirty'] is False and head['commit'] == 'b' * 40


def test_provenance_falls_back_to_the_environment_without_git(monkeypatch):
    "On the GPU machine the tree has no .git: prepare_device.sh carries the commit in ESC50_NORM_GIT_COMMIT/DIRTY"
    from esc50_norm.study import runs
    monkeypatch.setattr(runs, '_git', lambda *a: None)
    monkeypatch.setenv('ESC50_NORM_GIT_COMMIT', 'f' * 40)
    for dirty, expected in (('1', True), ('0', False), ('', None)):
        monkeypatch.setenv('ESC50_NORM_GIT_DIRTY', dirty)
        p = runs.provenance.__wrapped__()
        assert (p['git_commit'], p['git_dirty']) == ('f' * 40, expected)


def test_the_study_loads_its_clips_once_per_process_and_decodes_them_once_per_cache(fake_root, tmp_path):
    logs = []
    make = lambda **kw: Study(tiny(**kw), tmp_path / 'res', dataset=esc50(fake_root), cache_dir=tmp_path / 'cache', device='cpu')
    first = make().load_data(log=logs.append)
    assert make().load_data(log=logs.append) is first                           # another Study object, the same data
    assert sum('decoded' in l for l in logs) == 1
    other = make(clips_per_class=2).load_data(log=logs.append)                    # another subset (here the same clips): loaded anew, decoded once
    assert other is not first and len(other.df) == len(first.df) and sum('decoded' in l for l in logs) == 1
    assert torch.equal(other.cache.x, first.cache.x)


@pytest.mark.gpu
def test_a_run_on_cuda_uses_bf16_channels_last_and_the_device_pipeline(fake_root, tmp_path):
    "Wherever a GPU is present: one smoke run with the CUDA defaults, its clips and batches on the GPU"
    out = tmp_path / 'res'
    df = run_study(Study(tiny(normalizations=('global',)), out, dataset=esc50(fake_root), cache_dir=tmp_path / 'cache',
                         device='cuda'))
    row = json.loads((out / 'runs' / 'fold1-global-seed0.json').read_text())
    cfg = json.loads(row['config'])
    assert cfg['bf16'] and cfg['channels_last'] and cfg['pipeline'] == 'device'
    assert row['gpu_mem_peak_gib'] > 0 and 0 <= df.final_accuracy[0] <= 1


@pytest.mark.parametrize('norm,front', [('pcen', None), ('pcen_learned', 'LearnedPCEN'), ('pcen_learn_smooth', 'LearnedPCEN'),
                                        ('bn_freq', 'FreqBatchNorm')])
def test_pcen_and_front_ends_train_export_and_predict_a_file_alike(fake_root, tmp_path, norm, front):
    "Fixed PCEN is a pipeline transform; learned PCEN and input BatchNorm are modules inside the model, exported with it"
    from fastai.learner import Learner
    from esc50_norm import load_exported
    from esc50_norm.study.pipelines import fold_dataloaders
    from esc50_norm.study.train import load_study_data, model_for
    ds = esc50(fake_root)
    p = tiny(normalizations=(norm,)).resolved('cpu').for_dataset(ds)
    data = load_study_data(p, ds, tmp_path / 'cache', 'cpu', progress=False)
    dls = fold_dataloaders(data.df, 1, norm, p.spec, bs=4, cache=data.cache, device='cpu')
    learn = Learner(dls, model_for(p.arm(norm), len(dls.vocab)))
    learn.fit(1, 1e-2)
    x, _ = dls.train.one_batch()
    if norm == 'pcen': assert x.normalized == 'PCEN' and (x >= 0).all()           # PCEN's output, not dB
    else: assert type(learn.model[0]).__name__ == front and not getattr(x, 'normalized', False)   # normalized in the model
    clip = ds.path(data.df.file[0])
    before = learn.predict(clip)[2]
    learn.export(tmp_path / 'm.pkl')
    loaded = load_exported(tmp_path / 'm.pkl')
    assert torch.allclose(loaded.predict(clip)[2], before, atol=1e-5)
    if front: assert type(loaded.model[0]).__name__ == front and all(
        torch.equal(a, b) for a, b in zip(loaded.model[0].state_dict().values(), learn.model[0].state_dict().values()))
    if norm == 'pcen_learn_smooth': assert loaded.model[0].learn == ('smooth_coef',)


def test_a_run_file_holds_the_values_its_learned_pcen_ended_with(study, tmp_path):
    """frontend_params: what the trained front end uses, per band; only the parameters it learns leave librosa's start;
    the report's table of them is those run files"""
    from esc50_norm.pcen import smoothing_coef
    out = tmp_path / 'res'
    study(tiny(normalizations=('pcen_learn_compress', 'global', 'pcen_frozen_bn')), out)
    row = json.loads((out / 'runs' / 'fold1-pcen_learn_compress-seed0.json').read_text())
    p = {k: torch.tensor(v) for k, v in json.loads(row['frontend_params']).items()}
    n_mels = get_preset('smoke').spec.n_freq
    assert sorted(p) == ['alpha', 'delta', 'root', 'smooth_coef'] and all(v.shape == (n_mels,) for v in p.values())
    init = dict(alpha=0.98, delta=2.0, root=2.0, smooth_coef=smoothing_coef(16000, get_preset('smoke').spec.hop))
    for k in ('alpha', 'delta', 'root'): assert not torch.allclose(p[k], torch.tensor(init[k])), k
    assert torch.allclose(p['smooth_coef'], torch.tensor(init['smooth_coef']), rtol=1e-5)
    assert 'frontend_params' not in json.loads((out / 'runs' / 'fold1-global-seed0.json').read_text())
    section = write_report(out).read_text().split('## PCEN front ends: where their parameters ended')[1]
    rows = lambda name: [[c.strip() for c in line.strip('|').split('|')] for line in section.split('\n## ')[0].splitlines()
                         if line.startswith('|') and name in line]
    table = rows('pcen_learn_compress')
    assert [r[1] for r in table] == ['alpha', 'delta', 'root', 'smooth_coef']
    for n, k, start, mean, lo, hi, moved, runs in table:
        v = p[k].double()
        far = (~torch.isclose(v, torch.tensor(init[k], dtype=v.dtype), rtol=1e-5, atol=0)).double().mean()
        assert (n, int(runs)) == ('pcen_learn_compress', 1)
        assert [float(x) for x in (start, mean, lo, hi, moved)] == pytest.approx(
            [init[k], *(float(f(v)) for f in (torch.mean, torch.min, torch.max)), float(far)], abs=6e-5), k
    assert float(table[-1][6]) == 0 and float(table[2][6]) > 0           # the smoother stayed; the root moved
    frozen = rows('pcen_frozen_bn')                                      # PCEN inside a front end of two modules
    assert [r[1] for r in frozen] == ['alpha', 'delta', 'root', 'smooth_coef'] and all(float(r[6]) == 0 for r in frozen)


def test_frontends_preset_contrasts_each_against_global():
    from esc50_norm.study.report import contrasts
    p = get_preset('frontends')
    assert (p.epochs, p.lr, p.mixup, p.augment, p.spec) == (get_preset('strong').epochs, 2e-3, 0.4, get_preset('strong').augment, get_preset('strong').spec)
    assert contrasts(p.normalizations) == [('channel', 'global'), ('instance', 'global'), ('pcen', 'global'),
                                           ('pcen_learned', 'global'), ('pcen_learned', 'pcen'),
                                           ('pcen_learned', 'pcen_frozen'), ('bn_freq', 'global'),
                                           ('pcen_frozen', 'global'), ('pcen_frozen', 'pcen')]
    assert len(p.for_dataset(get_dataset()).jobs()) == 5 * 7 * 5                     # folds x normalizations x seeds


@pytest.mark.parametrize('name,big', [('strong-cpu', 'strong'), ('frontends-cpu', 'frontends')])
def test_cpu_forms_of_the_strong_recipe_are_it_on_mel_cpus_input(name, big):
    "strong-cpu and frontends-cpu: the same augmentation, mixup, lr and normalizations as on the GPU, on 1x64x157, 1 seed"
    p, g, esc50 = get_preset(name), get_preset(big), get_dataset()
    assert (p.lr, p.mixup, p.augment, p.normalizations) == (g.lr, g.mixup, g.augment, g.normalizations)
    assert p.spec == get_preset('mel-cpu').spec and (p.spec.n_freq, p.spec.n_frames(80000)) == (64, 157)
    assert p.seeds == (0,) and p.epochs == 60 and p.spec != g.spec
    assert len(p.for_dataset(esc50).jobs()) == 5 * len(g.normalizations)                # frontends-cpu: 35 runs


@pytest.mark.slow
def test_a_folder_says_which_data_it_came_from_and_refuses_other_data(shared_esc50, tmp_path):
    "results/quick-esc10-cpu was made on ESC-10 of the shared copy: it resumes with nothing to do on ESC-10, and refuses ESC-50"
    out = _copy('quick-esc10-cpu', tmp_path)
    recorded = json.loads((out / 'preset.json').read_text())['dataset']
    esc10 = get_dataset('esc10', data=shared_esc50)
    assert (recorded['kind'], recorded['clips'], recorded['classes'], recorded['fingerprint']) == ('esc10', 400, 10, esc10.fingerprint())
    row = json.loads((out / 'runs' / 'fold3-global-seed1.json').read_text())
    assert (row['dataset'], row['dataset_kind'], row['dataset_fingerprint']) == ('esc10', 'esc10', esc10.fingerprint())
    fp32 = get_preset('quick', folds=(1, 2, 3, 4, 5), **_FLAGS['fp32'])               # as it was made
    s = Study(fp32, out, dataset=esc10, device='cpu')
    s.prepare()
    assert s.todo() == []
    with pytest.raises(ValueError, match=r"holds runs of dataset esc10 \(esc10, fingerprint [0-9a-f]{12}\), not of esc50"):
        Study(fp32, out, dataset=get_dataset(data=shared_esc50), device='cpu').prepare()


def test_same_dataset_compares_the_fingerprints_where_both_are_known_else_the_kind():
    "One fingerprint is one set of (file, label, fold) rows, however they were read: a folder per class or their CSV"
    esc = dict(kind='esc50', name='esc50', fingerprint='a' * 12)
    assert same_dataset(dict(kind='folders', name='mine', fingerprint='c' * 12),
                        dict(kind='csv', name='labels', fingerprint='c' * 12))
    assert same_dataset(esc, {**esc, 'name': 'my copy'}) and same_dataset(None, esc)     # None: before datasets were recorded
    assert not same_dataset(esc, {**esc, 'fingerprint': 'b' * 12})
    assert not same_dataset(None, dict(kind='esc10', name='esc10', fingerprint=None))


def test_a_folder_from_before_datasets_were_recorded_refuses_a_partial_copy(fake_root, tmp_path):
    "results/quick-cpu holds full ESC-50 runs; a --partial-data copy of ESC-50 shape must not be mixed into it"
    out = Path(shutil.copytree(RESULTS / 'quick-cpu', tmp_path / 'quick-cpu'))
    assert json.loads((out / 'preset.json').read_text()).get('dataset') is None
    before = (out / 'preset.json').read_text()
    with pytest.raises(ValueError, match='recorded before datasets were, so it holds runs of the full ESC-50'):
        Study(get_preset('quick'), out, dataset=esc50(fake_root), device='cpu').prepare()
    assert (out / 'preset.json').read_text() == before


def test_clips_per_second_count_the_training_phase_only():
    "train_clips_per_s divides by the time of the training phases, not of whole epochs (validation included)"
    import time
    from esc50_norm.study.train import EpochTimer
    timer = EpochTimer()
    timer.before_fit()
    for _ in range(2):
        timer.before_epoch(); timer.before_train(); time.sleep(0.02); timer.after_train()
        time.sleep(0.1); timer.after_epoch()                               # validation
    assert all(0.02 <= t < 0.08 for t in timer.train_times) and all(t >= 0.12 for t in timer.times)
