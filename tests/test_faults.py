"Safe to leave running: bad values refused before any work, nothing hangs, damaged files named, non-finite numbers never a result"
import json
import shutil
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from esc50_norm import SpecNormalize
from esc50_norm.configs import Decoding
from esc50_norm.study import get_dataset, get_preset
from esc50_norm.study.engines import get_engine
from esc50_norm.study.normalizations import get_normalization
from esc50_norm.study.cli import main as cli
from esc50_norm.study.demo import make_fake_esc50

CLI = str(Path(sys.executable).parent / 'esc50-norm')


@pytest.fixture
def args(fake_root, tmp_path):
    "The CLI arguments of a one-run smoke study on the generated folder, writing into tmp_path/res"
    def make(*extra, out=None, norms='none'):
        return ['study', '--preset', 'smoke', '--folds', '1', '--normalizations', norms, '--data', str(fake_root), '--partial-data',
                '--cache-dir', str(tmp_path / 'cache'), '--out', str(out or tmp_path / 'res'), '--device', 'cpu', *extra]
    return make


def run_cli(argv, timeout=120, **env) -> subprocess.CompletedProcess:
    "`esc50-norm ARGV` in its own process, killed (and the test failed) if it runs past `timeout`: nothing may hang"
    return subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=timeout, env={**os.environ, 'MPLBACKEND': 'Agg', **env})


def err(capsys) -> str: return capsys.readouterr().err


RESULTS = Path(__file__).resolve().parents[1] / 'results'


def _status(argv) -> int:
    "The command's exit status, whether the command refuses (2) or argparse does (SystemExit 2)"
    try: return cli(argv)
    except SystemExit as e: return e.code


@pytest.mark.parametrize('option,value,named', [
    ('--epochs', '0', 'epochs must be at least 1, got 0'), ('--bs', '0', 'bs must be at least 1, got 0'),
    ('--clips-per-class', '0', 'clips_per_class must be at least 1'),
    ('--lr', '0', 'lr must be a positive number, got 0.0'), ('--lr', '-1e-3', 'lr must be a positive number, got -0.001'),
    ('--workers', '0', '--workers must be at least 1'), ('--workers', '-1', '--workers must be at least 1'),
    ('--gpus', '0', '--gpus 0 needs CUDA, but this study runs on cpu'),
    # argparse's refusals, in words of the option (not the name of a parsing function)
    ('--seeds', '0,-1', "argument --seeds: takes whole numbers of at least 0 separated by commas, such as 0,1,2; got '0,-1'"),
    ('--folds', '1,,2', "argument --folds: takes whole numbers of at least 0 separated by commas, such as 0,1,2; got '1,,2'"),
    ('--stop-after', '-5', "argument --stop-after: takes a number of seconds of at least 0, got '-5'"),
    ('--stop-after', 'nan', "argument --stop-after: takes a number of seconds of at least 0, got 'nan'"),
    ('--retries', '-1', "argument --retries: must be a whole number of at least 0, got '-1'")])
def test_impossible_values_are_refused_before_anything_is_written(args, tmp_path, capsys, option, value, named):
    assert _status(args(f"{option}={value}")) == 2
    assert named in err(capsys) and not (tmp_path / 'res').exists()


def test_a_corrected_command_after_a_refused_one_is_not_locked_out(args, tmp_path, capsys):
    "A refused --epochs 0 wrote no preset.json, so the corrected command is not taken for 'another recipe'"
    assert cli(args('--epochs', '0')) == 2
    assert cli(args('--no-report')) == 0 and (tmp_path / 'res' / 'runs' / 'fold1-none-seed0.json').exists()


def test_out_that_is_a_file_and_options_an_engine_does_not_take_are_named(args, tmp_path, capsys):
    (tmp_path / 'afile').write_text('x')
    assert cli(args(out=tmp_path / 'afile')) == 2
    assert f"--out {tmp_path / 'afile'} is a file" in err(capsys)
    assert cli(args('--engine', 'ray', '--stop-after', '5')) == 2
    assert '--engine ray does not take --stop-after' in err(capsys)
    assert cli(args('--address', 'head:6379')) == 2
    assert '--engine local does not take --address' in err(capsys)
    assert cli(args('--engine', 'dask')) == 2 and "unknown engine 'dask'" in err(capsys)
    assert not (tmp_path / 'res').exists()


