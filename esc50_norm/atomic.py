"One atomic write for every file the package writes: a unique temporary file beside the target, then a rename"
from __future__ import annotations
import os
import socket
import uuid
from pathlib import Path
from typing import Callable

__all__ = ['write_atomic', 'remove_stale_temporaries']

_TMP = '.tmp-atomic'
"The suffix of every temporary file `write_atomic` makes: `.<name>.<host>.<pid>.<random>.tmp-atomic`"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}{_TMP}")


def write_atomic(path, data: str | bytes | Callable[[Path], object]) -> Path:
    "Write `data` (text, bytes, or a function that writes a given path) to `path` so readers see the old file or the new one, never half"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        if isinstance(data, str): tmp.write_text(data)
        elif isinstance(data, bytes): tmp.write_bytes(data)
        else: data(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _alive(pid: int) -> bool:
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    except PermissionError: return True
    return True


def remove_stale_temporaries(folder) -> list:
    "Remove the temporary files in `folder` left by writers on this host that no longer run (a killed build, say); returns them"
    removed, host = [], socket.gethostname()
    for p in Path(folder).glob(f".*{_TMP}"):
        rest, pid, _ = (p.name[:-len(_TMP)].rsplit('.', 2) + ['', ''])[:3]     # '.<name>.<host>', pid, random
        if not rest.endswith(f".{host}") or not pid.isdigit() or _alive(int(pid)): continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed
