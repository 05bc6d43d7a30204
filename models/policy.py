"""The SLA as data: the policies file (contract §3) parsed into a PolicySet.

The minimal contract form (name, start, stop, goal) keeps meaning exactly what
the contract says: wall-clock time, no pauses, every lead matches. Everything
else is an addition documented in the README: business-hours calendars, pause
and resume events, event selectors with attribute conditions, per-segment
matching, at-risk warnings, objectives and the restart rule.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadsla.models.calendar import ALWAYS_OPEN, MAX_CLOSED_DAYS, WEEKDAYS, Calendar
from leadsla.models.durations import DurationError, format_duration_us, parse_duration_us
from leadsla.models.events import EVENT_TYPES, MATCH_FIELDS, LeadEvent

MAX_POLICY_FILE_BYTES = 1 << 20
# Goals and pauses beyond ten years are typing mistakes, and a deadline past
# year 9999 could not even be written in an outcome record.
MAX_DURATION_US = 3650 * 86_400 * 1_000_000
MAX_BUSINESS_DAYS = 2600  # ten years of five-day weeks
_BUSINESS_DAYS = re.compile(r"(\d+)\s*bd")
MAX_POLICY_VALUES = 100_000  # keys, values and items, aliases expanded; real files hold hundreds
_NAME = r"^[a-z0-9_]+$"
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class PolicyError(ValueError):
    """A policies file that cannot be used; the message names the place."""


# -- the file's schema ---------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MatchValue = str | list[str]


def _check_match(match: dict[str, MatchValue]) -> dict[str, MatchValue]:
    for key in match:
        if key not in MATCH_FIELDS and not key.startswith("attributes."):
            prefix, dot, rest = key.partition(".")
            if dot and rest and difflib.get_close_matches(prefix, ["attributes"]):
                close = [f"attributes.{rest}"]  # attribute.tier, attrs.tier
            else:
                close = difflib.get_close_matches(key, MATCH_FIELDS, n=1)
            if close:
                raise ValueError(f"cannot match on {key!r}; did you mean {close[0]!r}?")
            raise ValueError(
                f"cannot match on {key!r}: use one of {', '.join(MATCH_FIELDS)} or attributes.<name>"
            )
    return match


class SelectorSpec(_Strict):
    """An event type, optionally narrowed by dimension conditions."""

    type: str
    match: dict[str, MatchValue] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in EVENT_TYPES:
            raise ValueError(f"unknown event type {v!r}; known: {', '.join(sorted(EVENT_TYPES))}")
        return v

    _m = field_validator("match")(_check_match)


Selectors = list[SelectorSpec]


def _selectors(v: Any) -> Any:
    if v is None:
        return []
    if isinstance(v, (str, dict)):
        v = [v]
    if isinstance(v, list):
        return [{"type": x} if isinstance(x, str) else x for x in v]
    return v


class CalendarSpec(_Strict):
    timezone: str = "UTC"
    hours: dict[str, str | list[str]]
    holidays: list[date] = Field(default_factory=list)


@dataclass(frozen=True)
class BusinessDays:
    """A goal written in business days (``3bd``): the same business instant
    ``days`` open days of the policy's calendar later."""

    days: int


