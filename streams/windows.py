"""Tumbling event-time windows of handoffs and follow-ups per team, kept for
dashboards in a changelog-backed table (one record per changed cell per timer
pass). Faust's own windowed tables expire by wall clock and cannot be written
from a timer, so leadsla keeps its own. Times here are epoch seconds."""

from __future__ import annotations

from leadsla.streams.codec import window_key
from leadsla.streams.partition import PartitionRuntime

# (size s, label, retention s): a window is kept this long after it ends.
WINDOWS = ((3600, "1h", 2 * 86400), (86400, "1d", 8 * 86400))


def add(rt: PartitionRuntime, now_s: int, at_s: int, metric: str, team: str, amount: float) -> None:
    """Add ``amount`` to the cells of every window size holding ``at_s``;
    events older than anything a dashboard shows are not kept."""
    windows, dirty = rt.windows, rt.dirty
    cell_key = (metric, team)
    for size, _, retention in WINDOWS:
        start = at_s - at_s % size
        if start + size + retention < now_s:
            continue
        cells = windows.get((size, start))
        if cells is None:
            cells = windows[(size, start)] = {}
        cells[cell_key] = cells.get(cell_key, 0) + amount
        dirty.add((size, start, metric, team))


def flush(rt: PartitionRuntime, now_s: int) -> list[tuple[str, float | None]]:
    """The changelog writes of one timer pass: every changed cell once, then
    a tombstone (None) for each cell past its retention."""
    out: list[tuple[str, float | None]] = []
    for size, start, metric, team in rt.dirty:
        out.append((window_key(size, start, metric, team, rt.partition), rt.windows[(size, start)][(metric, team)]))
    rt.dirty.clear()
    for size, _, retention in WINDOWS:
        for (s, start), cells in list(rt.windows.items()):
            if s == size and start + size + retention < now_s:
                out.extend((window_key(size, start, metric, team, rt.partition), None) for metric, team in cells)
                del rt.windows[(s, start)]
    return out


def current(rts: list[PartitionRuntime], now_s: int) -> dict[tuple[str, str, str], float]:
    """The current window of each size, summed over partitions:
    (metric, team, window label) -> value."""
    out: dict[tuple[str, str, str], float] = {}
    for rt in rts:
        for size, label, _ in WINDOWS:
            for (metric, team), value in rt.windows.get((size, now_s - now_s % size), {}).items():
                out[(metric, team, label)] = out.get((metric, team, label), 0) + value
    return out
