"""The leadsla runtime: Faust agents, timers, metrics, the embedded broker and the CLI."""