@pytest.mark.parametrize('look_up,message', [
    (lambda: get_preset('quik'), "unknown preset 'quik' (did you mean 'quick'?); known: ['blog'"),
    (lambda: get_preset('quick', normalizations=['globl', 'zzz']), "unknown normalizations ['globl', 'zzz'] (did you mean 'global'?)"),
    (lambda: get_normalization('bn-freq'), "unknown normalization 'bn-freq' (did you mean 'bn_freq'?)"),
    (lambda: SpecNormalize('chanel'), "unknown normalization mode 'chanel' (did you mean 'channel'?); known: ['global'"),
    (lambda: get_preset('quick', pipeline='cache'), "unknown pipeline 'cache' (did you mean 'cached'?)"),
    (lambda: get_engine('rey'), "unknown engine 'rey' (did you mean 'ray'?)"),
    (lambda: get_dataset('folder:/x'), "unknown dataset kind 'folder' in 'folder:/x' (did you mean 'folders'?)"),
    (lambda: get_preset('zzzz'), "unknown preset 'zzzz'; known:"),                  # nothing close: no guess
])
def test_a_misspelt_name_is_told_the_closest_known_one(look_up, message):
    with pytest.raises(ValueError) as e: look_up()
    assert message in str(e.value)


def test_train_with_zero_epochs_leaves_no_model_and_predict_top_k_zero_is_refused(fake_root, tmp_path, capsys):
    model = tmp_path / 'm.pkl'
    assert cli(['train', '--preset', 'smoke', '--epochs', '0', '--data', str(fake_root), '--partial-data', '--device', 'cpu',
                '--out', str(model)]) == 2
    assert 'epochs must be at least 1' in err(capsys) and not model.exists()
    for bad, named in ((['--normalization', 'spectral'], "unknown normalization 'spectral'"), (['--fold', '7'], 'fold(s) [7] do not exist')):
        assert cli(['train', '--preset', 'smoke', *bad, '--data', str(fake_root), '--partial-data', '--device', 'cpu', '--out', str(model)]) == 2
        assert named in err(capsys) and not model.exists()
    with pytest.raises(SystemExit): cli(['predict', str(model), 'x.wav', '--top-k', '0'])
    assert 'must be a whole number of at least 1' in err(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
@pytest.mark.parametrize('workers', [[], ['--workers', '2']])
def test_cuda_on_a_machine_without_a_gpu_is_an_error_at_once(args, tmp_path, workers):
    argv = [a if a != 'cpu' else 'cuda' for a in args(*workers)]
    t0 = time.monotonic()
    res = run_cli(argv, timeout=60)
    assert res.returncode == 2 and 'sees no CUDA GPU' in res.stderr and time.monotonic() - t0 < 60
    assert not (tmp_path / 'res').exists()


def _pid_alive(pid: int) -> bool:
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    return True


@pytest.mark.slow
def test_workers_exit_when_their_study_process_is_killed(args, tmp_path):
    "SIGKILL the parent of --workers 2: its workers finish the run in hand, see that nobody is there, and exit"
    out = tmp_path / 'res'
    argv = args('--workers', '2', '--seeds', '0,1,2,3,4,5', '--no-report', out=out)
    parent = subprocess.Popen([CLI, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, 'MPLBACKEND': 'Agg'})
    workers, end = set(), time.monotonic() + 120
    try:
        while time.monotonic() < end and len(workers) < 2:
            for note in (out / 'runs').glob('*.running.json') if (out / 'runs').exists() else []:
                try: workers.add(json.loads(note.read_text())['pid'])
                except (OSError, ValueError): pass
            time.sleep(0.1)
        assert workers, "no worker was seen starting a run"
    finally: parent.send_signal(signal.SIGKILL); parent.wait()
    end = time.monotonic() + 60
    while time.monotonic() < end and any(map(_pid_alive, workers)): time.sleep(0.5)
    assert not [p for p in workers if _pid_alive(p)], "workers outlived their killed parent"


@pytest.mark.slow
def test_an_unreachable_ray_head_is_named_within_seconds(args, tmp_path):
    t0 = time.monotonic()
    res = run_cli(args('--engine', 'ray', '--address', '127.0.0.1:9'), timeout=90)
    assert res.returncode == 2 and 'cannot reach the Ray head at 127.0.0.1:9' in res.stderr, res.stderr
    assert time.monotonic() - t0 < 90 and not (tmp_path / 'res').exists()


# --- non-finite numbers ---------------------------------------------------------------------------------------------

def _copy_root(fake_root, tmp_path) -> Path:
    import shutil
    return Path(shutil.copytree(fake_root, tmp_path / 'esc50'))


def test_a_clip_of_nan_samples_is_named_before_any_run(fake_root, tmp_path, capsys):
    root = _copy_root(fake_root, tmp_path)
    clip = sorted((root / 'audio').iterdir())[3]
    sf.write(clip, np.full(8000, np.nan, dtype='float32'), 16000, subtype='FLOAT')
    argv = ['study', '--preset', 'smoke', '--folds', '1', '--normalizations', 'global', '--data', str(root), '--partial-data',
            '--cache-dir', str(tmp_path / 'cache'), '--out', str(tmp_path / 'res'), '--device', 'cpu']
    assert cli(argv) == 2
    e = err(capsys)
    assert clip.name in e and 'NaN or inf' in e
    assert not list((tmp_path / 'res' / 'runs').glob('*.json'))


def test_a_run_whose_loss_or_stats_become_non_finite_is_failed_not_finished(fake_root, tmp_path, capsys):
    "A finite clip so loud that its power spectrum overflows: 'none' trains on inf and its loss is NaN; 'global' learns inf stats"
    root = _copy_root(fake_root, tmp_path)
    df = pd.read_csv(root / 'meta' / 'esc50.csv')
    clip = root / 'audio' / df[df.fold == 2].filename.iloc[0]
    sf.write(clip, (1e30 * np.sin(np.arange(16000) / 5)).astype('float32'), 16000, subtype='FLOAT')
    argv = ['study', '--preset', 'smoke', '--folds', '1', '--normalizations', 'none,global_nowave', '--data', str(root),
            '--partial-data', '--cache-dir', str(tmp_path / 'cache'), '--out', str(tmp_path / 'res'), '--device', 'cpu']
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); rc = cli(argv)
    out = capsys.readouterr()
    assert rc == 1 and 'fold1-none-seed0 FAILED' in out.out and 'fold1-global_nowave-seed0 FAILED' in out.out
    assert 'NaN or infinite' in out.out
    assert not list((tmp_path / 'res' / 'runs').glob('fold*.json'))               # no run file, no .running.json
    report = (tmp_path / 'res' / 'report.md').read_text()
    assert 'Incomplete grid: 0 of 2 runs finished' in report


