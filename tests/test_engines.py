"Engines: worker processes and Ray give the run files of one process; a killed worker's run is retried and written once"
import json
import os
import signal
import threading
import time

import pandas as pd
import pytest

from esc50_norm.study.datasets import get_dataset
from esc50_norm.study.engines import InProcess, Local, Ray, get_engine, run_study
from esc50_norm.study.presets import get_preset
from esc50_norm.study.study import Study

GRID = dict(folds=(1,), normalizations=('none', 'global', 'channel'), seeds=(0,))
FP32 = dict(bf16=False, channels_last=False)
"Engines are compared in fp32: workers run with other thread counts, which bf16 rounding turns into visible differences"


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory): return tmp_path_factory.mktemp('cache')


def make_study(root, cache_dir, out, **grid) -> Study:
    return Study(get_preset('smoke', **{**GRID, **FP32, **grid}), out, dataset=get_dataset(data=root, full=False), cache_dir=cache_dir, device='cpu')


@pytest.fixture(scope='module')
def one_process(fake_root, cache_dir, tmp_path_factory):
    "The reference: the grid run in this process"
    out = tmp_path_factory.mktemp('one') / 'res'
    run_study(make_study(fake_root, cache_dir, out), engine=InProcess(), log=lambda *a: None)
    return out


def same_runs(a, b):
    "The two folders hold the same finished runs with the same results (CPU thread counts differ: 1e-5)"
    ra, rb = (pd.read_csv(d / 'results.csv').set_index(['fold', 'normalization', 'seed']) for d in (a, b))
    assert list(ra.index) == list(rb.index)
    assert (ra.final_accuracy == rb.final_accuracy).all()
    assert ra.final_valid_loss.to_numpy() == pytest.approx(rb.final_valid_loss.to_numpy(), rel=1e-5)
    names = lambda d: sorted(p.name for p in (d / 'runs').iterdir())
    assert names(a) == names(b)


def test_get_engine_runs_one_worker_here_and_names_unknown_engines():
    assert isinstance(get_engine('local', workers=1, device='cpu'), InProcess)
    assert isinstance(get_engine('local', workers=2, device='cpu'), Local)
    assert isinstance(get_engine('local', device='cpu'), InProcess)            # the CPU default: one process
    with pytest.raises(ValueError, match="'dask'"): get_engine('dask')


def _cli(root, cache_dir, out, *engine_args) -> str:
    "`esc50-norm study` of the grid with the given engine options; what it printed"
    import contextlib, io
    from esc50_norm.study.cli import main
    args = ['study', '--preset', 'smoke', '--folds', '1', '--normalizations', ','.join(GRID['normalizations']), '--seeds', '0',
            '--data', str(root), '--partial-data', '--cache-dir', str(cache_dir), '--out', str(out), '--device', 'cpu',
            '--no-report', '--fp32', *engine_args]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): assert main(args) == 0
    return buf.getvalue()


def test_two_worker_processes_give_the_run_files_of_one(fake_root, cache_dir, one_process, tmp_path, capfd):
    out = tmp_path / 'res'
    before = os.environ.get('PYTHONWARNINGS')
    printed = _cli(fake_root, cache_dir, out, '--workers', '2')
    same_runs(one_process, out)
    assert '2 worker processes: cpu worker 1, cpu worker 2' in printed
    assert 'torch.jit.script' not in capfd.readouterr().err        # fastai's import warning, silenced in the workers too
    assert os.environ.get('PYTHONWARNINGS') == before               # and the command leaves the variable as it was
    assert len([l for l in printed.splitlines() if l.startswith('[') and 'accuracy' in l]) == 3   # a line per finished run
    rows = [json.loads((out / 'runs' / f"fold1-{n}-seed0.json").read_text()) for n in GRID['normalizations']]
    assert {r['engine'] for r in rows} == {'local'} and {r['attempt'] for r in rows} == {1}


def test_a_failed_run_is_reported_and_the_others_go_on(fake_root, cache_dir, tmp_path):
    logs = []
    study = make_study(fake_root, cache_dir, tmp_path / 'res')
    study.prepare()
    failed = Local(workers=2).run(study, [(1, 'none', 0), (9, 'none', 0), (1, 'global', 0)], logs.append)
    assert [tuple(j) for j in failed] == [(9, 'none', 0)]
    assert any('fold9-none-seed0 FAILED' in l and 'fold 9 does not exist' in l for l in logs)
    assert (tmp_path / 'res' / 'runs' / 'fold1-global-seed0.json').exists()
    assert not list((tmp_path / 'res' / 'runs').glob('*.running.json'))         # a run that failed is not 'in progress'


def _kill_first_run(out, killed: list, timeout: float = 300):
    "Wait for a run to start (its note names the worker's pid; Ray may take minutes on a busy machine), then kill it"
    end = time.time() + timeout
    while time.time() < end and not killed:
        for note in (out / 'runs').glob('*.running.json'):
            try: pid = json.loads(note.read_text())['pid']
            except (ValueError, OSError): continue
            os.kill(pid, signal.SIGKILL)
            killed.append(note.name.removesuffix('.running.json'))
            return
        time.sleep(0.05)


