"""Ctrl-C while ``leadsla run`` is still starting: the command ends at once
with exit status 130 and one line, never a KeyboardInterrupt traceback.

The moment is taken from the process itself: SIGINT goes out as soon as a
given extension module shows in ``/proc/PID/maps``, i.e. while the command
imports it (pydantic: the command line's own imports; aiokafka's records
and aiohttp: the worker's), not after a guessed sleep."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import FIRST_TOUCH

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/PID/maps (Linux)")


def _loaded(pid: int, marker: str) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/maps").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.parametrize("marker", ["pydantic_core/_pydantic_core", "aiokafka/record/_crecords",
                                    "multidict/_multidict"])
def test_ctrl_c_while_run_starts_is_one_line_and_130(setup, marker: str) -> None:
    s = setup(FIRST_TOUCH)
    w = s.worker()
    proc = subprocess.Popen([sys.executable, "-m", "leadsla", "run"], env=w.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _loaded(proc.pid, marker):
            assert proc.poll() is None and time.monotonic() < deadline, f"{marker} never loaded"
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "leadsla: interrupted", err
    assert out == ""  # stopped before the banner
