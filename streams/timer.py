"""The deadline timer's loop, free of Faust: when a pass runs, and what one
pass does. ``streams.app`` runs it as a task of the worker; the benchmarks
run the same code around an engine of their own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leadsla.streams.engine import Engine
    from leadsla.streams.sink import KafkaSink

# The shortest pause between two timer passes (seconds), however soon the
# next deadline: a due bucket that a pass cannot empty never spins the loop.
MIN_PAUSE = 0.01


async def every(interval: float, work: Callable[[], Awaitable[None]], stopping: asyncio.Event,
                sooner: Callable[[], float | None] = lambda: None) -> None:
    """Await ``work()`` again and again, ``interval`` seconds (> 0) after the
    start and after each pass ends, until ``stopping`` is set: at once if it
    is set during a pause, else after the pass under way. ``sooner()`` may
    shorten a pause: the seconds until work is known to be due (None:
    nothing known), never below ``MIN_PAUSE``. A pass longer than the
    interval is no fault, and the next one waits after it as any other.
    Exceptions of ``work`` propagate."""
    while not stopping.is_set():
        pause = interval
        due = sooner()
        if due is not None:
            pause = min(interval, max(MIN_PAUSE, due))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause)
        if stopping.is_set():
            return
        await work()


async def deadline_pass(engine: Engine, sink: KafkaSink, stopping: asyncio.Event,
                        on_slice: Callable[[float], None] | None = None) -> None:
    """One timer pass: decide what the watermark has reached, in slices of
    ``settings.timer_batch`` due leads per partition, handing each slice's
    records to the producer and yielding to the event loop between slices,
    so that a burst of due clocks never stalls consumption for longer than
    a slice. Stops early when ``stopping`` is set. ``on_slice(seconds)``
    is told how long each slice took (the benchmarks keep the longest)."""
    loop = asyncio.get_running_loop()
    while not stopping.is_set():
        started = loop.time()
        engine.tick()
        await sink.drain()
        if on_slice is not None:
            on_slice(loop.time() - started)
        if not engine.pending():
            break
        await asyncio.sleep(0)


def next_due_s(engine: Engine) -> float | None:
    """Seconds until the engine's next deadline bucket falls due (negative:
    already due), None when nothing is known: what ``every``'s ``sooner``
    asks, so that a breach is decided within about a bucket of its
    deadline plus the allowed lateness, not up to an interval later."""
    due = engine.next_due_wall_us()
    return None if due is None else (due - engine.wall_us()) / 1_000_000
