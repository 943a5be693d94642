"""Atomic file writes shared by ``tocha.save`` and the dataset cache."""

import os
import tempfile


def atomic_write(path, write):
    """Write ``path`` so a reader never sees a partial file: ``write(fileobj)`` fills a temp file in
    the same directory, which is fsynced, renamed over ``path``, and the rename itself made durable."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + ".", dir=d)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some filesystems cannot fsync a directory
        pass
