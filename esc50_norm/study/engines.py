"Engines that run a study's jobs: in this process, in worker processes on every GPU, or on a Ray cluster"
# and `run_study`, which schedules them
from __future__ import annotations
import contextlib
import inspect
import multiprocessing as mp
import os
import queue
import signal
import socket
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, replace

import pandas as pd
import torch

from ..spelling import plural, unknown_name
from .device import pick_device
from .plugins import load_plugins
from .presets import Job
from .runs import RunTaken, read_run, write_results_csv
from .study import Study

__all__ = ['InProcess', 'Local', 'Ray', 'ENGINES', 'get_engine', 'run_study']

H100_WORKERS = 5
"Processes per GPU by default: on one H100, 5 and 8 processes gave the same 0.50 s per epoch of the grid"
# (3 fp32 ones: 1.08 s)


POLL_S = 1.0
"How often the local engine looks at its workers when none has reported (seconds)"


def default_workers(device=None) -> int:
    "Fill one GPU (5 processes); one process on the CPU"
    return H100_WORKERS if pick_device(device).type == 'cuda' else 1


def _run_line(k: int, total: int, job: Job, row: dict, where: str) -> str:
    "The line that reports a finished run: the k-th of `total`, its accuracy and time, `where` it ran"
    return (f"[{k}/{total}] {job.id}: accuracy {row['final_accuracy']:.4f} (best {row['best_accuracy']:.4f}) "
            f"in {row['wall_s']:.1f}s{where}")


class _Deadline:
    "No new run starts `stop_after` seconds after the engine started (runs in progress finish): for time-limited jobs"
    def __init__(self, stop_after: float | None):
        self.end = None if stop_after is None else time.monotonic() + stop_after

    def passed(self, left: int, log) -> bool:
        if self.end is None or time.monotonic() < self.end: return False
        log(f"time budget spent: {plural(left, 'run')} not started (the same command again does them)")
        return True


class InProcess:
    "One run after another in this process; a run that fails is reported and the others go on"
    def __init__(self, stop_after: float | None = None): self.stop_after = stop_after
    def check(self, study: Study): pick_device(study.device)

    def run(self, study: Study, todo: list, log=print) -> list:
        todo, data, failed = [Job(*j) for j in todo], study.load_data(log), []
        log(f"data ready: {len(data.df)} clips on {data.device}")
        deadline = _Deadline(self.stop_after)
        for k, job in enumerate(todo, 1):
            if deadline.passed(len(todo) - k + 1, log): break
            try: log(_run_line(k, len(todo), job, study.run(job, data, engine='in-process'), ''))
            except RunTaken as e: log(f"[{k}/{len(todo)}] {e}")
            except Exception:
                failed.append(job)
                log(f"[{k}/{len(todo)}] {job.id} FAILED:\n{traceback.format_exc()}")
        return failed


@contextlib.contextmanager
def _no_sigint():
    "SIGINT ignored for a while: a process started inside keeps ignoring it (Ctrl-C is the study process's to handle)"
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try: yield
    finally: signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def _environ(env: dict):
    "`os.environ` updated by `env` for a while: a process started inside inherits it from its first instruction"
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try: yield
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v


def _next(inbox, parent):
    "The next message for a worker, or None once the study process that started it has died (it would never send one)"
    while True:
        try: return inbox.get(timeout=POLL_S)
        except queue.Empty:
            if not parent.is_alive(): return None


def _worker(wid: int, threads: int, study: Study, inbox, outbox):
    "A worker process: runs the jobs it is sent until None"
    # pinned to its GPU by the CUDA_VISIBLE_DEVICES it was started with
    signal.signal(signal.SIGINT, signal.SIG_IGN)              # Ctrl-C is the study process's: it stops the workers
    if threads: torch.set_num_threads(threads)
    load_plugins()                                            # a fresh interpreter: the plugins' modes, normalizations
    parent = mp.parent_process()
    while (msg := _next(inbox, parent)) is not None:
        job, attempt = msg
        try: outbox.put(('done', wid, job, study.run(job, engine='local', worker=wid, attempt=attempt)))
        except RunTaken as e: outbox.put(('skip', wid, job, str(e)))
        except Exception: outbox.put(('fail', wid, job, traceback.format_exc()))
    if not parent.is_alive(): outbox.cancel_join_thread()     # nobody reads the outbox any more: exit, not waiting


def visible_gpu(g: int) -> str:
    "The CUDA_VISIBLE_DEVICES of a worker on the GPU torch numbers `g` the parent's own entry for it, if it has one"
    given = os.environ.get('CUDA_VISIBLE_DEVICES')
    if given is None: return str(g)
    entries = [d.strip() for d in given.split(',') if d.strip()]
    if not 0 <= g < len(entries): raise ValueError(f"GPU {g} is not one of those CUDA_VISIBLE_DEVICES={given!r} shows")
    return entries[g]


@dataclass
class _Slot:
    "A place for one worker process: its environment (which GPU) and the process there now"
    name: str
    env: dict
    proc: object = None
    inbox: object = None
    job: Job | None = None


class Local:
    "`workers` processes per GPU over every visible GPU (or `gpus`), or on the CPU; a run whose worker dies is retried"
    def __init__(self, workers: int | None = None, gpus: list | None = None, retries: int = 1,
                 stop_after: float | None = None):
        self.workers, self.gpus, self.retries, self.stop_after = workers, gpus, retries, stop_after

    def _slots(self, device: torch.device) -> tuple[list, int]:
        n = self.workers or default_workers(device)
        if device.type != 'cuda':
            return [_Slot(f"cpu worker {k + 1}", {}) for k in range(n)], max(1, (os.cpu_count() or 1) // n)
        gpus = self.gpus if self.gpus is not None else [device.index] if device.index is not None else \
            range(torch.cuda.device_count())
        return [_Slot(f"gpu {g} worker {k + 1}", {'CUDA_VISIBLE_DEVICES': visible_gpu(g)}) for g in gpus
                for k in range(n)], 0

    def check(self, study: Study):
        "The device is there, and so is every GPU of `gpus`"
        device = pick_device(study.device)
        if device.type != 'cuda' and self.gpus is not None:
            raise ValueError(f"--gpus {','.join(map(str, self.gpus))} needs CUDA, but this study runs on {device.type}")
        if device.type == 'cuda' and self.gpus is not None:
            if not self.gpus or max(self.gpus) >= torch.cuda.device_count() or min(self.gpus) < 0:
                raise ValueError(f"--gpus {','.join(map(str, self.gpus))}: "
                                 f"this machine has GPUs 0-{torch.cuda.device_count() - 1}")

    def run(self, study: Study, todo: list, log=print) -> list:
        device = pick_device(study.device)
        slots, threads = self._slots(device)
        data = replace(study, device='cpu').load_data(log)     # decode once here: the workers only read the cache file
        log(f"data ready: {len(data.df)} clips; each worker reads them from the cache")
        worker_study = replace(study, device='cuda' if device.type == 'cuda' else 'cpu')
        pool = _Pool(worker_study, slots, threads, [Job(*j) for j in todo], self.retries, log)
        return pool.run(_Deadline(self.stop_after))


class _Pool:
    "The worker processes of `Local.run`: jobs go to free slots, results come back, a dead worker's job is retried"
    def __init__(self, study: Study, slots: list, threads: int, todo: list, retries: int, log):
        self.study, self.slots, self.threads, self.retries, self.log = study, slots[:len(todo)], threads, retries, log
        self.total = len(todo)
        self.ctx = mp.get_context('spawn')                 # a fresh interpreter per worker: no CUDA state inherited
        self.outbox = self.ctx.Queue()
        self.pending, self.attempts, self.failed, self.done = deque(todo), Counter(), [], set()

    def run(self, deadline: _Deadline) -> list:
        "Every job done, failed or not started by the deadline: the failed ones"
        self.log(f"{len(self.slots)} worker processes: {', '.join(s.name for s in self.slots)}")
        for k, s in enumerate(self.slots): self._start(k, s)
        try:
            while self.pending or any(s.job for s in self.slots):
                if self.pending and deadline.passed(len(self.pending), self.log): self.pending.clear()
                self._dispatch()
                self._receive()
                self._reap()
        except KeyboardInterrupt:
            for s in self.slots: s.proc.terminate()        # Ctrl-C: stop now; their claims are taken over on resuming
            raise
        finally: self._stop()
        return self.failed

    def _start(self, k: int, s: _Slot):
        s.inbox, s.job = self.ctx.Queue(), None
        s.proc = self.ctx.Process(target=_worker, args=(k, self.threads, self.study, s.inbox, self.outbox),
                                  daemon=True)
        with _environ(s.env), _no_sigint(): s.proc.start()     # env before CUDA starts there; Ctrl-C is ours

    def _dispatch(self):
        "A pending job to every free slot"
        for s in self.slots:
            if s.job is None and self.pending:
                s.job = self.pending.popleft()
                self.attempts[s.job] += 1
                s.inbox.put((s.job, self.attempts[s.job]))

    def _receive(self):
        "The next worker's message (waiting up to `POLL_S`), if it is about the job its slot holds"
        try: kind, k, job, res = self.outbox.get(timeout=POLL_S)
        except queue.Empty: return
        s = self.slots[k]
        if s.job != job: return
        if kind == 'skip':
            s.job = None
            self.log(res)
        else: self._finish(s, job, res if kind == 'done' else None, res if kind == 'fail' else None)

    def _reap(self):
        "Each dead worker's job: finished after all, tried again, or failed; and a new worker in its slot"
        for k, s in enumerate(self.slots):
            if s.job is None or s.proc.is_alive(): continue
            job, code = s.job, s.proc.exitcode
            if self.study.finished(job): self._finish(s, job, _row(self.study, job), None)
            elif self.attempts[job] <= self.retries:
                self.log(f"{job.id}: its worker ({s.name}) died (exit code {code}); "
                         f"retrying ({self.attempts[job]} of {self.retries + 1} tries used)")
                self.pending.appendleft(job)
                s.job = None
            else: self._finish(s, job, None, f"its worker died (exit code {code}) on each of {self.attempts[job]} "
                                             "tries")
            self._start(k, s)

    def _finish(self, s: _Slot, job: Job, row: dict | None, err: str | None):
        s.job = None
        if job in self.done: return
        if row is not None:
            self.done.add(job)
            self.log(_run_line(len(self.done) + len(self.failed), self.total, job, row, f" ({s.name})"))
        else:
            self.failed.append(job)
            self.log(f"[{len(self.done) + len(self.failed)}/{self.total}] {job.id} FAILED on {s.name}:\n{err}")

    def _stop(self):
        "Each worker told to stop, and joined (terminated after 30 s)"
        for s in self.slots:
            if s.proc.is_alive(): s.inbox.put(None)
        for s in self.slots:
            s.proc.join(timeout=30)
            if s.proc.is_alive(): s.proc.terminate()


def _row(study: Study, job: Job) -> dict: return read_run(study.file(job, '.json'))


def _ray_run(study: Study, job: Job) -> dict:
    "A Ray task: one run, its files written by the worker like any other; {'skipped': why} when another process has it"
    load_plugins()
    try: return study.run(job, engine='ray')
    except RunTaken as e: return dict(skipped=str(e))


class Ray:
    "A task per run on a Ray cluster (`address`; default: start a local one), `1/workers` of a GPU each"
    # dead workers' runs are retried
    def __init__(self, address: str | None = None, workers: int | None = None, retries: int = 1):
        self.address, self.workers, self.retries = address, workers, retries

    def check(self, study: Study):
        "Ray is installed, and the cluster's head answers"
        try: import ray  # noqa: F401
        except ImportError: raise RuntimeError("the ray engine needs Ray: pip install 'esc50_norm[ray]'") from None
        if self.address: _check_reachable(self.address)

    def run(self, study: Study, todo: list, log=print) -> list:
        import ray
        ray.init(address=self.address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        gpus = ray.cluster_resources().get('GPU', 0)
        if gpus: study, opts = replace(study, device='cuda'), dict(num_gpus=1 / (self.workers or H100_WORKERS))
        else: study, opts = replace(study, device='cpu'), dict(num_cpus=1)
        log(f"ray: {ray.cluster_resources().get('CPU', 0):.0f} CPUs, {gpus:.0f} GPUs; "
            f"each run takes {opts}, {self.retries} retries")
        task = ray.remote(_ray_run).options(max_retries=self.retries, retry_exceptions=False, **opts)
        refs = {task.remote(study, job): job for job in map(Job._make, todo)}
        failed, k = [], 0
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            job, k = refs.pop(ready[0]), k + 1
            try:
                row = ray.get(ready[0])
                log(row['skipped'] if 'skipped' in row else _run_line(k, len(todo), job, row, ' (ray)'))
            except Exception as e:
                failed.append(job)
                log(f"[{k}/{len(todo)}] {job.id} FAILED on ray: {e}")
        return failed


_H2_PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"What an HTTP/2 client sends first, the preface and an empty SETTINGS frame; gRPC servers (Ray's head) answer SETTINGS"


def _check_reachable(address: str, timeout: float = 10.0):
    "Fail within `timeout` seconds, naming `address`, when nothing listens there or what answers is not a Ray head"
    if address == 'auto': return
    host, _, port = address.split('://')[-1].rpartition(':')
    end = time.monotonic() + timeout
    try:
        with socket.create_connection((host or 'localhost', int(port)), timeout=timeout) as conn:
            conn.settimeout(max(0.1, end - time.monotonic()))
            conn.sendall(_H2_PREFACE)
            answer = _receive(conn, 9, end)
    except (OSError, ValueError) as e:
        raise RuntimeError(f"cannot reach the Ray head at {address} within {timeout:.0f} s ({e}): "
                           "is `ray start --head` running there?") from None
    if len(answer) < 9 or answer[3] != 4:
        raise RuntimeError(f"{address} answers, but not as a Ray head does (no gRPC/HTTP2 settings; it sent "
                           f"{answer[:16]!r}): is that the address `ray start --head` printed?")


def _receive(conn, n: int, end: float) -> bytes:
    "Up to `n` bytes from `conn` until the peer stops sending or time `end` passes"
    got = b''
    while len(got) < n and time.monotonic() < end:
        conn.settimeout(max(0.05, end - time.monotonic()))
        try: chunk = conn.recv(n - len(got))
        except socket.timeout: break
        if not chunk: break
        got += chunk
    return got


ENGINES = {'local': Local, 'ray': Ray}
"""Engines by name. A new one is a class whose constructor names the options it takes, with `check(study)` (raise
before any work when it cannot run here) and `run(study, todo, log) -> failed jobs`"""


def get_engine(name: str = 'local', workers: int | None = None, device=None, **options):
    "The engine called `name` with the options given (None: not given); an option it does not take is refused"
    # one local worker runs here, in this process
    if name not in ENGINES:
        raise ValueError(unknown_name('engine', name, ENGINES))
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1 (processes per GPU), got {workers}")
    given, cls = {k: v for k, v in options.items() if v is not None}, ENGINES[name]
    takes = inspect.signature(cls).parameters
    if refused := [k for k in given if k not in takes]:
        raise ValueError(f"--engine {name} does not take {', '.join('--' + k.replace('_', '-') for k in refused)}")
    if name == 'local' and (workers or default_workers(device)) == 1 and not given.get('gpus'):
        return InProcess(given.get('stop_after'))
    return cls(workers=workers, **given)


def run_study(study: Study, shard: tuple = (0, 1), engine=None, log=print) -> pd.DataFrame:
    "Run every unfinished run of `study` (shard `i` of `n`) on `engine` (default: here, one run after another)"
    engine = engine or InProcess()
    engine.check(study)                                   # before anything is written
    study.check()
    study.prepare()
    todo = study.todo(shard)
    i, n = shard
    log(f"{study.preset.name}: {plural(len(todo), 'run')} to do in {study.out} "
        f"(shard {i + 1}/{n}; finished runs are skipped)")
    if todo:
        t0 = time.perf_counter()
        failed = engine.run(study, todo, log)
        log(f"{study.preset.name}: {sum(map(study.finished, todo))} of {plural(len(todo), 'run')} finished "
            f"in {time.perf_counter() - t0:.1f}s"
            + (f"; failed: {', '.join(j.id for j in failed)}" if failed else ""))
    return write_results_csv(study.out)
