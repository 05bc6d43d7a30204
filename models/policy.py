"""The SLA as data: the policies file (contract §3) parsed into a PolicySet.

The minimal contract form (name, start, stop, goal) keeps meaning exactly what
the contract says: wall-clock time, no pauses, every lead matches. Everything
else is an addition documented in the README: business-hours calendars, pause
and resume events, event selectors with attribute conditions, per-segment
matching, at-risk warnings, objectives and the restart rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadsla.models.calendar import ALWAYS_OPEN, MAX_CLOSED_DAYS, WEEKDAYS, Calendar
from leadsla.models.durations import DurationError, parse_duration_us
from leadsla.models.events import EVENT_TYPES, MATCH_FIELDS, LeadEvent

MAX_POLICY_FILE_BYTES = 1 << 20
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


class PolicySpec(_Strict):
    name: Annotated[str, Field(pattern=_NAME, max_length=100)]
    description: str = ""
    start: Selectors
    stop: Selectors
    goal: int  # microseconds, parsed from a duration string
    calendar: str = "24x7"
    pause: Selectors = Field(default_factory=list)
    resume: Selectors = Field(default_factory=list)
    match: dict[str, MatchValue] = Field(default_factory=dict)
    at_risk: Annotated[float, Field(gt=0, lt=1)] = 0.8
    objective: Annotated[float, Field(gt=0, le=1)] = 0.95
    on_restart: Literal["keep", "restart"] = "keep"
    min_decisions: Annotated[int, Field(ge=1)] = 10
    max_pause: int | None = None  # microseconds, parsed from a duration string

    _sel = field_validator("start", "stop", "pause", "resume", mode="before")(_selectors)
    _m = field_validator("match")(_check_match)

    @field_validator("goal", mode="before")
    @classmethod
    def _goal(cls, v: Any) -> int:
        try:
            us = parse_duration_us(v)
        except DurationError as exc:
            raise ValueError(str(exc)) from None
        if us <= 0:
            raise ValueError("goal must be longer than zero")
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
        return self


class PoliciesFile(_Strict):
    calendars: dict[Annotated[str, Field(pattern=_NAME)], CalendarSpec] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    policies: Annotated[list[dict[str, Any]], Field(min_length=1)]


# -- the compiled form the clocks use ------------------------------------------


@dataclass(frozen=True)
class Selector:
    type: str
    match: tuple[tuple[str, frozenset[str]], ...] = ()

    def matches(self, event: LeadEvent) -> bool:
        return all(event.dimension(k) in vs for k, vs in self.match)


def _compile_match(match: dict[str, MatchValue]) -> tuple[tuple[str, frozenset[str]], ...]:
    return tuple(sorted((k, frozenset([v] if isinstance(v, str) else v)) for k, v in match.items()))


START, STOP, PAUSE, RESUME = "start", "stop", "pause", "resume"
ROLES = (START, STOP, PAUSE, RESUME)


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

    @property
    def goal_seconds(self) -> float:
        return self.goal_us / 1_000_000

    def __post_init__(self) -> None:
        # Per event type, the (role, selector) pairs that can apply, in role
        # order: roles() runs for every event, so it looks at nothing else.
        by_type: dict[str, list[tuple[str, Selector]]] = {}
        for role in (START, PAUSE, RESUME, STOP):
            for s in self.selectors[role]:
                by_type.setdefault(s.type, []).append((role, s))
        object.__setattr__(self, "_by_type", {t: tuple(v) for t, v in by_type.items()})

    def roles(self, event: LeadEvent) -> tuple[str, ...]:
        """The roles this event plays for this policy, in START, PAUSE, RESUME, STOP order."""
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
class PolicySet:
    policies: tuple[Policy, ...]
    calendars: dict[str, Calendar]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        relevant: dict[str, list[int]] = {}
        for i, p in enumerate(self.policies):
            for t in p.types():
                relevant.setdefault(t, []).append(i)
        object.__setattr__(self, "_by_type", {t: tuple(v) for t, v in relevant.items()})
        object.__setattr__(self, "_by_name", {p.name: p for p in self.policies})

    def for_type(self, event_type: str) -> tuple[int, ...]:
        """Indexes of the policies an event type can affect (cheap pre-filter)."""
        return self._by_type.get(event_type, ())  # type: ignore[attr-defined, no-any-return]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.policies)

    def by_name(self, name: str) -> Policy:
        return self._by_name[name]  # type: ignore[attr-defined, no-any-return]


# -- loading, with positions in errors -------------------------------------------


def load_policies(path: str | Path) -> PolicySet:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read the policies file: {exc.strerror or exc}") from None
    if len(raw) > MAX_POLICY_FILE_BYTES:
        raise PolicyError(f"{p}: larger than {MAX_POLICY_FILE_BYTES} bytes; is this the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_policies(text, source=str(p))


def parse_policies(text: str, source: str = "<policies>") -> PolicySet:
    marks: dict[tuple[Any, ...], Any] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = None if node is None else _to_python(node, (), marks)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise PolicyError(f"{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if node is None:
        raise PolicyError(f"{source}: empty policies file; it needs a 'policies:' list")

    def where(loc: tuple[Any, ...]) -> str:
        for n in range(len(loc), -1, -1):
            mark = marks.get(tuple(loc[:n]))
            if mark is not None:
                return f"{source}:{mark.line + 1}:{mark.column + 1}"
        return source

    def fail(loc: tuple[Any, ...], msg: str) -> PolicyError:
        path = "".join(f"[{x}]" if isinstance(x, int) else (f".{x}" if i else str(x)) for i, x in enumerate(loc))
        return PolicyError(f"{where(loc)}: {path or 'file'}: {msg}")

    def validate(model: type[BaseModel], value: Any, base: tuple[Any, ...]) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = base + _data_path(value, err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            raise fail(loc, msg) from None

    if not isinstance(data, dict):
        raise fail((), "the top level must be a mapping with a 'policies:' list")
    top = validate(PoliciesFile, data, ())
    calendars: dict[str, Calendar] = {"24x7": ALWAYS_OPEN}
    for cname, cspec in top.calendars.items():
        calendars[cname] = _compile_calendar(cname, cspec, lambda loc, m, c=cname: fail(("calendars", c) + loc, m))
    known_defaults = set(PolicySpec.model_fields) - {"name", "description", "start", "stop"}
    for key in top.defaults:
        if key not in known_defaults:
            raise fail(("defaults", key), f"unknown default {key!r}; allowed: {', '.join(sorted(known_defaults))}")
    policies = []
    seen: set[str] = set()
    for i, raw in enumerate(top.policies):
        if not isinstance(raw, dict):
            raise fail(("policies", i), "each policy must be a mapping")
        spec: PolicySpec = validate(PolicySpec, {**top.defaults, **raw}, ("policies", i))
        if spec.name in seen:
            raise fail(("policies", i, "name"), f"duplicate policy name {spec.name!r}")
        seen.add(spec.name)
        if spec.calendar not in calendars:
            raise fail(("policies", i, "calendar"), f"unknown calendar {spec.calendar!r}; defined: {', '.join(sorted(calendars))}")
        policies.append(
            Policy(
                name=spec.name,
                description=spec.description,
                goal_us=spec.goal,
                calendar=calendars[spec.calendar],
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
            )
        )
    return PolicySet(tuple(policies), calendars, source)


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


def _to_python(node: yaml.Node, path: tuple[Any, ...], marks: dict[tuple[Any, ...], Any]) -> Any:
    marks[path] = node.start_mark
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = _scalar(knode)
            out[key] = _to_python(vnode, path + (key,), marks)
            marks[path + (key,)] = knode.start_mark
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, path + (i,), marks) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value", node.start_mark)
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # a value its tag cannot hold, e.g. the date 2026-13-01
        raise yaml.constructor.ConstructorError(None, None, f"{node.value!r}: {exc}", node.start_mark) from None
    finally:
        loader.dispose()
