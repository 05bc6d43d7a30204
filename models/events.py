"""Lead lifecycle events: the input contract (contract §1) as a pydantic model.

Validation is exactly the contract's: required ids and type, an RFC 3339
timestamp with an offset, optional bounded dimensions; unknown top-level fields
are ignored so upstream producers can add fields without breaking the monitor.

``WireEvent`` is the same contract as a msgspec type, for a one-pass typed
decode of the common record; ``LeadEvent`` stays the reference, and says why a
record is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class EventType(StrEnum):
    CREATED = "lead.created"
    MQL = "lead.mql"
    HANDED_OFF = "lead.handed_off"
    CONTACT_ATTEMPT = "lead.contact_attempt"
    CONNECTED = "lead.connected"
    ACCEPTED = "lead.accepted"
    QUALIFIED = "lead.qualified"
    DISQUALIFIED = "lead.disqualified"
    RECYCLED = "lead.recycled"
    OPPORTUNITY_CREATED = "opportunity.created"
    DEAL_WON = "deal.won"
    DEAL_LOST = "deal.lost"


EVENT_TYPES: frozenset[str] = frozenset(t.value for t in EventType)

# RFC 3339 section 5.6: full-date "T" full-time, with a mandatory offset. ASCII
# digits only; a leap second (":60") passes here and is refused by datetime.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:[0-5]\d)",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The instants format_timestamp_us can write: RFC 3339 years are four digits.
MIN_TIMESTAMP_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_DAY_US = 86_400_000_000
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


def parse_timestamp_us(value: str) -> int:
    """RFC 3339 ``date-time`` text (section 5.6) -> epoch microseconds (UTC).

    The offset is mandatory: ``Z``, ``z`` or ``+HH:MM``/``-HH:MM`` (``-00:00``
    reads as UTC). The date and time may be separated by ``T``, ``t`` or a space
    (section 5.6, NOTE). Fractional seconds may have 1 to 9 digits; digits past
    the sixth are dropped, not rounded, which (offsets being whole minutes) is
    the instant rounded down to the microsecond. Leap seconds (``:60``) are
    refused. Years are 0001-9999 as written, so an offset can put the instant
    up to 23:59 outside ``MIN_TIMESTAMP_US``..``MAX_TIMESTAMP_US``.

    Raises ValueError for anything else.
    """
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-11-22T09:15:00Z")
    text = value
    start, end = match.span(1)
    if end - start > 7:  # "." and more than 6 digits: datetime keeps microseconds
        text = text[: start + 7] + text[end:]
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text.replace("t", "T"))
    except ValueError as exc:
        if "offset" in str(exc):  # datetime's own words name its timedelta internals
            raise ValueError("the UTC offset must be between -23:59 and +23:59") from None
        raise
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@lru_cache(maxsize=256)
def _date_prefix(days: int) -> str:
    """``YYYY-MM-DDT`` of the UTC day ``days`` after 1970-01-01; the year zero-padded."""
    d = date.fromordinal(_EPOCH_ORDINAL + days)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T"


# The pieces of a formatted instant, written once: ``HH:MM:`` by minute of
# the day, ``SS`` by second, ``.fffZ`` by millisecond; and the date part by
# UTC day, in a dict (a lookup in C; the lru_cache's call costs more than
# the rest of the formatting). An outcome record formats four instants, so
# these make up most of its cost.
_HH_MM = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
_SS = tuple(f"{s:02d}" for s in range(60))
_MILLIS_Z = tuple(f".{ms:03d}Z" for ms in range(1000))
_DATES: dict[int, str] = {}
_DATES_KEPT = 1024  # days; past that the cache starts again


def format_timestamp_us(us: int) -> str:
    """Epoch microseconds (UTC) -> RFC 3339 ``date-time`` text (section 5.6) in UTC.

    The shape is ``YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z``: always a four-digit
    year and ``Z``; no fraction on a whole second, milliseconds (3 digits) when
    the instant is a whole millisecond, otherwise microseconds (6 digits).
    ``parse_timestamp_us`` reads every result back to ``us``.

    Raises ValueError when ``us`` is outside ``MIN_TIMESTAMP_US``..``MAX_TIMESTAMP_US``
    (0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z), which RFC 3339 cannot write.
    """
    if not MIN_TIMESTAMP_US <= us <= MAX_TIMESTAMP_US:
        raise ValueError(
            f"cannot format {us} epoch microseconds as RFC 3339: "
            "outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z"
        )
    # Fields by hand: strftime("%Y") does not zero-pad years before 1000 on
    # every platform.
    days, us_of_day = divmod(us, _DAY_US)
    day = _DATES.get(days)
    if day is None:
        if len(_DATES) >= _DATES_KEPT:
            _DATES.clear()
        day = _DATES[days] = _date_prefix(days)
    secs, micro = divmod(us_of_day, 1_000_000)
    minutes, sec = divmod(secs, 60)
    if micro == 0:
        return f"{day}{_HH_MM[minutes]}{_SS[sec]}Z"
    if micro % 1000:
        return f"{day}{_HH_MM[minutes]}{_SS[sec]}.{micro:06d}Z"
    return f"{day}{_HH_MM[minutes]}{_SS[sec]}{_MILLIS_Z[micro // 1000]}"


def _timestamp(value: Any) -> int:
    return parse_timestamp_us(value)


# The contract's bounds, in characters (attributes: entries).
ID_CHARS, DIMENSION_CHARS, ATTRIBUTE_KEY_CHARS, ATTRIBUTE_VALUE_CHARS, ATTRIBUTES = 200, 200, 200, 1000, 100
Id = Annotated[str, Field(min_length=1, max_length=ID_CHARS)]
Dim = Annotated[str, Field(max_length=DIMENSION_CHARS)]


class LeadEvent(BaseModel):
    """One validated lead event. ``occurred_at`` is epoch microseconds (UTC)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event_id: Id
    lead_id: Id
    type: Annotated[EventType, Field(strict=False)]
    occurred_at: Annotated[int, BeforeValidator(_timestamp)]
    source: Literal["marketing", "sales"] | None = None
    segment: Dim | None = None
    persona: Dim | None = None
    team: Dim | None = None
    rep: Dim | None = None
    region: Dim | None = None
    channel: Dim | None = None
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    attributes: dict[
        Annotated[str, Field(max_length=ATTRIBUTE_KEY_CHARS)], Annotated[str, Field(max_length=ATTRIBUTE_VALUE_CHARS)]
    ] = Field(default_factory=dict, max_length=ATTRIBUTES)

    def dimension(self, name: str) -> str | None:
        """A matching dimension: a top-level field or ``attributes.<key>``."""
        if name.startswith("attributes."):
            return self.attributes.get(name[len("attributes.") :])
        value = getattr(self, name, None)
        return None if value is None else str(value)


