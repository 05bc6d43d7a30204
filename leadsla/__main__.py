"""``python -m leadsla``: the same command as the ``leadsla`` script."""

from leadsla.streams.cli import main

raise SystemExit(main())
