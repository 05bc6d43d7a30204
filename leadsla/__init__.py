"""leadsla: a live SLA monitor for the marketing-to-sales lead handoff.

The distribution installs one top-level package, ``leadsla``, whose parts live
in the repository's top-level folders: ``leadsla.models`` (``models/``, the pure
SLA core), ``leadsla.streams`` (``streams/``, the Faust runtime and the
command line) and ``leadsla.dashboards`` (``dashboards/``, rules, alerts and
Grafana dashboards generated from the policies file).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("leadsla")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
