"""leadsla: a live SLA monitor for the marketing-to-sales lead handoff.

The distribution installs one top-level package, ``leadsla``, whose parts live
in the repository's top-level folders: ``leadsla.models`` (``models/``, the pure
SLA core), ``leadsla.streams`` (``streams/``, the Faust runtime and the
command line) and ``leadsla.dashboards`` (``dashboards/``, rules, alerts and
Grafana dashboards generated from the policies file).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# Imported from a checkout (python -m leadsla run in the repository's folder,
# whose ./leadsla comes first on sys.path), this folder holds only this file:
# its parts are the sibling folders. Installed, they sit beside this file.
_here = Path(__file__).resolve().parent
if not (_here / "streams").is_dir() and (_here.parent / "streams" / "cli.py").is_file():
    __path__.append(str(_here.parent))

try:
    __version__ = version("leadsla")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
