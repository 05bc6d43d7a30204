"""models/ is the pure core: no streaming or metrics library, no wall clock."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_importing_models_loads_no_faust_aiokafka_or_prometheus() -> None:
    code = (
        "import sys, leadsla.models.events, leadsla.models.durations, leadsla.models.calendar, leadsla.models.policy, leadsla.models.clock;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('faust', 'aiokafka', 'prometheus_client', 'mode')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=MODELS.parent).stdout.strip()
    assert out == "[]"


def test_models_never_read_the_wall_clock() -> None:
    for path in MODELS.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"\b(datetime\.now|datetime\.utcnow|time\.time|time\.monotonic|date\.today)\(", text), path
        assert not re.search(r"^\s*(import|from)\s+(faust|aiokafka|prometheus_client|mode)\b", text, re.M), path
