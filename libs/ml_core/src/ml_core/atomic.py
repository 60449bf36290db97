"""Atomic file outputs: a reader sees the old file or the complete new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The temporary file lives in the destination directory so that the final
    ``os.replace`` is a rename within one file system, which POSIX makes atomic.
    """
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    os.close(handle)
    temporary = Path(temporary_name)
    # mkstemp makes the file 0600; give it the mode a plain open() would (0666 less the umask),
    # so teammates can read a shared run folder.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, indent: int = 2) -> Path:
    """Write ``data`` as JSON to ``path`` atomically and return the path.

    Serialisation happens before the file is touched, so data that cannot be encoded raises
    ``TypeError`` and leaves any existing file intact.
    """
    text = json.dumps(data, indent=indent, sort_keys=True, allow_nan=False) + "\n"
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)