# --- damaged files ---------------------------------------------------------------------------------------------------

@pytest.fixture
def finished(args, tmp_path, capsys):
    "A results folder of two finished runs"
    assert cli(args(norms='none,global')) == 0
    capsys.readouterr()
    return tmp_path / 'res'


def test_a_truncated_run_file_is_named_reported_and_run_again(finished, args, capsys):
    f = finished / 'runs' / 'fold1-global-seed0.json'
    f.write_text(f.read_text()[:100])
    with pytest.warns(UserWarning, match=f"run file {f} is damaged"): assert cli(['report', str(finished)]) == 0
    text = (finished / 'report.md').read_text()
    assert 'Damaged run files, not counted (the study runs them again): fold1-global-seed0.json' in text
    assert 'Incomplete grid: 1 of 2 runs finished' in text
    with pytest.warns(UserWarning, match='fold1-global-seed0.json is damaged'): assert cli(['compare', str(finished), str(finished)]) == 0
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); assert cli(args(norms='none,global')) == 0
    assert '1 run to do' in capsys.readouterr().out
    assert json.loads(f.read_text())['normalization'] == 'global'


def test_the_command_prints_a_warning_once_in_one_line(finished):
    "A damaged run file, read twice by `report` (report.md and the printed summary): one line, not Python's two"
    f = finished / 'runs' / 'fold1-global-seed0.json'
    f.write_text(f.read_text()[:100])
    res = run_cli(['report', str(finished)])
    assert res.returncode == 0 and res.stderr.count(f"esc50-norm report: warning: run file {f} is damaged") == 1
    assert 'UserWarning' not in res.stderr and 'warnings.warn' not in res.stderr


def test_a_truncated_history_is_named_and_the_report_writes_nothing(finished, capsys):
    h = finished / 'runs' / 'fold1-none-seed0.history.csv'
    h.write_text(h.read_text()[:20])
    before = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()}
    assert cli(['report', str(finished)]) == 2
    assert f"history file {h} is damaged" in err(capsys)
    assert {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()} == before     # all or none: none


def test_a_truncated_preset_file_is_named(finished, args, capsys):
    p = finished / 'preset.json'
    p.write_text(p.read_text()[:50])
    for argv in (['report', str(finished)], args(norms='none,global')):
        assert cli(argv) == 2
        assert f"{p} is damaged" in err(capsys)


def test_a_damaged_clip_cache_is_rebuilt_with_a_warning_and_stale_temporaries_removed(fake_root, tmp_path):
    from esc50_norm.study.cache import load_or_build_cache
    files = sorted(p.name for p in (fake_root / 'audio').iterdir())[:4]
    first = load_or_build_cache(fake_root / 'audio', files, tmp_path, decoding=Decoding(duration=1.0), progress=False)
    cache_file, = tmp_path.glob('clips-*.pt')
    cache_file.write_bytes(cache_file.read_bytes()[:1000])
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True).stdout.strip()
    import socket
    stale = tmp_path / f".{cache_file.name}.{socket.gethostname()}.{dead}.0123abcd.tmp-atomic"
    stale.write_bytes(b'half a cache')
    with pytest.warns(UserWarning, match=f"clip cache {cache_file} is damaged"):
        again = load_or_build_cache(fake_root / 'audio', files, tmp_path, decoding=Decoding(duration=1.0), progress=False)
    assert torch.equal(again.x, first.x) and not stale.exists()
    assert load_or_build_cache(fake_root / 'audio', files, tmp_path, decoding=Decoding(duration=1.0), progress=False).filenames == files


def test_a_batch_larger_than_the_training_folds_is_refused_once_before_any_work(args, tmp_path, capsys):
    "16 training clips and --bs 64: no batch would be left once the last incomplete one is dropped: said once"
    assert cli(args('--bs', '64', norms='none,global')) == 2
    out = capsys.readouterr()
    assert out.err.count('leaves 16 clips to train on, fewer than a batch of 64') == 1
    assert 'Traceback' not in out.err + out.out
    assert not (tmp_path / 'res').exists()


@pytest.mark.parametrize('value', ['NaN', '"high"', '1.5', 'true'])
def test_a_run_file_with_an_impossible_accuracy_is_damaged_named_and_run_again(finished, args, capsys, value):
    from esc50_norm.study.runs import damaged_runs, read_results
    f = finished / 'runs' / 'fold1-global-seed0.json'
    row = json.loads(f.read_text())
    good = f'"final_accuracy": {json.dumps(row["final_accuracy"])}'
    f.write_text(json.dumps(row).replace(good, f'"final_accuracy": {value}'))
    assert f in damaged_runs(finished) and 'impossible values' in damaged_runs(finished)[f]
    with pytest.warns(UserWarning, match=f"run file {f} is damaged: impossible values"):
        assert list(read_results(finished).normalization) == ['none']
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); assert cli(args(norms='none,global')) == 0
    assert '1 run to do' in capsys.readouterr().out and 0 <= json.loads(f.read_text())['final_accuracy'] <= 1


def test_a_csv_with_one_fold_is_refused_once_before_any_work_and_train_names_only_its_fold(tmp_path, capsys):
    from fake_collections import make_csv
    csv = make_csv(tmp_path / 'one' / 'clips.csv', {'dog': 3, 'rain': 3}, folds=1)
    common = ['--preset', 'smoke', '--bs', '2',
              '--dataset', str(csv), '--columns', 'file=path,label=category,fold=split',
              '--cache-dir', str(tmp_path / 'cache'), '--device', 'cpu']
    assert cli(['study', '--folds', '1', *common, '--out', str(tmp_path / 'res')]) == 2
    e = err(capsys)
    assert e.count('has only fold 1: validating on it leaves no clip to train on') == 1 and 'Traceback' not in e
    assert not (tmp_path / 'res').exists()
    assert cli(['train', '--fold', '1', *common, '--out', str(tmp_path / 'm.pkl')]) == 2
    e = err(capsys)
    assert 'has only fold 1' in e and 'fold(s) [2]' not in e and not (tmp_path / 'm.pkl').exists()
    assert cli(['train', '--fold', 'all', *common, '--out', str(tmp_path / 'm.pkl')]) == 0      # every clip trains: no fold asked
    assert (tmp_path / 'm.pkl').exists()


def test_a_cache_file_of_other_clips_is_damaged_named_and_rebuilt(fake_root, tmp_path):
    from esc50_norm.study.cache import load_or_build_cache
    files = sorted(p.name for p in (fake_root / 'audio').iterdir())[:4]
    first = load_or_build_cache(fake_root / 'audio', files, tmp_path, decoding=Decoding(duration=1.0), progress=False)
    cache_file, = tmp_path.glob('clips-*.pt')
    torch.save(dict(x=first.x[:3], filenames=files[:3], sr=16000, settings=first.settings,
                    info=first.info[:3].to_dict(orient='list')), cache_file)
    with pytest.warns(UserWarning, match=rf"clip cache {cache_file} is damaged \(it lists 3 clips, not the 4 expected"):
        again = load_or_build_cache(fake_root / 'audio', files, tmp_path, decoding=Decoding(duration=1.0), progress=False)
    assert torch.equal(again.x, first.x) and len(torch.load(cache_file, weights_only=True)['filenames']) == 4


def test_ctrl_c_prints_one_line_of_what_finished_and_how_to_resume(args, tmp_path, capsys, monkeypatch):
    from esc50_norm.study import engines
    def interrupted(self, study, todo, log=print): raise KeyboardInterrupt
    monkeypatch.setattr(engines.InProcess, 'run', interrupted)
    try: rc = cli(args(norms='none,global'))
    except KeyboardInterrupt: pytest.fail("Ctrl-C escaped from the CLI as a traceback")
    e = err(capsys)
    assert rc == 130 and e.strip().splitlines() == [
        f"esc50-norm study: interrupted; 0 of 2 runs of this shard finished in {tmp_path / 'res'}; "
        "the same command resumes the others"]


def _as_in_a_terminal():
    "SIGINT at its default in a child, as a shell with job control leaves it (a background job of a plain shell ignores it)"
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_worker_started_by_the_local_engine_ignores_ctrl_c():
    "The study process handles Ctrl-C and stops its workers: they print no KeyboardInterrupt traceback of their own"
    from esc50_norm.study.engines import _no_sigint
    before = signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a terminal, however the suite was started
    try:
        with _no_sigint():
            code = 'import os, signal; os.kill(os.getpid(), signal.SIGINT); print("still here")'
            res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
        assert res.stdout.strip() == 'still here' and 'KeyboardInterrupt' not in res.stderr
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally: signal.signal(signal.SIGINT, before)


@pytest.mark.slow
def test_ctrl_c_on_a_study_with_workers_prints_one_line_and_no_tracebacks(args, tmp_path):
    out = tmp_path / 'res'
    argv = args('--workers', '2', '--seeds', '0,1,2,3', '--no-report', out=out)
    proc = subprocess.Popen([CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, 'MPLBACKEND': 'Agg'}, start_new_session=True, preexec_fn=_as_in_a_terminal)
    end = time.monotonic() + 120
    while time.monotonic() < end and not list(out.glob('runs/*.running.json')): time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)                                  # as Ctrl-C does: the whole process group
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 130 and 'Traceback' not in stderr + stdout, stderr
    lines = [l for l in stderr.splitlines() if l.strip() and 'Warning' not in l and 'warnings.warn(' not in l]
    assert len(lines) == 1 and 'interrupted; 0 of 4 runs' in lines[0] and 'the same command resumes' in lines[0], stderr