MATCH_FIELDS = ("source", "segment", "persona", "team", "rep", "region", "channel", "currency")


WireId = Annotated[str, Meta(min_length=1, max_length=ID_CHARS)]
WireDim = Annotated[str, Meta(max_length=DIMENSION_CHARS)]
WireAttributes = Annotated[
    dict[Annotated[str, Meta(max_length=ATTRIBUTE_KEY_CHARS)], Annotated[str, Meta(max_length=ATTRIBUTE_VALUE_CHARS)]],
    Meta(max_length=ATTRIBUTES),
]


class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    """``LeadEvent``'s contract as a msgspec type, for decoding a record's JSON
    in one pass (``msgspec.json.Decoder(WireEvent)``).

    It accepts a subset of what ``LeadEvent`` accepts, never more: a record
    with a field the contract does not name is refused here (the JSON inside
    it is only skipped, not checked as strictly as a full parse checks it),
    and so is anything else unusual; such a record goes the ``LeadEvent`` way,
    which accepts it or says why not. ``occurred_at`` is the text as sent; an
    optional field the record did not carry is ``UNSET``."""

    event_id: WireId
    lead_id: WireId
    type: EventType
    occurred_at: str
    source: Literal["marketing", "sales"] | None | UnsetType = UNSET
    segment: WireDim | None | UnsetType = UNSET
    persona: WireDim | None | UnsetType = UNSET
    team: WireDim | None | UnsetType = UNSET
    rep: WireDim | None | UnsetType = UNSET
    region: WireDim | None | UnsetType = UNSET
    channel: WireDim | None | UnsetType = UNSET
    # JSON has no NaN or infinity, and msgspec refuses a number too large for a
    # float, so every amount decoded here is finite.
    amount: Annotated[float, Meta(ge=0)] | None | UnsetType = UNSET
    # \A..\Z: msgspec searches with Python's re, whose "$" also matches before
    # a final newline; pydantic's "^[A-Z]{3}$" does not.
    currency: Annotated[str, Meta(pattern=r"\A[A-Z]{3}\Z")] | None | UnsetType = UNSET
    attributes: WireAttributes | UnsetType = UNSET

    def event(self) -> LeadEvent:
        """The ``LeadEvent`` that ``LeadEvent.model_validate`` builds from the
        same record: equal values, the same ``model_fields_set``.

        Raises ValueError when ``occurred_at`` is not an RFC 3339 timestamp."""
        carried: dict[str, Any] = msgspec.to_builtins(self)  # UNSET fields are left out
        values = _ABSENT.copy()  # every field, in LeadEvent's order
        values.update(carried)
        values["type"] = self.type  # to_builtins wrote the enum's value
        values["occurred_at"] = parse_timestamp_us(self.occurred_at)
        if self.attributes is UNSET:
            values["attributes"] = {}
        return _validated_event(values, set(carried))


_ABSENT: dict[str, Any] = dict.fromkeys(LeadEvent.model_fields)
_set = object.__setattr__


def _validated_event(values: dict[str, Any], fields_set: set[str]) -> LeadEvent:
    """A ``LeadEvent`` of values that already meet the contract, not checked
    again: what ``LeadEvent.model_construct`` sets, without its per-field loop,
    which costs more than the whole decode. ``values`` holds every field in
    order; ``fields_set`` names those the record carried. tests/models compare
    the result with ``model_validate``'s, whatever pydantic's version."""
    event = object.__new__(LeadEvent)
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", fields_set)
    _set(event, "__pydantic_extra__", None)  # extra="ignore" keeps none
    _set(event, "__pydantic_private__", None)
    return event
