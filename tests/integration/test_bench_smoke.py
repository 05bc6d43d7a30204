"""A small run of the benchmark, as its users run it: every stage reports,
and the real worker (B6) decides the same clocks as the engine alone (B2)
on the same history. The figures themselves are not checked: the benchmark
measures speed, tests never assert it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("B0 raw drain", "B1 + decode", "B2 + engine, metrics, timer, state encoding", "B6 leadsla run")


def test_the_benchmark_runs_every_stage_and_the_worker_decides_as_the_engine(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSLA_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    run = subprocess.run(
        # A history that ended 30 days ago: no deadline falls between the
        # engine's run and the worker's, so both decide the same clocks.
        [sys.executable, "-m", "bench.run", "--events", "3000", "--partitions", "4", "--end-ago", "30d",
         "--scale", "none", "--recovery-leads", "0",  # tests/bench runs bench.scale's smoke size
         "--listen", f"127.0.0.1:{free_port()}", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    [out] = tmp_path.glob("bench-*.json")
    results = json.loads(out.read_text())
    for stage in STAGES:
        assert results[stage]["events_per_s"] > 0, stage
        assert results[stage]["cpu_us_per_event"] > 0, stage
        assert stage in run.stdout
    assert results["B0 raw drain"]["ratio_to_b0"] == 1.0
    b2, b6 = results[STAGES[2]], results[STAGES[3]]
    assert b6["events"] > 0
    assert b2["decisions"] > 0
    assert b6["decisions"] == b2["decisions"], "the worker and the engine decided a different number of clocks"