@pytest.mark.parametrize('engine', ['local', pytest.param('ray', marks=pytest.mark.slow)])
def test_a_killed_worker_is_retried_and_its_run_written_once(engine, fake_root, cache_dir, one_process, tmp_path):
    out, logs, killed = tmp_path / 'res', [], []
    study = make_study(fake_root, cache_dir, out)
    study.prepare()
    killer = threading.Thread(target=_kill_first_run, args=(out, killed))
    killer.start()
    eng = Local(workers=2, retries=1) if engine == 'local' else Ray(retries=2)
    run_study(study, engine=eng, log=logs.append)
    killer.join()
    assert killed, "no run was seen starting"
    same_runs(one_process, out)
    assert not list((out / 'runs').glob('*.running.json'))
    hist = pd.read_csv(out / 'runs' / f"{killed[0]}.history.csv")
    assert len(hist) == 1                                                        # one epoch, written once
    if engine == 'local':
        assert any(f"{killed[0]}: its worker" in l and 'died' in l and 'retrying' in l for l in logs)
        assert json.loads((out / 'runs' / f"{killed[0]}.json").read_text())['attempt'] == 2


@pytest.mark.slow
def test_ray_gives_the_run_files_of_one_process(fake_root, cache_dir, one_process, tmp_path):
    out = tmp_path / 'res'
    printed = _cli(fake_root, cache_dir, out, '--engine', 'ray')
    same_runs(one_process, out)
    assert 'ray: ' in printed and 'smoke: 3 of 3 runs finished' in printed
    assert {json.loads(p.read_text())['engine'] for p in (out / 'runs').glob('fold*-seed0.json')} == {'ray'}


def test_each_worker_is_started_pinned_to_its_gpu(monkeypatch):
    "A slot's CUDA_VISIBLE_DEVICES is in the worker's environment from its start, and the parent's is left as it was"
    import multiprocessing as mp
    from esc50_norm.study.engines import _environ
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    slots, threads = Local(workers=2, gpus=[0, 3])._slots(__import__('torch').device('cuda'))
    assert [s.name for s in slots] == ['gpu 0 worker 1', 'gpu 0 worker 2', 'gpu 3 worker 1', 'gpu 3 worker 2']
    assert [s.env['CUDA_VISIBLE_DEVICES'] for s in slots] == ['0', '0', '3', '3'] and threads == 0
    ctx = mp.get_context('spawn')
    q = ctx.Queue()
    p = ctx.Process(target=_report_env, args=(q,))
    with _environ(slots[2].env): p.start()
    assert q.get(timeout=60) == '3' and 'CUDA_VISIBLE_DEVICES' not in os.environ
    p.join()


def _report_env(q): q.put(os.environ.get('CUDA_VISIBLE_DEVICES'))


def test_workers_are_mapped_onto_the_gpus_their_parent_sees(monkeypatch):
    "A parent limited to GPUs 3 and 5 (Slurm without device cgroups, a user's CUDA_VISIBLE_DEVICES): torch says 0, 1"
    import torch
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    envs = lambda engine, device='cuda': [s.env['CUDA_VISIBLE_DEVICES'] for s in engine._slots(torch.device(device))[0]]
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '3,5')
    assert envs(Local(workers=2)) == ['3', '3', '5', '5']
    assert envs(Local(workers=1, gpus=[1])) == ['5']
    assert envs(Local(workers=1), 'cuda:1') == ['5']                  # --device cuda:1 keeps its index
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', 'GPU-aaaa, GPU-bbbb')
    assert envs(Local(workers=1)) == ['GPU-aaaa', 'GPU-bbbb']
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES')
    assert envs(Local(workers=1)) == ['0', '1']


@pytest.fixture
def endpoint():
    "A local TCP endpoint that answers as `reply` does (bytes, or None: it accepts and says nothing); its address"
    import socket
    servers = []
    def make(reply):
        srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(); servers.append(srv)
        def serve():
            try: conn, _ = srv.accept()
            except OSError: return
            conn.recv(64)
            if reply: conn.sendall(reply)
            time.sleep(15); conn.close()
        threading.Thread(target=serve, daemon=True).start()
        return f"127.0.0.1:{srv.getsockname()[1]}"
    yield make
    for s in servers: s.close()


def test_an_endpoint_that_answers_but_is_not_ray_is_named_quickly_and_quietly(endpoint, capfd):
    from esc50_norm.study.engines import _check_reachable
    pytest.importorskip('ray')
    address, t0 = endpoint(b'HTTP/1.1 400 Bad Request\r\n\r\n'), time.monotonic()
    with pytest.raises(RuntimeError, match=f"{address} answers, but not as a Ray head does"):
        Ray(address=address).check(None)
    assert time.monotonic() - t0 < 2
    address, t0 = endpoint(None), time.monotonic()         # never answers: bounded by the timeout (10 s in check)
    with pytest.raises(RuntimeError, match=f"{address} answers, but not as a Ray head does"):
        _check_reachable(address, timeout=1)
    assert time.monotonic() - t0 < 2
    assert capfd.readouterr().err == ''


def test_engine_defaults_agree_with_the_cli():
    from esc50_norm.study.cli import _parser
    study = _parser().parse_args(['study'])
    assert Ray().retries == Local().retries == study.retries == 1
    assert _parser().parse_args(['cache']).preset == study.preset == 'quick'
