"""Hostile input for a real worker: a seeded stream of ``lead-events`` records
(random bytes, truncated and mutated events, every size limit ± 1, deep
nesting, absurd timestamps, lone surrogates, NUL bytes, wrong keys,
duplicates, unknown types) and, next to each, what the contract says may
become of it.

Each record carries ``expect``: the outcomes allowed for it, ``accepted``,
``duplicate`` or a dead-letter reason. One outcome where the contract leaves
no choice; several where it does (a byte flip may or may not leave a valid
event). Every record's (key, value) is unique, except the exact re-sends
made as duplicates, so a dead letter names the record it came from."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from .kafka import iso

ACCEPTED, DUPLICATE = "accepted", "duplicate"
MALFORMED, INVALID, UNKNOWN_TYPE, TOO_LARGE = "malformed", "invalid", "unknown_type", "too_large"
PROCESSING_ERROR = "processing_error"
REASONS = frozenset({MALFORMED, INVALID, UNKNOWN_TYPE, TOO_LARGE, PROCESSING_ERROR})

TYPES = ("lead.created", "lead.mql", "lead.handed_off", "lead.contact_attempt", "lead.connected", "lead.accepted",
         "lead.qualified", "lead.disqualified", "lead.recycled", "opportunity.created", "deal.won", "deal.lost")
TEAMS = ("emea", "na_east", "na_west", "apac", "latam")
# A byte flip leaves the size as it was and the lead its own: anything but a
# duplicate or too_large.
FLIPPED = frozenset({ACCEPTED, MALFORMED, INVALID, UNKNOWN_TYPE})
# Deeper than any JSON parser's recursion limit: refused, as one or the other.
TOO_DEEP = frozenset({MALFORMED, INVALID})
DEPTH = 10_000
# Under the test producer's 1,000,000-byte request limit, with room for the
# key and the batch framing (and under the worker's, so dead letters go whole).
BIG_MAX = 900_000


@dataclass(frozen=True, slots=True)
class Rec:
    key: bytes | None
    value: bytes | None
    expect: frozenset[str]
    kind: str

    @property
    def certain(self) -> str | None:
        """The one allowed outcome, or None where several are."""
        return next(iter(self.expect)) if len(self.expect) == 1 else None


def one(outcome: str) -> frozenset[str]:
    return frozenset({outcome})


class Hostile:
    """``records(n)``: ``n`` records, the same for the same ``seed`` and
    ``now`` (timestamps are relative to ``now``). ``limit`` is the worker's
    LEADSLA_MAX_EVENT_BYTES (key plus value), ``skew`` its LEADSLA_MAX_CLOCK_SKEW."""

    def __init__(self, seed: int, now: datetime, limit: int = 64 * 1024, skew: timedelta = timedelta(minutes=15)) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.limit = limit
        self.skew = skew
        self.n = 0
        self.used: set[tuple[bytes | None, bytes | None]] = set()
        # Pool leads: several valid events each, the source of duplicates.
        self.pool: dict[str, list[tuple[bytes, bytes, dict[str, Any]]]] = {}
        self.leads: list[str] = []  # the pool's leads, in order of creation

    # -- building blocks ------------------------------------------------------

    def uid(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n:07d}"

    def when(self) -> str:
        """A past instant of the last six hours."""
        return iso(self.now - timedelta(seconds=self.rng.randint(60, 6 * 3600)))

    def fields(self, lead: str, **over: Any) -> dict[str, Any]:
        """A valid event of ``lead`` (a fresh event id), ``over`` on top."""
        rng = self.rng
        etype = rng.choice(TYPES)
        ev: dict[str, Any] = {"event_id": self.uid("e"), "lead_id": lead, "type": etype, "occurred_at": self.when()}
        if rng.random() < 0.7:
            ev["team"] = rng.choice(TEAMS)
        if rng.random() < 0.5:
            ev["rep"] = f"rep-{rng.randint(1, 40):02d}"
        if rng.random() < 0.3:
            ev["source"] = rng.choice(("marketing", "sales"))
        if etype == "lead.contact_attempt":
            ev["channel"] = rng.choice(("call", "email", "social"))
        if etype in ("opportunity.created", "deal.won") and rng.random() < 0.8:
            ev["amount"] = round(rng.uniform(0, 100_000), 2)
            ev["currency"] = rng.choice(("EUR", "USD", "GBP"))
        if rng.random() < 0.3:
            ev["attributes"] = {"form": rng.choice(("demo_request", "webinar", "ebook")), "score": str(rng.randint(0, 99))}
        ev.update(over)
        return ev

    def rec(self, key: bytes | None, value: bytes | None, expect: frozenset[str], kind: str, *,
            again: bool = False) -> Rec:
        if not again:
            assert (key, value) not in self.used, f"generator made the same record twice ({kind})"
            self.used.add((key, value))
        return Rec(key, value, expect, kind)

    def unique(self, make: Callable[[], tuple[bytes | None, bytes | None]], expect: frozenset[str], kind: str) -> Rec:
        """A record from ``make``, drawn again while it repeats an earlier one."""
        while True:
            key, value = make()
            if (key, value) not in self.used:
                return self.rec(key, value, expect, kind)

    def fresh(self, prefix: str = "u", **over: Any) -> tuple[bytes, dict[str, Any]]:
        """A valid event of a lead of its own: (key, fields)."""
        lead = over.pop("lead_id", None) or self.uid(prefix)
        return lead.encode(), self.fields(lead, **over)

    def padded(self, total: int, key: bytes | None, ev: dict[str, Any], pad: str = "x") -> bytes:
        """``ev`` with an ignored extra field that makes key plus value exactly
        ``total`` bytes (``pad`` one character of 1–4 UTF-8 bytes)."""
        ev = {**ev, "notes": ""}
        room = total - len(key or b"") - len(orjson.dumps(ev))
        width = len(pad.encode())
        ev["notes"] = pad * (room // width) + "x" * (room % width)
        value = orjson.dumps(ev)
        assert len(value) + len(key or b"") == total
        return value

    # -- the categories -------------------------------------------------------

    def valid(self) -> Rec:
        """A valid event of a pool lead (at most 20 each, far below the 64
        event ids a lead's dedupe memory keeps)."""
        if not self.pool or (len(self.pool) < 5000 and self.rng.random() < 0.35):
            lead = self.uid("lead")
            self.pool[lead] = []
            self.leads.append(lead)
        else:
            lead = self.rng.choice(self.leads)
            if len(self.pool[lead]) >= 20:
                return self.valid()
        ev = self.fields(lead)
        key, value = lead.encode(), orjson.dumps(ev)
        self.pool[lead].append((key, value, ev))
        return self.rec(key, value, one(ACCEPTED), "valid")

    def duplicate(self) -> Rec:
        """An event id its lead has seen: the same bytes again, or other
        fields (still valid) under the same id."""
        lead = self.rng.choice(self.leads) if self.leads else ""
        if not self.pool.get(lead):  # only a lead just made has none yet
            return self.valid()
        key, value, ev = self.rng.choice(self.pool[lead])
        if self.rng.random() < 0.5:
            return self.rec(key, value, one(DUPLICATE), "duplicate", again=True)
        other = self.fields(lead, event_id=ev["event_id"])
        return self.unique(lambda: (key, orjson.dumps(other)), one(DUPLICATE), "duplicate, other fields")

    def random_bytes(self) -> Rec:
        rng = self.rng

        def make() -> tuple[bytes | None, bytes | None]:
            value = rng.randbytes(rng.choice((0, 1, 2, 8, 64, rng.randint(0, 2000))))
            key = None if rng.random() < 0.2 else rng.randbytes(rng.randint(0, 40))
            return key, value

        key, value = make()
        while (key, value) in self.used:
            key, value = make()
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None
        # Bytes that happen to be a JSON object are at least not malformed.
        expect = frozenset({INVALID, UNKNOWN_TYPE}) if isinstance(parsed, dict) else one(MALFORMED)
        return self.rec(key, value, expect, "random bytes")

    def truncated(self) -> Rec:
        key, ev = self.fresh("t")
        value = orjson.dumps(ev)
        return self.rec(key, value[: self.rng.randrange(len(value))], one(MALFORMED), "truncated")

    def flipped(self) -> Rec:
        key, ev = self.fresh("f")
        value = bytearray(orjson.dumps(ev))
        for _ in range(self.rng.randint(1, 3)):
            value[self.rng.randrange(len(value))] ^= self.rng.randint(1, 255)
        return self.rec(key, bytes(value), FLIPPED, "byte flips")

    def deleted(self) -> Rec:
        key, ev = self.fresh("d")
        name = self.rng.choice(("event_id", "lead_id", "type", "occurred_at", "team", "rep", "source", "attributes"))
        present = name in ev
        ev.pop(name, None)
        required = name in ("event_id", "lead_id", "type", "occurred_at")
        expect = one(INVALID) if required else one(ACCEPTED)
        return self.rec(key, orjson.dumps(ev), expect, f"without {name}" + ("" if present or required else " (absent)"))

    WRONG: tuple[tuple[str, Any, str], ...] = (
        ("event_id", 123, INVALID), ("event_id", None, INVALID), ("event_id", [], INVALID), ("event_id", {}, INVALID),
        ("event_id", True, INVALID), ("event_id", "", INVALID), ("event_id", "e" * 201, INVALID),
        ("event_id", 1.5, INVALID), ("lead_id", 42, INVALID), ("lead_id", "", INVALID), ("lead_id", None, INVALID),
        ("type", 7, INVALID), ("type", None, INVALID), ("type", ["lead.created"], INVALID),
        ("type", {"name": "lead.created"}, INVALID), ("type", "", UNKNOWN_TYPE),
        ("occurred_at", 1_700_000_000, INVALID), ("occurred_at", 1.7e9, INVALID), ("occurred_at", None, INVALID),
        ("occurred_at", "yesterday", INVALID), ("occurred_at", ["2026-01-01T00:00:00Z"], INVALID),
        ("source", "partner", INVALID), ("source", 1, INVALID), ("team", 5, INVALID), ("team", "t" * 201, INVALID),
        ("rep", ["a"], INVALID), ("region", {"a": "b"}, INVALID), ("channel", False, INVALID),
        ("amount", -1.0, INVALID), ("amount", "10", INVALID), ("amount", None, ACCEPTED),
        ("currency", "eur", INVALID), ("currency", "EURO", INVALID), ("currency", 978, INVALID),
        ("attributes", [], INVALID), ("attributes", "a=b", INVALID), ("attributes", {"a": 1}, INVALID),
        ("attributes", {"a": None}, INVALID), ("attributes", {"a": "v" * 1001}, INVALID),
        ("attributes", {"k" * 201: "v"}, INVALID), ("attributes", {f"k{i}": "v" for i in range(101)}, INVALID),
        ("attributes", {"a": {"b": "c"}}, INVALID),
    )

    def wrong_type(self, which: int | None = None) -> Rec:
        name, bad, reason = self.WRONG[self.rng.randrange(len(self.WRONG)) if which is None else which]
        key, ev = self.fresh("w")
        ev[name] = bad
        return self.rec(key, orjson.dumps(ev), one(reason), f"{name} = {str(bad)[:30]!r}")

    def sizes(self) -> Iterator[Rec]:
        """Every limit ± 1: key plus value at the limit is accepted, one more
        byte is too_large; the no-key, key-only and multibyte variants."""
        cap = self.limit
        for total, expect in ((cap - 1, ACCEPTED), (cap, ACCEPTED), (cap + 1, TOO_LARGE)):
            for pad in ("x", "é", "€", "😀"):
                key, ev = self.fresh("size")
                yield self.rec(key, self.padded(total, key, ev, pad), one(expect), f"key+value {total} ({pad})")
        # No key: too large is found first; at the limit, the missing key.
        key, ev = self.fresh("size")
        yield self.rec(None, self.padded(cap, None, ev), one(INVALID), f"no key, value {cap}")
        key, ev = self.fresh("size")
        yield self.rec(None, self.padded(cap + 1, None, ev), one(TOO_LARGE), f"no key, value {cap + 1}")
        # The key alone over the limit, with a value and with none.
        big_key = self.uid("k").encode() * (cap // 9 + 1)
        big_key = big_key[: cap + 1]
        yield self.rec(big_key, orjson.dumps(self.fields("x")), one(TOO_LARGE), "key of limit + 1")
        yield self.rec(big_key, None, one(TOO_LARGE), "key of limit + 1, no value")
        yield self.rec(big_key[:cap], b"", one(MALFORMED), "key at the limit, empty value")
        yield self.rec(big_key[: cap - 10], b"{}", one(INVALID), "key of limit - 10, {}")
        # A lead id of 200 characters of 4 bytes each is valid; 201 are not.
        for n, expect in ((200, ACCEPTED), (201, INVALID)):
            lead = self.uid("😀")
            lead = lead + "😀" * (n - len(lead))
            yield self.rec(lead.encode(), orjson.dumps(self.fields(lead)), one(expect), f"lead_id of {n} emoji")
            ev = self.fields(self.uid("eid"))
            ev["event_id"] = ev["event_id"] + "é" * (n - len(ev["event_id"]))
            yield self.rec(ev["lead_id"].encode(), orjson.dumps(ev), one(expect), f"event_id of {n} chars")
        # 100 attributes of 1,000 characters: each field in range, the record not.
        key, ev = self.fresh("size", attributes={f"a{i:03d}": "v" * 1000 for i in range(100)})
        yield self.rec(key, orjson.dumps(ev), one(TOO_LARGE), "100 attributes of 1,000 chars")
        key, ev = self.fresh("size", attributes={f"a{i:03d}": "v" * 600 for i in range(100)})
        yield self.rec(key, orjson.dumps(ev), one(ACCEPTED), "100 attributes of 600 chars")

    def big(self) -> Rec:
        """Far over the limit, under the producers' request limit."""
        size = self.rng.randint(self.limit + 2, BIG_MAX)
        key, ev = self.fresh("big")
        value = self.padded(size, key, ev) if self.rng.random() < 0.5 else self.rng.randbytes(size - len(key))
        return self.rec(key, value, one(TOO_LARGE), f"{size} bytes")

    def deep(self) -> Iterator[Rec]:
        n = DEPTH
        for kind, value in (
            ("objects", b'{"a":' * n + b"1" + b"}" * n),
            ("arrays", b"[" * n + b"]" * n),
            ("in attributes", None),
            ("in an extra field", None),
            ("unclosed", b"[" * n),
        ):
            key, ev = self.fresh("deep")
            if kind == "in attributes":
                text = orjson.dumps({**ev, "attributes": "@@"})
                value = text.replace(b'"@@"', b'{"a":' * n + b'"b"' + b"}" * n)
            elif kind == "in an extra field":
                text = orjson.dumps({**ev, "x": "@@"})
                value = text.replace(b'"@@"', b"[" * n + b"]" * n)
            yield self.rec(key, value, TOO_DEEP, f"nested {n} deep: {kind}")

    def timestamps(self) -> Iterator[Rec]:
        future = self.now + self.skew
        table = (
            ("0000-01-01T00:00:00Z", INVALID), ("0001-01-01T00:00:00Z", INVALID),
            ("0001-01-01T00:00:00+23:59", INVALID), ("1900-01-01T00:00:00Z", INVALID),
            ("1969-12-31T23:59:59.999999Z", INVALID), ("1969-12-31T23:59:59-00:00", INVALID),
            ("1970-01-01T00:00:00Z", ACCEPTED), ("1970-01-01T01:00:00+01:00", ACCEPTED),
            ("1970-01-01T00:00:00.000001Z", ACCEPTED),
            ("9999-12-31T23:59:59Z", INVALID), ("9999-12-31T23:59:59.999999-23:59", INVALID),
            ("10000-01-01T00:00:00Z", INVALID), ("-0001-01-01T00:00:00Z", INVALID),
            (iso(future + timedelta(hours=1)), INVALID), (iso(future + timedelta(days=3650)), INVALID),
            (iso(self.now + timedelta(minutes=5)), ACCEPTED),
            ("2026-02-30T00:00:00Z", INVALID), ("2026-06-30T23:59:60Z", INVALID),
            ("2026-01-01T00:00:00+24:00", INVALID), ("2026-01-01T00:00:00+01:60", INVALID),
            ("2026-01-01T00:00:00", INVALID), ("2026-01-01", INVALID), ("", INVALID),
            ("2026-01-01T00:00:00.1234567891Z", INVALID), ("2026-01-01T00:00:00.123456789Z", ACCEPTED),
            ("２０２６-01-01T00:00:00Z", INVALID), ("2026-01-01T00:00:00Z\x00", INVALID),
            (" 2026-01-01T00:00:00Z", INVALID),
        )
        for text, expect in table:
            for etype in ("lead.handed_off", "lead.contact_attempt"):
                key, ev = self.fresh("ts", type=etype, occurred_at=text)
                yield self.rec(key, orjson.dumps(ev), one(expect), f"occurred_at {text!r}")

    def with_text(self, lead_json: bytes, key: bytes | None, ev: dict[str, Any], field: str = "lead_id") -> bytes:
        """``ev`` as JSON with ``field``'s value spelled as the raw JSON text ``lead_json``."""
        return orjson.dumps({**ev, field: "@@"}).replace(b'"@@"', lead_json)

    def surrogates_and_nul(self) -> Iterator[Rec]:
        for i, (text, expect) in enumerate((
            (rb'"\ud800"', frozenset({MALFORMED, INVALID})),
            (rb'"\udc00"', frozenset({MALFORMED, INVALID})),
            (rb'"x\ud800\u0041"', frozenset({MALFORMED, INVALID})),
            (rb'"\udfff\ud800"', frozenset({MALFORMED, INVALID})),
            (b'"\xed\xa0\x80"', one(MALFORMED)),  # a surrogate in UTF-8 bytes
            (b'"\xc0\xaf"', one(MALFORMED)),  # overlong
            (b'"\xff\xfe"', one(MALFORMED)),
            (b'"a\x00b"', one(MALFORMED)),  # a raw control character in a string
        )):
            for field in ("event_id", "lead_id", "team", "type"):
                key, ev = self.fresh("s")
                yield self.rec(key, self.with_text(text, key, ev, field), expect, f"{field} {text!r} ({i})")
        # Escaped, they are text: a surrogate pair and NUL characters are valid.
        key, ev = self.fresh("pair")
        lead = "😀" + ev["lead_id"]
        yield self.rec(lead.encode(), self.with_text(b'"\\ud83d\\ude00' + ev["lead_id"].encode() + b'"', None, ev),
                       one(ACCEPTED), "lead_id with an escaped surrogate pair")
        key, ev = self.fresh("nul")
        lead = "nul\x00" + ev["lead_id"]
        yield self.rec(lead.encode(), orjson.dumps({**ev, "lead_id": lead}), one(ACCEPTED), "NUL in lead_id")
        for field in ("event_id", "team", "rep", "region", "segment"):
            key, ev = self.fresh("nul")
            ev[field] = "a\x00b" + self.uid("")
            yield self.rec(key, orjson.dumps(ev), one(ACCEPTED), f"NUL in {field}")
        key, ev = self.fresh("nul", attributes={"\x00": "\x00\x00"})
        yield self.rec(key, orjson.dumps(ev), one(ACCEPTED), "NUL in attributes")
        # The key's bytes are not the lead id's.
        key, ev = self.fresh("nulkey")
        yield self.rec(key + b"\x00", orjson.dumps(ev), one(INVALID), "NUL after the key")
        key, ev = self.fresh("surkey")
        yield self.rec(key + b"\xed\xa0\x80", orjson.dumps(ev), one(INVALID), "surrogate bytes in the key")
        for n in (1, 100, 5000):
            yield self.rec(self.uid("z").encode(), b"\x00" * n, one(MALFORMED), f"{n} NUL bytes")
        key, ev = self.fresh("trail")
        yield self.rec(key, orjson.dumps(ev) + b"\x00", one(MALFORMED), "NUL after the object")
        key, ev = self.fresh("bom")
        yield self.rec(key, b"\xef\xbb\xbf" + orjson.dumps(ev), one(MALFORMED), "byte order mark")

    def keys(self) -> Iterator[Rec]:
        key, ev = self.fresh("key")
        value = orjson.dumps(ev)
        yield self.rec(None, value, one(INVALID), "no key")
        for kind, bad in (("empty key", b""), ("another lead", b"lead-0000001"), ("newline", key + b"\n"),
                          ("upper case", key.upper()), ("JSON-quoted", b'"' + key + b'"'), ("space", b" " + key)):
            yield self.rec(bad, value, one(INVALID), f"key: {kind}")
        key, ev = self.fresh("kéy")
        yield self.rec(ev["lead_id"].encode("latin-1"), orjson.dumps(ev), one(INVALID), "key: latin-1")

    def wrong_key(self) -> Rec:
        key, ev = self.fresh("wk")
        bad = self.rng.choice((None, b"", key + b"x", key[:-1], self.uid("other").encode()))
        return self.rec(bad, orjson.dumps(ev), one(INVALID), "wrong key")

    def not_objects(self) -> Iterator[Rec]:
        for value, expect in ((b"[]", MALFORMED), (b"null", MALFORMED), (b"1", MALFORMED), (b'"x"', MALFORMED),
                              (b"true", MALFORMED), (b"[{}]", MALFORMED), (b"", MALFORMED), (b" ", MALFORMED),
                              (None, MALFORMED), (b"{}", INVALID), (b'{"type":"lead.created"}', INVALID),
                              (b'{"amount":1e400}', MALFORMED), (b'{"a":NaN}', MALFORMED)):
            yield self.rec(self.uid("no").encode(), value, one(expect), f"value {value!r}")
        # The same field twice: whichever the parser keeps, never a crash.
        key, ev = self.fresh("twice")
        text = orjson.dumps(ev)[:-1] + b',"type":"lead.teleported"}'
        yield self.rec(key, text, frozenset({ACCEPTED, UNKNOWN_TYPE}), "type twice")

    UNKNOWN = ("lead.teleported", "LEAD.CREATED", "lead.created ", " lead.created", "lead.créé", "deal.won\x00",
               "lead", "lead.*", "lead.created\n", "x" * 5000, "lead.handed_off\u200b")

    def unknown_type(self) -> Rec:
        t = self.rng.choice(self.UNKNOWN)
        if self.rng.random() < 0.3:  # the type is looked at before anything else is
            lead = self.uid("ut")
            return self.rec(lead.encode(), orjson.dumps({"type": t}), one(UNKNOWN_TYPE), "unknown type alone")
        key, ev = self.fresh("ut", type=t)
        return self.rec(key, orjson.dumps(ev), one(UNKNOWN_TYPE), f"type {t[:20]!r}")

    # -- the stream -----------------------------------------------------------

    def edge_cases(self) -> list[Rec]:
        out: list[Rec] = []
        for part in (self.sizes(), self.deep(), self.timestamps(), self.surrogates_and_nul(), self.keys(),
                     self.not_objects()):
            out.extend(part)
        out.extend(self.wrong_type(i) for i in range(len(self.WRONG)))
        out.extend(self.big() for _ in range(5))
        return out

    def records(self, n: int) -> list[Rec]:
        """``n`` records: every edge case once, spread through a random mix
        of the categories (valid events first and throughout, so that
        duplicates have originals to repeat)."""
        edges = self.edge_cases()
        assert len(edges) < n // 2, "too few records for the edge cases"
        mix: list[tuple[float, Callable[[], Rec]]] = [
            (0.34, self.valid), (0.06, self.duplicate), (0.1, self.random_bytes), (0.08, self.truncated),
            (0.14, self.flipped), (0.06, self.deleted), (0.08, self.wrong_type), (0.05, self.wrong_key),
            (0.06, self.unknown_type), (0.0002, self.big),
        ]
        weights = [w for w, _ in mix]
        makers = [m for _, m in mix]
        slots = set(self.rng.sample(range(n // 10, n), len(edges)))
        edge_iter = iter(edges)
        out: list[Rec] = []
        for i in range(n):
            if i in slots:
                out.append(next(edge_iter))
            else:
                out.append(self.rng.choices(makers, weights)[0]())
        return out
