"""Topic names of the public contract (defaults; each can be overridden by a setting)."""

INPUT = "lead-events"
DLQ = "lead-events-dlq"
OUTCOMES = "sla-outcomes"
PERIODS = "sla-periods"
