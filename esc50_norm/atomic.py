"One atomic write for every file the package writes: a unique temporary file beside the target, then a rename"
# (the study's claims and locks, made with `write_exclusive`: esc50_norm.study.claims)
from __future__ import annotations
import contextlib
import errno
import os
import socket
import uuid
from pathlib import Path
from typing import Callable

__all__ = ['write_atomic', 'write_exclusive', 'make_folder', 'remove_stale_temporaries', 'pid_alive']

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


def pid_alive(pid: int) -> bool:
    "Whether process `pid` of this host still runs (one we may not signal does)"
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    except PermissionError: return True
    return True


def remove_stale_temporaries(folder) -> list:
    "Remove the temporary files in `folder` left by writers on this host that no longer run; returns them"
    # e.g. those of a killed build
    removed, host = [], socket.gethostname()
    for p in Path(folder).glob(f".*{_TMP}"):
        rest, pid, _ = (p.name[:-len(_TMP)].rsplit('.', 2) + ['', ''])[:3]     # '.<name>.<host>', pid, random
        if not rest.endswith(f".{host}") or not pid.isdigit() or pid_alive(int(pid)): continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed
