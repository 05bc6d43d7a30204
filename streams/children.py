"""Child processes that end with the process that started them.

A supervisor or a worker killed outright (SIGKILL, the OOM killer) runs no
clean-up: without help its embedded broker or its workers would live on,
keep their ports and go on consuming, and the next ``leadsla run`` or
``leadsla broker`` would find the port taken. On Linux the kernel can send a
child a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``, see
prctl(2)); elsewhere nothing is set and the child outlives a killed parent
as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    fn: Callable[..., int] = libc.prctl
    return fn


_PRCTL = _prctl()  # looked up once, in the parent: the forked child only calls it


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that has the kernel send the
    child ``sig`` (default SIGTERM, so it stops in order) when the process
    calling this dies, however it dies; None where that is not available
    (not Linux). If the parent is already gone when the child runs it, the
    child sends itself ``sig``.

    PR_SET_PDEATHSIG follows the *thread* that forked, not the process: a
    child started from a short-lived thread would be signalled when that
    thread ends. So it is set only for children started from the main
    thread (None elsewhere: such a child outlives a killed parent)."""
    if _PRCTL is None or threading.current_thread() is not threading.main_thread():
        return None
    prctl, parent = _PRCTL, os.getpid()

    def set_parent_death_signal() -> None:
        # Runs in the forked child before exec: nothing here may import,
        # allocate much or take a lock another thread could hold.
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # died between fork and prctl
            os.kill(os.getpid(), sig)

    return set_parent_death_signal
