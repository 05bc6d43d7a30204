"""streams.index.DeadlineIndex: 100 ms buckets, due strictly after every
wake time in a bucket, limits, and a property test against a naive model.

The rule, from the class docstring: a lead waking at ``wake`` (µs) sits in
bucket ``k = wake // BUCKET_US + 1`` and is due once the watermark reaches
``k * BUCKET_US``, i.e. popped by ``pop_due(w)`` iff ``(wake // B + 1) * B <= w``.
The tests count in buckets: ``S`` is one bucket.
"""

from __future__ import annotations

import heapq

from hypothesis import given, settings
from hypothesis import strategies as st

from leadsla.streams.index import BUCKET_US, DeadlineIndex

S = BUCKET_US  # one bucket


def due_at(wake: int) -> int:
    return (wake // BUCKET_US + 1) * BUCKET_US


def test_a_bucket_is_a_tenth_of_a_second() -> None:
    # A deadline is found at most one bucket after the watermark passed it.
    assert BUCKET_US == 100_000


def test_empty_index() -> None:
    idx = DeadlineIndex()
    assert len(idx) == 0
    assert idx.next_due_us() is None
    assert idx.pop_due(10**15, 100) == []


def test_schedule_len_and_next_due() -> None:
    idx = DeadlineIndex()
    idx.schedule("a", 5 * S + S // 4)
    idx.schedule("b", 3 * S)
    idx.schedule("c", 3 * S + (S - 1))
    assert len(idx) == 3
    # b and c share the bucket [3 s, 4 s): due at 4 s.
    assert idx.next_due_us() == 4 * S


def test_wake_exactly_on_a_bucket_boundary_is_not_due_at_that_watermark() -> None:
    idx = DeadlineIndex()
    idx.schedule("a", 7 * S)
    assert idx.pop_due(7 * S, 10) == []
    assert idx.pop_due(8 * S - 1, 10) == []
    assert len(idx) == 1
    assert idx.pop_due(8 * S, 10) == ["a"]
    assert len(idx) == 0
    assert idx.next_due_us() is None


def test_pop_due_only_returns_buckets_strictly_past() -> None:
    idx = DeadlineIndex()
    idx.schedule("early", 1 * S + 10)
    idx.schedule("edge", 2 * S)
    idx.schedule("late", 2 * S + S // 2)
    idx.schedule("later", 9 * S)
    assert idx.pop_due(2 * S, 10) == ["early"]
    assert sorted(idx.pop_due(3 * S, 10)) == ["edge", "late"]
    assert idx.pop_due(9 * S + (S - 1), 10) == []
    assert idx.next_due_us() == 10 * S
    assert idx.pop_due(10 * S, 10) == ["later"]


def test_reschedule_moves_the_lead() -> None:
    idx = DeadlineIndex()
    idx.schedule("a", 1 * S)
    idx.schedule("b", 1 * S + 1)
    idx.schedule("a", 20 * S)  # moved later
    assert len(idx) == 2
    assert idx.pop_due(2 * S, 10) == ["b"]
    assert idx.next_due_us() == 21 * S
    idx.schedule("a", 0)  # moved earlier again
    assert idx.next_due_us() == 1 * S
    assert idx.pop_due(1 * S, 10) == ["a"]
    assert len(idx) == 0
    assert idx.pop_due(10**12, 10) == []  # the stale bucket of 21 buckets is gone


def test_reschedule_into_the_same_bucket_is_a_no_op() -> None:
    idx = DeadlineIndex()
    idx.schedule("a", 1 * S + 1)
    idx.schedule("a", 1 * S + (S - 1))
    assert len(idx) == 1
    assert idx.pop_due(2 * S, 10) == ["a"]


def test_clear_with_none() -> None:
    idx = DeadlineIndex()
    idx.schedule("a", 1 * S)
    idx.schedule("b", 1 * S)
    idx.schedule("a", None)
    idx.schedule("never-scheduled", None)
    assert len(idx) == 1
    assert idx.pop_due(100 * S, 10) == ["b"]
    idx.schedule("b", None)  # not in the index any more
    assert len(idx) == 0
    assert idx.next_due_us() is None


def test_bucket_emptied_then_refilled() -> None:
    idx = DeadlineIndex()
    idx.schedule("a", 5 * S)
    idx.schedule("a", None)  # the bucket's heap entry goes stale
    assert idx.next_due_us() is None
    idx.schedule("b", 5 * S + 1)  # same bucket again
    idx.schedule("c", 2 * S)
    assert idx.next_due_us() == 3 * S
    assert idx.pop_due(6 * S, 10) == ["c", "b"]
    assert len(idx) == 0
    assert idx.next_due_us() is None


def test_limit_is_honoured_and_the_rest_pops_next_call() -> None:
    idx = DeadlineIndex()
    leads = [f"L{i}" for i in range(7)]
    for i, lead in enumerate(leads):
        idx.schedule(lead, (i % 2) * S + i)  # two buckets: due at 1 and 2 buckets
    got1 = idx.pop_due(5 * S, 3)
    assert len(got1) == 3
    assert len(idx) == 4
    got2 = idx.pop_due(5 * S, 3)
    assert len(got2) == 3
    got3 = idx.pop_due(5 * S, 3)
    assert len(got3) == 1
    assert idx.pop_due(5 * S, 3) == []
    assert sorted(got1 + got2 + got3) == leads
    # Earlier buckets come first: the 4 leads of the first bucket before the 3 of the second.
    assert set(got1) | {got2[0]} == {"L0", "L2", "L4", "L6"}
    assert len(idx) == 0


def test_limit_stops_inside_a_bucket_that_then_stays_due() -> None:
    idx = DeadlineIndex()
    for i in range(5):
        idx.schedule(f"L{i}", 3 * S)
    first = idx.pop_due(4 * S, 2)
    assert len(first) == 2
    assert idx.next_due_us() == 4 * S
    rest = idx.pop_due(4 * S, 10)
    assert sorted(first + rest) == [f"L{i}" for i in range(5)]


def test_negative_wake_times() -> None:
    idx = DeadlineIndex()
    idx.schedule("old", -(10**15) - 1)
    assert idx.next_due_us() == (-(10**15) - 1) // S * S + S
    assert idx.pop_due(-(10**15), 1) == ["old"]


# -- property: the index equals a dict lead -> wake ------------------------------

leads = st.sampled_from([f"L{i}" for i in range(12)])
wakes = st.one_of(st.none(), st.integers(min_value=-5 * S, max_value=30 * S))
ops = st.lists(st.tuples(leads, wakes), max_size=60)


@settings(max_examples=300, deadline=None, database=None)
@given(ops=ops, watermarks=st.lists(st.integers(min_value=-6 * S, max_value=32 * S), min_size=1, max_size=4),
       limit=st.integers(min_value=1, max_value=15))
def test_matches_a_naive_model(ops: list[tuple[str, int | None]], watermarks: list[int], limit: int) -> None:
    idx = DeadlineIndex()
    model: dict[str, int] = {}
    for lead, wake in ops:
        idx.schedule(lead, wake)
        if wake is None:
            model.pop(lead, None)
        else:
            model[lead] = wake
    assert len(idx) == len(model)
    for w in sorted(watermarks):
        expected_next = min((due_at(x) for x in model.values()), default=None)
        assert idx.next_due_us() == expected_next
        due = {lead for lead, wake in model.items() if due_at(wake) <= w}
        popped: list[str] = []
        while True:
            batch = idx.pop_due(w, limit)
            assert len(batch) <= limit
            if not batch:
                break
            # Bucket order: nothing in a batch is due later than anything left due.
            left = {lead: due_at(model[lead]) for lead in due - set(popped) - set(batch)}
            assert all(due_at(model[b]) <= min(left.values(), default=due_at(model[b])) for b in batch)
            popped += batch
        assert len(popped) == len(set(popped))
        assert set(popped) == due
        for lead in popped:
            del model[lead]
        assert len(idx) == len(model)
        assert all(due_at(wake) > w for wake in model.values())


class ReferenceIndex(DeadlineIndex):
    """``pop_due`` as it was first written (one lead at a time through
    ``next_due_us``): the order leads leave in must not change, since the
    timer decides them, and counts their metrics, in that order."""

    def pop_due(self, watermark_us: int, limit: int) -> list[str]:
        out: list[str] = []
        while len(out) < limit:
            due = self.next_due_us()
            if due is None or due > watermark_us:
                break
            key = self._heap[0]
            bucket = self._buckets[key]
            while bucket and len(out) < limit:
                lead = bucket.pop()
                del self._where[lead]
                out.append(lead)
            if not bucket:
                del self._buckets[key]
                heapq.heappop(self._heap)
        return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("schedule"), st.integers(0, 40), st.one_of(st.none(), st.integers(-3 * S, 30 * S))),
    st.tuples(st.just("pop"), st.integers(-2 * S, 32 * S), st.integers(1, 12)),
), max_size=150))
def test_pop_due_leaves_in_the_reference_order(ops: list[tuple[str, int, int | None]]) -> None:
    idx, ref = DeadlineIndex(), ReferenceIndex()
    for op, a, b in ops:
        if op == "schedule":
            idx.schedule(f"lead-{a}", b)
            ref.schedule(f"lead-{a}", b)
        else:
            assert b is not None
            assert idx.pop_due(a, b) == ref.pop_due(a, b)
        assert len(idx) == len(ref) and idx.next_due_us() == ref.next_due_us()