class PolicySpec(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    name: Annotated[str, Field(pattern=_NAME, max_length=100)]
    description: str = ""
    start: Selectors
    stop: Selectors
    goal: int | BusinessDays  # microseconds, parsed from a duration string; or Nbd
    calendar: str = "24x7"
    pause: Selectors = Field(default_factory=list)
    resume: Selectors = Field(default_factory=list)
    match: dict[str, MatchValue] = Field(default_factory=dict)
    at_risk: Annotated[float, Field(gt=0, lt=1)] = 0.8
    objective: Annotated[float, Field(gt=0, le=1)] = 0.95
    on_restart: Literal["keep", "restart"] = "keep"
    min_decisions: Annotated[int, Field(ge=1)] = 10
    max_pause: int | None = None  # microseconds, parsed from a duration string
    # Follow-up depth (contract §8): met on the min_attempts-th attempt or a
    # stop (reached), breached when the goal passes first or on a give_up.
    attempt: Selectors = Field(default_factory=list)
    min_attempts: Annotated[int, Field(ge=1, le=1000)] | None = None
    give_up: Selectors = Field(default_factory=list)
    # Accountability (contract §9): the period each team's level is judged
    # over, missed periods in a row before review, points for a met period.
    period: Literal["month", "week", "quarter"] = "month"
    period_timezone: str = "UTC"
    review_after: Annotated[int, Field(ge=1, le=1000)] = 3
    points: Annotated[int, Field(ge=0, le=1_000_000)] = 1

    _sel = field_validator("start", "stop", "pause", "resume", "attempt", "give_up", mode="before")(_selectors)
    _m = field_validator("match")(_check_match)

    @field_validator("goal", mode="before")
    @classmethod
    def _goal(cls, v: Any) -> int | BusinessDays:
        if isinstance(v, str) and (bd := _BUSINESS_DAYS.fullmatch(v.strip())):
            days = int(bd.group(1))
            if not 1 <= days <= MAX_BUSINESS_DAYS:
                raise ValueError(f"a goal in business days must be 1bd to {MAX_BUSINESS_DAYS}bd")
            return BusinessDays(days)
        try:
            us = parse_duration_us(v)
        except DurationError as exc:
            raise ValueError(str(exc)) from None
        if us <= 0:
            raise ValueError("goal must be longer than zero")
        if us > MAX_DURATION_US:
            raise ValueError("goal must be at most 3650d (ten years)")
        return us

    @field_validator("max_pause", mode="before")
    @classmethod
    def _max_pause(cls, v: Any) -> int | None:
        if v is None:
            return None
        try:
            us = parse_duration_us(v)
        except DurationError as exc:
            raise ValueError(str(exc)) from None
        if us <= 0:
            raise ValueError("max_pause must be longer than zero")
        if us > MAX_DURATION_US:
            raise ValueError("max_pause must be at most 3650d (ten years)")
        return us

    @model_validator(mode="after")
    def _roles(self) -> PolicySpec:
        if not self.start:
            raise ValueError("start needs at least one event type")
        if not self.stop:
            raise ValueError("stop needs at least one event type")
        if bool(self.pause) != bool(self.resume):
            raise ValueError("pause and resume go together: give both or neither")
        if self.max_pause is not None and not self.pause:
            raise ValueError("max_pause needs pause and resume events")
        if (self.min_attempts is None) != (not self.attempt):
            raise ValueError("attempt and min_attempts go together: a depth policy gives both")
        if self.give_up and self.min_attempts is None:
            raise ValueError("give_up belongs to a depth policy: give attempt and min_attempts too")
        return self


class ValueSpec(_Strict):
    """A target's quality weighting: a lead is worth ``weights[its value of
    by]``, or ``default`` for a missing or other value."""

    by: str
    weights: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(default_factory=dict)
    default: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0

    @field_validator("by")
    @classmethod
    def _dimension(cls, v: str) -> str:
        _check_match({v: ""})
        return v


class TargetSpec(_Strict):
    """Marketing's delivery target (contract §7)."""

    name: Annotated[str, Field(pattern=_NAME, max_length=100)]
    description: str = ""
    deliver: Selectors
    goal: Annotated[int, Field(ge=1)]  # leads per period
    value: ValueSpec | None = None
    value_goal: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    period: Literal["month", "week", "quarter"] = "month"
    timezone: str = "UTC"
    match: dict[str, MatchValue] = Field(default_factory=dict)
    pace_margin: Annotated[float, Field(ge=0, lt=1)] = 0.1
    review_after: Annotated[int, Field(ge=1, le=1000)] = 3
    points: Annotated[int, Field(ge=0, le=1_000_000)] = 1

    _sel = field_validator("deliver", mode="before")(_selectors)
    _m = field_validator("match")(_check_match)

    @model_validator(mode="after")
    def _whole(self) -> TargetSpec:
        if not self.deliver:
            raise ValueError("deliver needs at least one event type")
        if self.value_goal is not None and self.value is None:
            raise ValueError("value_goal needs value: how a lead is weighted")
        return self


class PoliciesFile(_Strict):
    calendars: dict[Annotated[str, Field(pattern=_NAME)], CalendarSpec] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    policies: list[dict[str, Any]] = Field(default_factory=list)
    targets: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> PoliciesFile:
        if not self.policies and not self.targets:
            raise ValueError("the file needs a 'policies:' list (or 'targets:'), with at least one entry")
        return self


# -- the compiled form the clocks use ------------------------------------------


@dataclass(frozen=True)
class Selector:
    type: str
    match: tuple[tuple[str, frozenset[str]], ...] = ()

    def matches(self, event: LeadEvent) -> bool:
        return all(event.dimension(k) in vs for k, vs in self.match)


def _roles_of(event: LeadEvent | None, entries: tuple[_RoleEntry, ...]) -> tuple[tuple[str, str], ...]:
    """The (policy name, role) pairs of compiled ``entries`` whose tests the
    event passes (``event`` None: entries without tests)."""
    out: list[tuple[str, str]] = []
    last_i, last_role = -1, ""
    for i, name, role, tests in entries:
        if i == last_i and role == last_role:
            continue  # a role already played (another of its selectors matched)
        if tests is not None and (event is None or not _passes(event, tests)):
            continue
        out.append((name, role))
        last_i, last_role = i, role
    return tuple(out)


def _passes(event: LeadEvent, tests: tuple[tuple[str, frozenset[str]], ...]) -> bool:
    """Does the event pass every (dimension, allowed values) test?"""
    for k, vs in tests:  # noqa: SIM110 (a plain loop: no generator for every event)
        if event.dimension(k) not in vs:
            return False
    return True


def _compile_match(match: dict[str, MatchValue]) -> tuple[tuple[str, frozenset[str]], ...]:
    return tuple(sorted((k, frozenset([v] if isinstance(v, str) else v)) for k, v in match.items()))


START, STOP, PAUSE, RESUME = "start", "stop", "pause", "resume"
ATTEMPT, GIVE_UP = "attempt", "give_up"
ROLES = (START, STOP, PAUSE, RESUME, ATTEMPT, GIVE_UP)
# The order an event's roles for one policy are applied in: a start before
# anything else at its instant, an attempt before a stop (a connect that is
# both counts the attempt, then reaches the lead).
ROLE_ORDER = (START, PAUSE, RESUME, ATTEMPT, STOP, GIVE_UP)


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    goal_us: int
    calendar: Calendar
    selectors: dict[str, tuple[Selector, ...]]
    match: tuple[tuple[str, frozenset[str]], ...]
    at_risk: float
    objective: float
    on_restart: str
    min_decisions: int = 10
    max_pause_us: int | None = None  # a pause longer than this ends by itself
    min_attempts: int | None = None  # set on a depth policy (contract §8)
    period: str = "month"  # judged per period (contract §9): month, week or quarter
    period_timezone: str = "UTC"
    review_after: int = 3
    points: int = 1
    goal_days: int | None = None  # a goal written in business days (Nbd); goal_us is then nominal

    @property
    def is_depth(self) -> bool:
        """A follow-up depth policy: met by reaching the lead or by enough attempts."""
        return self.min_attempts is not None

    @property
    def goal_seconds(self) -> float:
        """The goal in business seconds; for a goal in business days its
        nominal length (``goal_days`` × the calendar's average open day)."""
        return self.goal_us / 1_000_000

    @property
    def goal_text(self) -> str:
        """The goal as a person writes it: ``3bd`` or ``1h30m``."""
        return f"{self.goal_days}bd" if self.goal_days is not None else format_duration_us(self.goal_us)

    def goal_from(self, start_us: int) -> int:
        """The goal in business µs of a clock that starts (or restarts) at
        ``start_us`` (epoch µs): ``goal_us``, or for a goal in business days
        the business time from the start to the same business instant
        ``goal_days`` open days later (it varies with weekends and holidays)."""
        if self.goal_days is None:
            return self.goal_us
        return self.calendar.elapsed(start_us, self.calendar.add_days(start_us, self.goal_days))

    def __post_init__(self) -> None:
        # Per event type, the (role, selector) pairs that can apply, in role
        # order: roles() runs for every event, so it looks at nothing else.
        by_type: dict[str, list[tuple[str, Selector]]] = {}
        for role in ROLE_ORDER:
            for s in self.selectors.get(role, ()):
                by_type.setdefault(s.type, []).append((role, s))
        object.__setattr__(self, "_by_type", {t: tuple(v) for t, v in by_type.items()})
        # What a running clock's deadline depends on, as a 31-bit number a
        # clock keeps: recovery recomputes a clock only when it differs.
        timing = json.dumps(_canonical([self.goal_us, self.goal_days, self.calendar, self.at_risk, self.max_pause_us]),
                            sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "_timing", int.from_bytes(hashlib.sha256(timing.encode()).digest()[:4], "big") >> 1)

    @property
    def timing(self) -> int:
        """A 31-bit digest (never 0) of what decides a running clock's deadline:
        goal, calendar, at-risk share and max_pause. Equal digests, equal
        deadlines (``clock.rebase`` skips such clocks)."""
        return self._timing or 1  # type: ignore[attr-defined]

    def roles(self, event: LeadEvent) -> tuple[str, ...]:
        """The roles this event plays for this policy, in ``ROLE_ORDER``."""
        out: list[str] = []
        candidates: tuple[tuple[str, Selector], ...] = self._by_type.get(event.type, ())  # type: ignore[attr-defined]
        for role, s in candidates:
            if (out and out[-1] == role) or (s.match and not s.matches(event)):
                continue
            if role == START and self.match and not all(event.dimension(k) in vs for k, vs in self.match):
                continue
            out.append(role)
        return tuple(out)

    def types(self) -> frozenset[str]:
        return frozenset(s.type for sels in self.selectors.values() for s in sels)


@dataclass(frozen=True)
class Target:
    """A compiled delivery target (contract §7). ``goal`` is leads per period;
    ``weights`` maps a value of the ``value_by`` dimension to what a lead is
    worth (``value_default`` otherwise)."""

    name: str
    description: str
    selectors: tuple[Selector, ...]
    goal: int
    period: str = "month"
    timezone: str = "UTC"
    match: tuple[tuple[str, frozenset[str]], ...] = ()
    value_by: str | None = None
    weights: tuple[tuple[str, float], ...] = ()
    value_default: float = 0.0
    value_goal: float | None = None
    pace_margin: float = 0.1
    review_after: int = 3
    points: int = 1

    def delivers(self, event: LeadEvent) -> bool:
        """Does this event deliver the lead for this target?"""
        if not any(s.type == event.type and s.matches(event) for s in self.selectors):
            return False
        return all(event.dimension(k) in vs for k, vs in self.match)

    def value_of(self, event: LeadEvent) -> float:
        """What the lead is worth by its delivering event (0 without ``value``)."""
        if self.value_by is None:
            return 0.0
        return dict(self.weights).get(event.dimension(self.value_by) or "", self.value_default)

    def types(self) -> frozenset[str]:
        return frozenset(s.type for s in self.selectors)


# One compiled way an event type can play a role: (policy index, policy name,
# role, the dimension tests that must all pass or None).
_RoleEntry = tuple[int, str, str, tuple[tuple[str, frozenset[str]], ...] | None]


@dataclass(frozen=True)
class PolicySet:
    policies: tuple[Policy, ...]
    calendars: dict[str, Calendar]
    source: str = "<memory>"
    targets: tuple[Target, ...] = ()

    def __post_init__(self) -> None:
        relevant: dict[str, list[int]] = {}
        for i, p in enumerate(self.policies):
            for t in p.types():
                relevant.setdefault(t, []).append(i)
        object.__setattr__(self, "_by_type", {t: tuple(v) for t, v in relevant.items()})
        # roles() runs for every event: per event type, every (policy, role,
        # selector) that can apply, in policy order then ROLE_ORDER, with the
        # dimension tests it needs (the selector's, and the policy's for a
        # start) resolved here once; None where no test is needed.
        # Where no entry of a type needs a test, every event of that type
        # plays the same roles: the answer itself is kept instead.
        compiled: dict[str, list[_RoleEntry]] = {}
        for i, p in enumerate(self.policies):
            for t, candidates in p._by_type.items():  # type: ignore[attr-defined]
                for role, sel in candidates:
                    tests = sel.match + (p.match if role == START else ())
                    compiled.setdefault(t, []).append((i, p.name, role, tests or None))
        by_type: dict[str, tuple[tuple[tuple[str, str], ...] | None, tuple[_RoleEntry, ...]]] = {}
        for t, entries in compiled.items():
            fixed = None if any(e[3] is not None for e in entries) else _roles_of(None, tuple(entries))
            by_type[t] = (fixed, tuple(entries))
        object.__setattr__(self, "_roles_by_type", by_type)
        delivering: dict[str, list[Target]] = {}
        for target in self.targets:
            for t in target.types():
                delivering.setdefault(t, []).append(target)
        object.__setattr__(self, "_targets_by_type", {t: tuple(v) for t, v in delivering.items()})
        object.__setattr__(self, "_by_name", {p.name: p for p in self.policies})

    def targets_for(self, event_type: str) -> tuple[Target, ...]:
        """The targets an event type can deliver for (cheap pre-filter)."""
        return self._targets_by_type.get(event_type, ())  # type: ignore[attr-defined, no-any-return]

    def target(self, name: str) -> Target:
        """A target by name. Raises KeyError."""
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(name)

    def for_type(self, event_type: str) -> tuple[int, ...]:
        """Indexes of the policies an event type can affect (cheap pre-filter)."""
        return self._by_type.get(event_type, ())  # type: ignore[attr-defined, no-any-return]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.policies)

    def by_name(self, name: str) -> Policy:
        """A policy by name. Raises KeyError."""
        return self._by_name[name]  # type: ignore[attr-defined, no-any-return]

    def get(self, name: str) -> Policy | None:
        """A policy by name, or None (a name state written before a reload can still hold)."""
        return self._by_name.get(name)  # type: ignore[attr-defined, no-any-return]

    def roles(self, event: LeadEvent) -> tuple[tuple[str, str], ...]:
        """The (policy name, role) pairs this event plays: policies in file
        order, each one's roles in ``ROLE_ORDER``; the same as
        ``Policy.roles`` of each policy in turn."""
        compiled = self._roles_by_type.get(event.type)  # type: ignore[attr-defined]
        if compiled is None:
            return ()
        fixed, entries = compiled
        return fixed if fixed is not None else _roles_of(event, entries)


def fingerprint(ps: PolicySet) -> str:
    """What the policies mean, as 12 hex digits: the first 48 bits of the
    SHA-256 of a canonical JSON form of every policy and target (calendars,
    goals in µs, selectors, periods…), in file order. Comments, layout,
    ``defaults:`` written out or inherited, quoting and the file's path do
    not change it; any change to what a clock or target does does. Workers
    of one group must all show the same (leadsla_policies_info)."""
    body = json.dumps([_canonical(ps.policies), _canonical(ps.targets)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:12]


# Fields added to Policy after fingerprints were first shown: left out while
# they hold their default, so a file that does not use them keeps its
# fingerprint across an upgrade (no LeadSlaPoliciesDiffer during a rollout).
_ADDED_KEYS = frozenset(("goal_days",))


def _canonical(value: Any) -> Any:
    """JSON-ready and independent of hash order: dataclasses by field,
    sets sorted, dates and times in ISO 8601."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in fields(value)
                if not f.name.startswith("_") and not (f.name in _ADDED_KEYS and getattr(value, f.name) == f.default)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, date | time):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


# -- loading, with positions in errors -------------------------------------------


def read_policies_text(path: Path) -> str:
    """The text of a policies file: UTF-8, at most ``MAX_POLICY_FILE_BYTES``
    bytes. Raises :class:`PolicyError` naming the file when it cannot be read,
    is too large or is not UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policies file: {exc.strerror or exc}") from None
    if len(raw) > MAX_POLICY_FILE_BYTES:
        raise PolicyError(f"{path}: larger than {MAX_POLICY_FILE_BYTES} bytes; is this the right file?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_policies(path: str | Path) -> PolicySet:
    """Read, check and compile a policies file.

    ``path`` is a UTF-8 YAML file of at most ``MAX_POLICY_FILE_BYTES`` bytes.
    Returns the compiled :class:`PolicySet` (``source`` is the path, goals in
    microseconds). Raises :class:`PolicyError` for a file that cannot be read
    or used; see :func:`parse_policies` for the form of the message.
    """
    p = Path(path)
    text = read_policies_text(p)
    return parse_policies(text, source=str(p))


def parse_policies(text: str, source: str = "<policies>") -> PolicySet:
    """Check and compile the text of a policies file.

    ``source`` names the text in messages and becomes ``PolicySet.source``.
    Every refusal is a :class:`PolicyError` whose message is
    ``source:line:col: path: problem``, e.g.
    ``p.yaml:5:11: policies[0].goal: YAML 1.1 reads 1:30 as …``; line and
    column count from 1. Besides the schema, the YAML traps are refused:
    duplicate keys, and values that YAML's implicit typing turned into a
    number, boolean, date or null where text, a duration or a date is meant
    (see the README, "YAML traps leadsla refuses"). A key that is not known
    names the closest known one. A bad value inherited from ``defaults:`` is
    reported at its line under ``defaults:``. Aliases that refer back into
    their own mapping or list, or that expand to more than
    ``MAX_POLICY_VALUES`` values, are refused rather than read for ever.
    """
    reader = _Reader(source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = None if node is None else reader.read(node, ())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise PolicyError(f"{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise PolicyError(f"{source}: mappings and lists nested too deeply") from None
    finally:
        reader.close()
    if node is None:
        raise PolicyError(f"{source}: empty policies file; it needs a 'policies:' list")
    marks = reader.marks

    def where(loc: tuple[Any, ...]) -> str:
        for n in range(len(loc), -1, -1):
            mark = marks.get(tuple(loc[:n]))
            if mark is not None:
                return _position(source, mark)
        return source

    def fail(loc: tuple[Any, ...], msg: str) -> PolicyError:
        return PolicyError(f"{where(loc)}: {_path_text(loc)}: {msg}")

    def validate(
        model: type[BaseModel], value: Any, base: tuple[Any, ...], inherited: frozenset[str] = frozenset()
    ) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            errors = exc.errors()
            # A misspelt key also leaves a required key missing; the spelling
            # is what to fix, so it is reported first.
            err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            loc = _data_path(value, err["loc"])
            # A key the policy took from defaults: is fixed there, so the
            # error points there, not at every policy that inherits it.
            loc = (("defaults",) if loc and loc[0] in inherited else base) + loc
            msg = _plain(err, loc[-1] if loc else "")
            if err["type"] == "extra_forbidden":
                msg = _unknown_key(loc[-1], _known_keys(loc[:-1]))
            elif err["type"].startswith("date"):
                # Pydantic's "invalid character in year" says nothing of the
                # one form that works: name it.
                msg = f"not a date: {err['input']!r}; write it as YYYY-MM-DD, such as 2026-12-25"
            raise fail(loc, msg) from None

    if not isinstance(data, dict):
        raise fail((), "the top level must be a mapping with a 'policies:' list")
    top = validate(PoliciesFile, data, ())
    calendars: dict[str, Calendar] = {"24x7": ALWAYS_OPEN}
    for cname, cspec in top.calendars.items():
        calendars[cname] = _compile_calendar(cname, cspec, lambda loc, m, c=cname: fail(("calendars", c) + loc, m))
    for key in top.defaults:
        if key in _PER_POLICY:
            raise fail(("defaults", key), f"{key!r} cannot be a default: each policy sets its own")
        if key not in _DEFAULTABLE:
            raise fail(("defaults", key), _unknown_key(key, _DEFAULTABLE, "defaults can set"))
    policies = []
    seen: set[str] = set()
    for i, raw in enumerate(top.policies):
        if not isinstance(raw, dict):
            raise fail(("policies", i), "each policy must be a mapping")
        inherited = frozenset(top.defaults) - frozenset(raw)
        spec: PolicySpec = validate(PolicySpec, {**top.defaults, **raw}, ("policies", i), inherited)
        if spec.name in seen:
            raise fail(("policies", i, "name"), f"duplicate policy name {spec.name!r}")
        seen.add(spec.name)
        if spec.calendar not in calendars:
            cal_at = ("defaults", "calendar") if "calendar" in inherited else ("policies", i, "calendar")
            raise fail(cal_at, f"unknown calendar {spec.calendar!r}; defined: {', '.join(sorted(calendars))}")
        if not _known_zone(spec.period_timezone):
            tz_at = ("defaults", "period_timezone") if "period_timezone" in inherited else ("policies", i, "period_timezone")
            raise fail(tz_at, f"unknown IANA time zone {spec.period_timezone!r}")
        cal = calendars[spec.calendar]
        goal = spec.goal
        policies.append(
            Policy(
                name=spec.name,
                description=spec.description,
                goal_us=goal if isinstance(goal, int) else goal.days * cal.nominal_day_us(),
                goal_days=None if isinstance(goal, int) else goal.days,
                calendar=cal,
                selectors={
                    role: tuple(Selector(s.type, _compile_match(s.match)) for s in getattr(spec, role))
                    for role in ROLES
                },
                match=_compile_match(spec.match),
                at_risk=spec.at_risk,
                objective=spec.objective,
                on_restart=spec.on_restart,
                min_decisions=spec.min_decisions,
                max_pause_us=spec.max_pause,
                min_attempts=spec.min_attempts,
                period=spec.period,
                period_timezone=spec.period_timezone,
                review_after=spec.review_after,
                points=spec.points,
            )
        )
    targets = []
    for i, raw in enumerate(top.targets):
        if not isinstance(raw, dict):
            raise fail(("targets", i), "each target must be a mapping")
        t: TargetSpec = validate(TargetSpec, raw, ("targets", i))
        if t.name in seen:
            raise fail(("targets", i, "name"), f"duplicate name {t.name!r}: policies and targets share one namespace")
        seen.add(t.name)
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(t.timezone)
        except Exception:
            raise fail(("targets", i, "timezone"), f"unknown IANA time zone {t.timezone!r}") from None
        targets.append(
            Target(
                name=t.name,
                description=t.description,
                selectors=tuple(Selector(s.type, _compile_match(s.match)) for s in t.deliver),
                goal=t.goal,
                period=t.period,
                timezone=t.timezone,
                match=_compile_match(t.match),
                value_by=None if t.value is None else t.value.by,
                weights=() if t.value is None else tuple(sorted(t.value.weights.items())),
                value_default=0.0 if t.value is None else t.value.default,
                value_goal=t.value_goal,
                pace_margin=t.pace_margin,
                review_after=t.review_after,
                points=t.points,
            )
        )
    return PolicySet(tuple(policies), calendars, source, tuple(targets))


def _known_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except Exception:
        return False
    return True


def _compile_calendar(name: str, spec: CalendarSpec, fail: Any) -> Calendar:
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(spec.timezone)
    except Exception:
        raise fail(("timezone",), f"unknown IANA time zone {spec.timezone!r}") from None
    days: list[list[tuple[time, time | None]]] = [[] for _ in WEEKDAYS]
    for key, ranges in spec.hours.items():
        idx = _weekdays(key)
        if idx is None:
            raise fail(("hours", key), f"{key!r} is not a weekday or range (mon, tue, …, mon-fri)")
        for r in [ranges] if isinstance(ranges, str) else ranges:
            m = _RANGE.match(r)
            if not m:
                raise fail(("hours", key), f"{r!r} is not an HH:MM-HH:MM range")
            h1, m1, h2, m2 = map(int, m.groups())
            if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
                raise fail(("hours", key), f"{r!r} is not a valid time range")
            start = time(h1, m1)
            end = None if h2 == 24 else time(h2, m2)
            if end is not None and end <= start:
                raise fail(("hours", key), f"{r!r} ends before it starts (use 24:00 for midnight)")
            for d in idx:
                days[d].append((start, end))
    for d, day in enumerate(days):
        day.sort(key=lambda r: r[0])
        for (_, e1), (s2, _) in zip(day, day[1:], strict=False):
            if e1 is None or s2 < e1:
                raise fail(("hours",), f"open hours overlap on {WEEKDAYS[d]}")
    if not any(days):
        raise fail(("hours",), "a calendar needs open hours on at least one day")
    cal = Calendar(name=name, timezone=spec.timezone, hours=tuple(tuple(d) for d in days), holidays=frozenset(spec.holidays))
    if len(cal.holidays) >= MAX_CLOSED_DAYS:
        raise fail(("holidays",), f"more than {MAX_CLOSED_DAYS} holidays")
    return cal


def _data_path(value: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of a pydantic error location that indexes into the data
    (pydantic adds union branch names such as 'list[str]' in between)."""
    out: list[Any] = []
    for part in loc:
        if isinstance(value, dict) and part in value or isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        elif isinstance(value, dict) and isinstance(part, str) and out[-1:] != [part]:
            out.append(part)  # a missing key: name it, it is where the fix goes
            break
        else:
            continue
        out.append(part)
    return tuple(out)


def _weekdays(key: str) -> list[int] | None:
    key = key.strip().lower()
    if key in ("daily", "everyday", "all"):
        return list(range(7))
    if key in ("weekdays",):
        return list(range(5))
    parts = [x.strip() for x in key.split("-")]
    if len(parts) == 1 and parts[0] in WEEKDAYS:
        return [WEEKDAYS.index(parts[0])]
    if len(parts) == 2 and all(x in WEEKDAYS for x in parts):
        a, b = WEEKDAYS.index(parts[0]), WEEKDAYS.index(parts[1])
        return list(range(a, b + 1)) if a <= b else list(range(a, 7)) + list(range(0, b + 1))
    return None


def _position(source: str, mark: yaml.Mark) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


def _path_text(loc: tuple[Any, ...]) -> str:
    text = "".join(f"[{x}]" if isinstance(x, int) else (f".{x}" if i else str(x)) for i, x in enumerate(loc))
    return text or "file"


def _unknown_key(key: str, known: Collection[str], known_label: str = "known keys") -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r}; {known_label}: {', '.join(sorted(known))}"


_SELECTOR_KEYS = frozenset(ROLES)
_PER_POLICY = frozenset(("name", "description", START, STOP))
_DEFAULTABLE = frozenset(PolicySpec.model_fields) - _PER_POLICY


# Keys whose value is a share of 1; a figure above 1 there is a percentage.
_SHARES = frozenset(("objective", "at_risk", "pace_margin"))


def _plain(err: Any, key: object) -> str:
    """A pydantic error as a sentence for the person who wrote the file:
    what the value must be, with the value written the way that works."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string_pattern_mismatch" and key == "name":
        return f"{value!r} is not a valid name: use lowercase letters, digits and _ only, such as first_touch"
    bounds = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most",
              "less_than": "less than"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        if isinstance(limit, float) and limit == int(limit):
            limit = int(limit)
        if key in _SHARES:
            hint = f"write {value / 100:g} for {value:g}%" if number and 1 < value <= 100 and value == int(value) \
                else "such as 0.9 for 90%"
            return f"must be {bounds[kind]} {limit}: a share of 1, {hint} (got {value!r})"
        return f"must be {bounds[kind]} {limit} (got {value!r})"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')} (got {value!r})"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number (got {value!r})"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number (got {value!r})"
    return str(err["msg"]).removeprefix("Value error, ")


def _known_keys(mapping: tuple[Any, ...]) -> Collection[str]:
    """The keys allowed in the mapping at this data path (for did-you-mean)."""
    if mapping == ():
        return PoliciesFile.model_fields.keys()
    if len(mapping) == 2 and mapping[0] == "targets":
        return TargetSpec.model_fields.keys()
    if len(mapping) == 3 and mapping[0] == "targets" and mapping[2] == "value":
        return ValueSpec.model_fields.keys()
    if len(mapping) == 4 and mapping[0] == "targets" and mapping[2] == "deliver":
        return SelectorSpec.model_fields.keys()
    if len(mapping) == 2 and mapping[0] == "calendars":
        return CalendarSpec.model_fields.keys()
    if len(mapping) == 2 and mapping[0] == "policies":
        return PolicySpec.model_fields.keys()
    rest = mapping[2:] if mapping[0] == "policies" else mapping[1:]
    if rest and rest[0] in _SELECTOR_KEYS and (len(rest) == 1 or len(rest) == 2 and isinstance(rest[1], int)):
        return SelectorSpec.model_fields.keys()
    return ()


# -- YAML's implicit typing ------------------------------------------------------------
#
# YAML 1.1 (PyYAML's dialect) gives every plain, unquoted scalar a type from its
# spelling: 1:30 is the base-60 number 90, 010 is octal 8, NO and on are
# booleans, 2026-01-01 is a date, an empty value or ~ is null. Each of those
# turns a policy into something other than what it reads like, without a word.
# So every scalar is checked against what its place in the file expects, from
# the node itself (plain style, a tag the resolver chose from the text) rather
# than from the Python value, which no longer shows how it was written.

_TEXT, _DURATION, _NUMBER, _DATE, _MATCH = "text", "duration", "number", "date", "match value"
_Expect = tuple[str, bool]  # (kind, whether null means "not set")

_POLICY_SCALARS: dict[str, _Expect] = {
    "name": (_TEXT, False),
    "description": (_TEXT, False),
    "calendar": (_TEXT, False),
    "on_restart": (_TEXT, False),
    "goal": (_DURATION, False),
    "max_pause": (_DURATION, True),  # null: no limit, as when the key is left out
    "at_risk": (_NUMBER, False),
    "objective": (_NUMBER, False),
    "min_decisions": (_NUMBER, False),
    "period": (_TEXT, False),
    "period_timezone": (_TEXT, False),
    "review_after": (_NUMBER, False),
    "points": (_NUMBER, False),
}
_TYPED_TAGS = {f"tag:yaml.org,2002:{t}": t for t in ("int", "float", "bool", "null", "timestamp")}
# A bare duration is seconds, written in plain decimal. Ints exclude a leading
# zero (YAML 1.1 octal); neither takes exponents, "_" separators or base 60.
_DECIMAL_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_BARE_SECONDS = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DECIMAL_NUMBER = re.compile(r"[-+]?(?:0|[1-9][0-9]*|(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)")
_DURATION_HINT = "write a duration with a unit, such as 90s, 15m, 1h30m or PT1H"


def _expected(path: tuple[Any, ...]) -> _Expect | None:
    """What the scalar at this data path must be; None where the schema has no
    scalar (pydantic reports what is wrong there)."""
    if len(path) >= 2 and path[0] == "policies" and isinstance(path[1], int):
        return _in_policy(path[2:])
    if len(path) >= 2 and path[0] == "targets" and isinstance(path[1], int):
        return _in_target(path[2:])
    if path[:1] == ("defaults",):
        return _in_policy(path[1:])
    if len(path) >= 3 and path[0] == "calendars":
        rest = path[2:]
        if rest == ("timezone",):
            return (_TEXT, False)
        if rest[0] == "hours" and (len(rest) == 2 or len(rest) == 3 and isinstance(rest[2], int)):
            return (_TEXT, False)  # "HH:MM-HH:MM", or a list of them
        if rest[0] == "holidays" and len(rest) == 2 and isinstance(rest[1], int):
            return (_DATE, False)
    return None


def _in_policy(rest: tuple[Any, ...]) -> _Expect | None:
    if not rest:
        return None
    if len(rest) == 1 and rest[0] in _POLICY_SCALARS:
        return _POLICY_SCALARS[rest[0]]
    if rest[0] == "match":
        return _in_match(rest[1:])
    if rest[0] in _SELECTOR_KEYS:
        sel = rest[1:]
        if not sel:
            return (_TEXT, True)  # an event type; null: no events
        if isinstance(sel[0], int):
            sel = sel[1:]
            if not sel:
                return (_TEXT, False)
        if sel == ("type",):
            return (_TEXT, False)
        if sel[0] == "match":
            return _in_match(sel[1:])
    return None


def _in_target(rest: tuple[Any, ...]) -> _Expect | None:
    if rest in (("name",), ("description",), ("period",), ("timezone",), ("value", "by")):
        return (_TEXT, False)
    if rest in (("goal",), ("value_goal",), ("pace_margin",), ("review_after",), ("points",), ("value", "default")):
        return (_NUMBER, rest == ("value_goal",))
    if len(rest) == 3 and rest[:2] == ("value", "weights"):
        return (_NUMBER, False)
    if rest[:1] == ("match",):
        return _in_match(rest[1:])
    if rest[:1] == ("deliver",):
        return _in_policy((START, *rest[1:]))  # a selector, as a policy's
    return None


def _in_match(rest: tuple[Any, ...]) -> _Expect | None:
    if len(rest) == 1 or len(rest) == 2 and isinstance(rest[1], int):
        return (_MATCH, False)
    return None


def _reading(typed: str, text: str, value: Any) -> str:
    """What YAML made of a plain scalar, for messages: 'YAML reads … as …'."""
    if typed == "null":
        return "no value given (YAML reads an empty value as null)" if not text else f"YAML reads {text} as null (no value)"
    if typed == "bool":
        return f"YAML reads {text} as the boolean {str(value).lower()}"
    if typed == "timestamp":
        what = "date" if type(value) is date else "timestamp"
        return f"YAML reads {text} as the {what} {value}"
    digits = text.lstrip("+-").lower()
    if ":" in digits:
        return f"YAML 1.1 reads {text} as the sexagesimal (base 60) number {value}"
    if digits.startswith("0x"):
        return f"YAML 1.1 reads {text} as the hexadecimal number {value}"
    if digits.startswith("0b"):
        return f"YAML 1.1 reads {text} as the binary number {value}"
    if typed == "int" and len(digits) > 1 and digits.startswith("0"):
        return f"YAML 1.1 reads {text} as the octal number {value}"
    if "_" in digits:
        return f"YAML 1.1 reads {text} as the number {value} (it skips the _)"
    return f"YAML reads {text} as the number {value}"


class _Reader:
    """Composed YAML nodes to plain data: records each data path's position,
    refuses duplicate keys, the implicit-typing traps and runaway aliases on
    the way. Messages are ``source:line:col: path: problem``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.marks: dict[tuple[Any, ...], yaml.Mark] = {}
        self._loader = yaml.SafeLoader("")
        # Aliases make the data a graph: one that loops, or that nests
        # aliases of aliases (a "billion laughs"), would never finish reading.
        self._open: set[int] = set()
        self._left = MAX_POLICY_VALUES

    def close(self) -> None:
        self._loader.dispose()

    def read(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.marks[path] = node.start_mark
        self._left -= 1
        if self._left < 0:
            raise self._error(node, path, f"more than {MAX_POLICY_VALUES} values once aliases are expanded")
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if id(node) in self._open:
                raise self._error(node, path, "an alias inside this mapping or list refers back to it")
            self._open.add(id(node))
            try:
                return self._collection(node, path)
            finally:
                self._open.discard(id(node))
        return self._value(node, path)

    def _collection(self, node: yaml.MappingNode | yaml.SequenceNode, path: tuple[Any, ...]) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            first: dict[Any, yaml.Node] = {}
            for knode, vnode in node.value:
                key = self._key(knode, path)
                if key in first:
                    raise self._error(
                        knode,
                        path + (key,),
                        f"duplicate key {key!r} (first on line {first[key].start_mark.line + 1}); "
                        "YAML would silently keep only the last",
                    )
                first[key] = knode
                out[key] = self.read(vnode, path + (key,))
                self.marks[path + (key,)] = knode.start_mark
            return out
        return [self.read(v, path + (i,)) for i, v in enumerate(node.value)]

    def _error(self, node: yaml.Node, path: tuple[Any, ...], msg: str) -> PolicyError:
        return PolicyError(f"{_position(self.source, node.start_mark)}: {_path_text(path)}: {msg}")

    def _construct(self, node: yaml.Node) -> tuple[Any, str | None]:
        """The scalar's value, and its implicit type ('int', 'bool', …) when it
        was written plain and YAML typed it from the text alone; None for text
        and for quoted or explicitly tagged scalars (the writer chose those)."""
        if not isinstance(node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value", node.start_mark)
        try:
            value = self._loader.construct_object(node, deep=True)
        except ValueError as exc:  # a value its tag cannot hold, e.g. the date 2026-13-01
            raise yaml.constructor.ConstructorError(None, None, f"{node.value!r}: {exc}", node.start_mark) from None
        resolved = self._loader.resolve(yaml.ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
        implicit = node.style is None and node.tag == resolved
        return value, _TYPED_TAGS.get(node.tag) if implicit else None

    def _key(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        key, typed = self._construct(node)
        if typed is not None:  # every key in a policies file is a name
            reading = _reading(typed, node.value, key)
            raise self._error(node, path + (node.value,), f'{reading}; quote the key ("{node.value}")')
        return key

    def _value(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        value, typed = self._construct(node)
        expect = _expected(path)
        if expect is None:
            return value
        kind, nullable = expect
        text = node.value
        if typed is None:
            if kind == _DURATION and isinstance(value, str):
                self._check_bare_seconds(node, path, value)
            return value
        if typed == "null" and nullable:
            return None
        # Each branch returns what the place accepts; falling through is an error.
        if kind == _MATCH and typed in ("int", "float", "timestamp"):
            # Dimensions are text: a plain 123, 0123 or 2026-01-01 is taken as
            # written, exactly as if it were quoted.
            return text
        if kind == _DURATION and (
            typed == "int" and _DECIMAL_INT.fullmatch(text) or typed == "float" and _BARE_SECONDS.fullmatch(text)
        ):
            return value  # seconds
        if kind == _NUMBER and typed in ("int", "float") and _DECIMAL_NUMBER.fullmatch(text):
            return value
        if kind == _DATE and typed == "timestamp":
            return value
        raise self._error(node, path, self._refusal(kind, typed, text, value))

    @staticmethod
    def _refusal(kind: str, typed: str, text: str, value: Any) -> str:
        reading = _reading(typed, text, value)
        if kind == _DURATION:
            if typed in ("int", "float") and math.isfinite(value):
                reading += f", which would mean {value} seconds"
            hint = _DURATION_HINT
        elif kind == _NUMBER:
            hint = "write the number in plain decimal, such as 0.8 or 10"
        elif kind == _DATE:
            hint = "write the date as YYYY-MM-DD, such as 2026-12-25"
        elif typed == "null" and not text:
            hint = "write a value"
        else:
            hint = f'quote it ("{text}") if you mean the text'
        return f"{reading}; {hint}"

    def _check_bare_seconds(self, node: yaml.Node, path: tuple[Any, ...], text: str) -> None:
        # Text that Python reads as a number is taken as seconds by the
        # duration parser; only plain decimal is unsurprising there (1e3 is a
        # thousand seconds, 1_000 too). Infinity and NaN get the parser's own
        # message.
        try:
            number = float(text)
        except ValueError:
            return
        if math.isfinite(number) and not _BARE_SECONDS.fullmatch(text.strip()):
            raise self._error(node, path, f"{text!r} is not a plain number of seconds; {_DURATION_HINT}")
