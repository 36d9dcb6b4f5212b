"""Atomic file replacement: write beside the target, fsync, ``os.replace``.

A reader of ``path`` sees either the complete old file or the complete new one, never a
partial write: the bytes go to a hidden temporary file in the same directory (same file
system, so the rename is atomic on POSIX and Windows), which is flushed to disk before it is
renamed over ``path``; the directory entry is fsynced afterwards where the OS allows it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Context manager yielding a file handle whose content replaces ``path`` on success.

    If the body raises (or the process dies) the temporary file is removed (or left as a
    hidden ``.<name>.tmp-*`` file that no loader looks for) and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_replace(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """fsync the finished file ``tmp`` and rename it over ``path`` (same directory)."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(Path(path).parent)