def test_train_out_paths_are_named_before_any_work(fake_root, tmp_path, capsys):
    (tmp_path / 'afile').write_text('x')
    base = ['train', '--preset', 'smoke', '--data', str(fake_root), '--partial-data', '--device', 'cpu', '--cache-dir',
            str(tmp_path / 'cache'), '--out']
    for out, named in ((tmp_path, f"--out {tmp_path} is a folder"),
                       (tmp_path / 'afile' / 'm.pkl', f"{tmp_path / 'afile'} is a file")):
        t0 = time.monotonic()
        assert cli([*base, str(out)]) == 2
        e = err(capsys)
        assert named in e and 'File exists' not in e and time.monotonic() - t0 < 10, e
    assert not (tmp_path / 'cache').exists()                            # nothing decoded, nothing trained


def test_a_folder_that_cannot_be_written_is_named_not_the_temporary_file(tmp_path, monkeypatch):
    from esc50_norm.atomic import write_atomic
    def denied(self, *a, **k): raise PermissionError(13, 'Permission denied', str(self))
    monkeypatch.setattr(Path, 'write_text', denied)
    with pytest.raises(PermissionError) as e: write_atomic(tmp_path / 'preset.json', '{}')
    assert f"cannot write preset.json into {tmp_path}: Permission denied" in str(e.value)
    assert 'tmp-atomic' not in str(e.value)


def test_fold_seed_and_a_model_folder_are_named(tmp_path, capsys):
    from fake_collections import make_folders
    from esc50_norm.study.datasets import DatasetError, get_dataset
    tree = make_folders(tmp_path / 'tree', {'dog': 3, 'rain': 3})
    with pytest.raises(SystemExit): cli(['study', '--dataset', str(tree), '--fold-seed', '-1'])
    assert "argument --fold-seed: must be a whole number of at least 0, got '-1'" in err(capsys)
    with pytest.raises(DatasetError, match='fold_seed must be a whole number of at least 0, got -1'):
        get_dataset(str(tree), k_folds=2, fold_seed=-1).meta()
    assert cli(['predict', str(tmp_path), 'x.wav']) == 2
    assert f"model file {tmp_path} is a folder, not a file written by Learner.export" in err(capsys)


def test_train_never_writes_its_model_over_a_file_that_is_not_one(fake_root, tmp_path, capsys):
    "--out naming the labels CSV or a note is refused before any work and the file is left as it was"
    note = tmp_path / 'notes.txt'
    note.write_text('keep me')
    assert cli(['train', '--preset', 'smoke', '--data', str(fake_root), '--partial-data', '--device', 'cpu',
                '--out', str(note)]) == 2
    assert f"--out {note} exists and is not a model file" in err(capsys) and note.read_text() == 'keep me'


def test_baseline_into_a_results_folder_checks_its_dataset_before_any_work(fake_root, tmp_path, capsys):
    "A folder of runs of one's own collection: no ESC-50 is fetched for it, nor another dataset's baseline written"
    out = Path(shutil.copytree(RESULTS / 'quick-cpu', tmp_path / 'mine-runs', ignore=shutil.ignore_patterns('runs')))
    preset = json.loads((out / 'preset.json').read_text())
    mine = dict(kind='folders', name='mine', root='/data/mine', fingerprint='c' * 12)
    (out / 'preset.json').write_text(json.dumps({**preset, 'dataset': mine}))
    (out / 'baseline.json').unlink(missing_ok=True)
    assert cli(['baseline', '--out', str(out)]) == 2
    assert f"{out} holds runs of dataset mine (folders at /data/mine): give it as --dataset" in err(capsys)
    assert cli(['baseline', '--out', str(out), '--data', str(fake_root), '--partial-data']) == 2
    said = err(capsys)
    assert f"{out} holds runs of dataset mine (folders, fingerprint {'c' * 12}), not of esc50" in said
    assert 'give --dataset the one its runs came from' in said and not (out / 'baseline.json').exists()
