"""``python -m bench.scale --quick`` runs end to end and reports every
figure. Values only, never a speed: the benchmark is not a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"open_clock_rss", "quiet_lead_rss", "deadline_lateness", "burst_stall", "metrics_render"}


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSLA_")}
    subprocess.run([sys.executable, "-m", "bench.scale", "--quick", "--out", str(tmp_path)], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=600)
    [written] = tmp_path.glob("scale-*.json")
    figures = json.loads(written.read_text())["figures"]
    assert set(figures) == FIGURES
    for name, figure in figures.items():
        assert figure["value"] > 0, name
        assert figure["unit"], name
        assert all(v > 0 for v in figure["sizes"].values() if isinstance(v, int)), name
    assert figures["deadline_lateness"]["decided"] == figures["deadline_lateness"]["sizes"]["due_clocks"]
    assert figures["burst_stall"]["decided"] == figures["burst_stall"]["sizes"]["burst_clocks"]
    assert figures["open_clock_rss"]["sizes"]["open_clocks"] >= 20_000
