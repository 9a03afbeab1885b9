"Claims and locks: a note made exclusively says who runs a run or rewrites a file; a dead holder's is taken over"
from __future__ import annotations
import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ..atomic import pid_alive, write_exclusive

__all__ = ['claim', 'exclusive']


def claim_holder(path) -> dict | None:
    "The note (host, pid, ...) of the claim at `path` while its holder may still run; None when none is, or it is stale"
    return _holder(path)[1]


def _holder(path) -> tuple[bool, dict | None]:
    "Whether a claim was at `path` when read, and `claim_holder`'s answer from that one reading"
    try: note = json.loads(Path(path).read_text())
    except FileNotFoundError: return False, None
    except (OSError, ValueError): note = {}
    if not isinstance(note, dict): note = {}
    pid = note.get('pid')
    stale = note.get('host') == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid)  # holder gone
    return True, None if stale else note


_inode = lambda st: (st.st_dev, st.st_ino)


def _remove_if_stale(path: Path) -> dict | None:
    "Remove the stale claim at `path`, judged again under a lock on that very file: None, or the live note found there"
    # every taker locks the file it found; only the file still at `path` is removed, so a taker that waited never
    # removes the claim that another taker made meanwhile
    try: fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError: return None                              # removed meanwhile: claim it anew
    try:
        try: fcntl.flock(fd, fcntl.LOCK_EX)                            # an OS lock: released if this process dies
        except OSError as e:                                           # a filesystem without locks (NFS: EBADF)
            if e.errno not in (errno.ENOLCK, errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP): raise
        try: same = _inode(os.stat(path)) == _inode(os.fstat(fd))
        except FileNotFoundError: same = False
        if not same: return None                                       # replaced meanwhile: read the new claim
        found, holder = _holder(path)
        if found and holder is None: path.unlink()
        return holder
    finally: os.close(fd)


def claim(path, **info) -> dict | None:
    "Claim `path` (a note of host, pid, `info`, made exclusively; stale: taken over): None, or its note"
    path, note = Path(path), json.dumps(dict(host=socket.gethostname(), pid=os.getpid(), **info))
    for _ in range(3):
        if write_exclusive(path, note): return None
        found, holder = _holder(path)
        if holder is None and found: holder = _remove_if_stale(path)   # a process that no longer runs: take it over
        if holder is not None: return holder
    return claim_holder(path) or {}


@contextlib.contextmanager
def exclusive(path, timeout: float = 60.0):
    "Hold the lock file `path` (a claim) for a read-modify-write; wait `timeout` s for another holder, then name it"
    end = time.monotonic() + timeout
    while (holder := claim(path)) is not None:
        if time.monotonic() > end:
            raise TimeoutError(f"{path} is held by {holder or 'another process'} for more than {timeout:.0f} s; "
                               "remove it if that process is gone")
        time.sleep(0.05)
    try: yield
    finally: Path(path).unlink(missing_ok=True)
