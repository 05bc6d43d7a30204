"""die_with_parent: the parent-death signal is set only where it follows the
process (a child started from the main thread, on Linux)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from leadsla.streams.children import die_with_parent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_set_for_a_child_of_the_main_thread_only() -> None:
    assert callable(die_with_parent())
    found: list[object] = []
    t = threading.Thread(target=lambda: found.append(die_with_parent()))
    t.start()
    t.join()
    assert found == [None]  # a short-lived thread would take the child along when it ends


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_child_runs_with_the_signal_set() -> None:
    # /proc/self/status does not show it; prctl(PR_GET_PDEATHSIG) does.
    code = ("import ctypes, ctypes.util, signal\n"
            "libc = ctypes.CDLL(ctypes.util.find_library('c'))\n"
            "sig = ctypes.c_int()\n"
            "libc.prctl(2, ctypes.byref(sig), 0, 0, 0)\n"
            "print(sig.value)")
    out = subprocess.run([sys.executable, "-c", code], preexec_fn=die_with_parent(), capture_output=True,
                         text=True, check=True).stdout
    assert int(out) == signal.SIGTERM
