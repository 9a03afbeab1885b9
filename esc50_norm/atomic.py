"One atomic write for every file the package writes: a unique temporary file beside the target, then a rename"
from __future__ import annotations
import contextlib
import errno
import fcntl
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Callable

__all__ = ['write_atomic', 'write_exclusive', 'make_folder', 'claim', 'claim_holder', 'exclusive',
           'remove_stale_temporaries']

_TMP = '.tmp-atomic'
"The suffix of every temporary file `write_atomic` makes: `.<name>.<host>.<pid>.<random>.tmp-atomic`"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}{_TMP}")


_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def _not_writable(path: Path, e: OSError) -> OSError:
    "An error that names the folder of `path` (not the temporary file) when it cannot be written"
    return type(e)(e.errno, f"cannot write {path.name} into {path.parent}: {e.strerror}")


def make_folder(folder) -> Path:
    "`folder` and its parents, created; a file in the way is an error that names it (not 'File exists')"
    folder = Path(folder)
    try: folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(f"cannot create folder {folder}: {blocker} is a file") from None
    return folder


def _write_tmp(path: Path, data) -> Path:
    "`data` in a fresh temporary file beside `path`"
    make_folder(path.parent)
    tmp = _tmp_name(path)
    with _removed_on_error(tmp, path):
        if isinstance(data, str): tmp.write_text(data)
        elif isinstance(data, bytes): tmp.write_bytes(data)
        else: data(tmp)
    return tmp


@contextlib.contextmanager
def _removed_on_error(tmp: Path, path: Path):
    "Remove `tmp` when the block fails; a refused write names `path`'s folder, a folder at `path` says so"
    try: yield
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, IsADirectoryError): raise IsADirectoryError(f"cannot write {path}: it is a folder") from None
        if isinstance(e, OSError) and e.errno in _DENIED: raise _not_writable(path, e) from None
        raise


def write_atomic(path, data: str | bytes | Callable[[Path], object]) -> Path:
    "Write `data` (text, bytes, or a function that writes a given path) to `path`: readers see the old file or the new"
    path = Path(path)
    tmp = _write_tmp(path, data)
    with _removed_on_error(tmp, path): tmp.replace(path)
    return path


def write_exclusive(path, data: str | bytes | Callable[[Path], object]) -> bool:
    "Create `path` holding `data`, whole, unless it exists (then False): a hard link, atomic on local and network disks"
    path = Path(path)
    tmp = _write_tmp(path, data)
    try: os.link(tmp, path)
    except FileExistsError: return False
    finally: tmp.unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    except PermissionError: return True
    return True


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
    stale = note.get('host') == socket.gethostname() and isinstance(pid, int) and not _alive(pid)   # its holder is gone
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


def remove_stale_temporaries(folder) -> list:
    "Remove the temporary files in `folder` left by writers on this host that no longer run; returns them"
    # e.g. those of a killed build
    removed, host = [], socket.gethostname()
    for p in Path(folder).glob(f".*{_TMP}"):
        rest, pid, _ = (p.name[:-len(_TMP)].rsplit('.', 2) + ['', ''])[:3]     # '.<name>.<host>', pid, random
        if not rest.endswith(f".{host}") or not pid.isdigit() or _alive(int(pid)): continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed
