"""The deadline index: which leads of one partition need the watermark's
attention next. O(1) to (re)schedule a lead, O(log b) per due bucket, never a
scan of all open clocks."""

from __future__ import annotations

import heapq

BUCKET_US = 100_000  # 100 ms buckets: a deadline is found at most 0.1 s after it passed


class DeadlineIndex:
    """Leads bucketed by the ``BUCKET_US`` (100 ms) after their next wake-up time.

    A lead is in at most one bucket. A bucket keyed ``k`` holds leads whose wake
    time is in ``[(k-1) B, k B)`` (B = ``BUCKET_US``); it is due once the watermark reaches ``k B``,
    which is strictly after every wake time in it (a breach needs the watermark
    *past* the deadline).
    """

    __slots__ = ("_buckets", "_heap", "_where")

    def __init__(self) -> None:
        self._buckets: dict[int, set[str]] = {}
        self._heap: list[int] = []
        self._where: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._where)

    def schedule(self, lead_id: str, wake_us: int | None) -> None:
        """Set (or with None, clear) the lead's next wake-up."""
        old = self._where.get(lead_id)
        new = None if wake_us is None else wake_us // BUCKET_US + 1
        if old == new:
            return
        if old is not None:
            bucket = self._buckets[old]
            bucket.discard(lead_id)
            if not bucket:
                del self._buckets[old]  # its heap entry is skipped lazily
        if new is None:
            self._where.pop(lead_id, None)
            return
        self._where[lead_id] = new
        target = self._buckets.get(new)
        if target is None:
            self._buckets[new] = {lead_id}
            heapq.heappush(self._heap, new)
        else:
            target.add(lead_id)

    def next_due_us(self) -> int | None:
        """The watermark at which the earliest bucket becomes due."""
        while self._heap and self._heap[0] not in self._buckets:
            heapq.heappop(self._heap)
        return self._heap[0] * BUCKET_US if self._heap else None

    def pop_due(self, watermark_us: int, limit: int) -> list[str]:
        """Remove and return up to ``limit`` leads whose bucket is due, the
        earliest bucket first. A bucket's leads leave in ``set.pop`` order."""
        out: list[str] = []
        heap, buckets, where = self._heap, self._buckets, self._where
        due_key = watermark_us // BUCKET_US  # a bucket keyed k is due once the watermark reaches k * BUCKET_US
        while heap and len(out) < limit:
            key = heap[0]
            bucket = buckets.get(key)
            if bucket is None:  # emptied by schedule: skipped lazily
                heapq.heappop(heap)
                continue
            if key > due_key:
                break
            take = min(len(bucket), limit - len(out))
            popped = [bucket.pop() for _ in range(take)]
            for lead in popped:
                del where[lead]
            out.extend(popped)
            if not bucket:
                del buckets[key]
                heapq.heappop(heap)
        return out
