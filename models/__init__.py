"""The pure SLA domain: events, durations, calendars, policies and clocks.

Nothing in this package imports faust, aiokafka or prometheus_client, and
nothing here reads the wall clock: time is always an argument.
"""
