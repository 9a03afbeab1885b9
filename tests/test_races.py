"Studies that share a results folder: the folder's recipe and each run are claimed atomically, and dead claims taken over"
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from esc50_norm.atomic import write_exclusive
from esc50_norm.study.claims import claim
from esc50_norm.study.datasets import get_dataset
from esc50_norm.study.engines import InProcess
from esc50_norm.study.presets import Job, get_preset
from esc50_norm.study.runs import RunTaken, mark_running, read_preset
from esc50_norm.study.study import Study

JOB = Job(1, 'none', 0)


@pytest.fixture(scope='module')
def dataset(fake_root):
    ds = get_dataset(data=fake_root, full=False)
    ds.describe()                                       # read once here, not in every thread
    return ds


def make(dataset, out, tmp_path, **kw) -> Study:
    grid = dict(folds=(1,), normalizations=('none',), seeds=(0,))
    return Study(get_preset('smoke', **{**grid, **kw}), out, dataset=dataset, cache_dir=tmp_path / 'cache', device='cpu')


def at_once(fns) -> list:
    "Call every function in its own thread, all released together; what each returned or raised"
    gate, res = threading.Barrier(len(fns)), [None] * len(fns)
    def go(i):
        gate.wait()
        try: res[i] = fns[i]()
        except Exception as e: res[i] = e
    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(fns))]
    for t in threads: t.start()
    for t in threads: t.join()
    return res


def test_a_study_that_looked_before_another_one_wrote_its_recipe_is_refused(dataset, tmp_path, monkeypatch):
    "The race made certain: b saw no preset.json, then a wrote one; b must not write over it"
    out = tmp_path / 'res'
    a, b = make(dataset, out, tmp_path, epochs=1), make(dataset, out, tmp_path, epochs=2)
    a.prepare()
    real = Path.exists
    monkeypatch.setattr(Path, 'exists', lambda p: False if p.name == 'preset.json' else real(p))
    with pytest.raises(ValueError, match=r"another recipe \(changed: \['epochs'\]\)"): b.prepare()
    assert read_preset(out).epochs == 1


def test_of_studies_of_different_recipes_started_at_once_only_one_is_accepted(dataset, tmp_path):
    for trial in range(5):
        out = tmp_path / f"res{trial}"
        res = at_once([make(dataset, out, tmp_path, epochs=e).prepare for e in (1, 2, 3, 4)])
        accepted = [e for e, r in zip((1, 2, 3, 4), res) if not isinstance(r, Exception)]
        assert len(accepted) == 1, res
        assert all('another recipe' in str(r) for r in res if isinstance(r, Exception))
        assert read_preset(out).epochs == accepted[0]


def test_grids_grown_at_once_lose_no_update(dataset, tmp_path):
    out = tmp_path / 'res'
    make(dataset, out, tmp_path).prepare()
    seeds = list(range(1, 9))
    assert all(r is None for r in at_once([make(dataset, out, tmp_path, seeds=(s,)).prepare for s in seeds]))
    assert sorted(read_preset(out).seeds) == [0, *seeds]
    assert not list(out.glob('.*lock*')) and not list(out.glob('*.tmp-atomic'))


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True).stdout)


def test_a_run_is_claimed_once_and_a_dead_processs_claim_is_taken_over(tmp_path):
    out = tmp_path / 'res'
    note = mark_running(out, JOB)
    with pytest.raises(RunTaken, match=f"fold1-none-seed0 is in progress in pid {os.getpid()} on {socket.gethostname()}"):
        mark_running(out, JOB)
    note.write_text(json.dumps(dict(host=socket.gethostname(), pid=_dead_pid(), started_at='then')))
    assert mark_running(out, JOB) == note and json.loads(note.read_text())['pid'] == os.getpid()
    assert write_exclusive(tmp_path / 'x', 'a') and not write_exclusive(tmp_path / 'x', 'b') and (tmp_path / 'x').read_text() == 'a'
    assert claim(tmp_path / 'y', what=1) is None and claim(tmp_path / 'y')['what'] == 1


def _let_a_rival_in(monkeypatch, target, name: str, path: Path, after: bool) -> list:
    "Patch `target.name` so that its first call lets a rival take `path` over, before or after the real call"
    real, rival = getattr(target, name), []
    def patched(*a, **kw):
        if rival: return real(*a, **kw)
        rival.append('started')
        out = real(*a, **kw) if after else None
        rival[0] = claim(path, who='rival')
        return out if after else real(*a, **kw)
    monkeypatch.setattr(target, name, patched)
    return rival


@pytest.mark.parametrize('moment', ['after our read', 'before our lock'])
def test_two_takers_of_one_dead_claim_leave_one_holder(tmp_path, monkeypatch, moment):
    "A rival finds the same dead claim and takes it over first: this taker must not remove the rival's live claim"
    import esc50_norm.study.claims as claims
    y = tmp_path / 'y'
    y.write_text(json.dumps(dict(host=socket.gethostname(), pid=_dead_pid())))
    if moment == 'after our read': rival = _let_a_rival_in(monkeypatch, claims, '_holder', y, after=True)
    else: rival = _let_a_rival_in(monkeypatch, claims.fcntl, 'flock', y, after=False)   # we hold the dead file open
    holder = claim(y, who='me')
    assert rival == [None]                                                      # the rival took the dead claim over
    assert holder is not None and holder['who'] == 'rival', holder              # we were told who holds it
    assert json.loads(y.read_text())['who'] == 'rival'                          # and the rival still holds it


def test_a_filesystem_without_locks_still_takes_a_dead_claim_over(tmp_path, monkeypatch):
    import errno
    import esc50_norm.study.claims as claims
    def no_locks(*a): raise OSError(errno.ENOLCK, 'No locks available')
    monkeypatch.setattr(claims.fcntl, 'flock', no_locks)
    y = tmp_path / 'y'
    y.write_text(json.dumps(dict(host=socket.gethostname(), pid=_dead_pid())))
    assert claim(y, who='me') is None and json.loads(y.read_text())['who'] == 'me'


def test_a_second_study_skips_the_run_in_progress_and_takes_over_a_dead_ones(dataset, tmp_path):
    out = tmp_path / 'res'
    study = make(dataset, out, tmp_path)
    study.prepare()
    note = study.file(JOB, '.running.json')
    alive = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        note.write_text(json.dumps(dict(host=socket.gethostname(), pid=alive.pid, started_at='now')))
        logs = []
        assert InProcess().run(study, [JOB], logs.append) == []
        assert any('fold1-none-seed0 is in progress' in line and 'skipped' in line for line in logs), logs
        assert not study.finished(JOB) and json.loads(note.read_text())['pid'] == alive.pid      # left alone
    finally: alive.kill(); alive.wait()
    assert InProcess().run(study, [JOB], lambda *a: None) == []                                # its process is gone: taken over
    assert study.finished(JOB) and not note.exists()
