"""Container log rotation, as the kubelet's container log manager (pkg/kubelet/logs): a
container's log that grew past containerLogMaxSize (10Mi) is rotated, and at most
containerLogMaxFiles (5) files are kept, the current one included; checked every 10 s
(ContainerLogMonitorInterval), with the eviction manager's local-storage pass.

The logs live on the cluster's tmpfs (memory), so a chatty container must not grow one
without end. A container here writes its log itself (its stdout and stderr are the file,
opened O_APPEND), so no runtime can reopen it as CRI's ReopenContainerLog does: the log is
copied to `<log>.<timestamp>` and truncated (logrotate's copytruncate; what it writes
between the two is lost, as there). The rotated files are not compressed (upstream gzips
all but the newest). `kubectl logs` reads the current file, as upstream's does.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import time

MAX_SIZE = int(os.environ.get("NETSIM_CONTAINER_LOG_MAX_SIZE", str(10 * 1024 * 1024)))
MAX_FILES = 5


def rotate(path: str, now: float | None = None, max_size: int = MAX_SIZE,
           max_files: int = MAX_FILES) -> bool:
    """Rotate `path` when it is larger than `max_size`; drop the oldest rotated files
    beyond `max_files` - 1. True when it rotated."""
    try:
        if os.stat(path).st_size <= max_size:
            return False
    except OSError:
        return False
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    rotated = f"{path}.{stamp}"
    n = 0
    while os.path.lexists(rotated):  # twice within a second
        n += 1
        rotated = f"{path}.{stamp}.{n}"
    shutil.copyfile(path, rotated)
    shutil.copymode(path, rotated)  # as private as the log
    os.truncate(path, 0)
    old = sorted(glob.glob(glob.escape(path) + ".*"), key=_age)
    for p in old[:max(0, len(old) - (max_files - 1))]:
        with contextlib.suppress(OSError):
            os.unlink(p)
    return True


def _age(path: str) -> tuple[float, str]:
    try:
        return os.stat(path).st_mtime, path
    except OSError:
        return 0.0, path
