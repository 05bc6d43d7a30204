"""The policies file: the contract's minimal form, the richer keys, and error
messages that name the problem, its position (file:line:col) and its path."""

from __future__ import annotations

import re
import textwrap
from datetime import date, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsla.models.calendar import ALWAYS_OPEN
from leadsla.models.events import EVENT_TYPES
from leadsla.models.policy import (
    ATTEMPT,
    GIVE_UP,
    PAUSE,
    RESUME,
    START,
    STOP,
    PolicyError,
    Selector,
    fingerprint,
    load_policies,
    parse_policies,
)
from tests.models.conftest import MINIMAL_YAML, H, M, ev, pol, ts

STOPS = ("lead.contact_attempt", "lead.connected", "lead.disqualified", "lead.recycled")


# -- the contract's minimal form -------------------------------------------------------


def test_minimal_form_means_24x7_no_pauses_every_lead() -> None:
    ps = parse_policies(MINIMAL_YAML, source="policies.yaml")
    assert ps.names == ("first_touch",)
    assert ps.source == "policies.yaml"
    p = ps.by_name("first_touch")
    assert p.goal_us == H
    assert p.goal_seconds == 3600.0
    assert p.calendar is ALWAYS_OPEN
    assert p.calendar.always_open
    assert p.selectors == {
        START: (Selector("lead.handed_off"),),
        STOP: tuple(Selector(t) for t in STOPS),
        PAUSE: (),
        RESUME: (),
        ATTEMPT: (),
        GIVE_UP: (),
    }
    assert p.match == () and not p.is_depth
    assert (p.at_risk, p.objective, p.on_restart, p.description) == (0.8, 0.95, "keep", "")
    assert p.types() == {"lead.handed_off", *STOPS}
    assert ps.for_type("lead.handed_off") == (0,)
    assert ps.for_type("lead.connected") == (0,)
    assert ps.for_type("deal.won") == ()


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"source": "marketing", "segment": "smb", "team": "emea", "attributes": {"tier": "gold"}},
        {"source": "sales", "region": "us", "rep": "r1"},
    ],
)
def test_minimal_form_every_lead_matches(fields: dict[str, object]) -> None:
    p = parse_policies(MINIMAL_YAML).policies[0]
    assert p.roles(ev("lead.handed_off", 0, "e1", **fields)) == (START,)  # type: ignore[arg-type]
    assert p.roles(ev("lead.recycled", 0, "e2", **fields)) == (STOP,)  # type: ignore[arg-type]
    assert p.roles(ev("deal.won", 0, "e3", **fields)) == ()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("goal", "us"),
    [
        ("90s", 90_000_000),
        ("15m", 15 * M),
        ("1h", H),
        ("2d", 48 * H),
        ("PT1H", H),
        ("P1DT2H30M", 26 * H + 30 * M),
        ("3600", H),
        ("1h30m", 90 * M),
    ],
)
def test_goal_spellings(goal: str, us: int) -> None:
    assert parse_policies(MINIMAL_YAML.replace("goal: 1h ", f"goal: {goal} ")).policies[0].goal_us == us


def test_start_and_stop_as_single_type_or_list() -> None:
    ps = pol(
        """
        policies:
          - name: a
            start: [lead.handed_off, lead.recycled]
            stop: lead.connected
            goal: 1h
        """
    )
    p = ps.policies[0]
    assert p.selectors[START] == (Selector("lead.handed_off"), Selector("lead.recycled"))
    assert p.selectors[STOP] == (Selector("lead.connected"),)


# -- richer keys ----------------------------------------------------------------------

RICH = """\
calendars:
  office:
    timezone: Europe/Berlin
    hours:
      mon-fri: "09:00-17:00"
    holidays: [2026-12-25, 2026-12-26]
  support:
    timezone: America/New_York
    hours:
      mon-thu: ["08:00-12:00", "13:00-18:00"]
      fri: "08:00-12:00"
      sat: "10:00-24:00"
defaults:
  calendar: office
  at_risk: 0.5
policies:
  - name: first_touch
    description: Sales touches a handed-off lead within one business hour.
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
    match: {segment: [smb, mid], attributes.tier: gold}
  - name: acceptance
    start:
      - type: lead.handed_off
        match: {source: marketing}
    stop: {type: lead.accepted}
    pause: lead.recycled
    resume: {type: lead.mql, match: {team: [emea]}}
    goal: P2D
    calendar: 24x7
    at_risk: 0.9
    objective: 0.99
    on_restart: restart
  - name: support_reply
    start: lead.created
    stop: lead.connected
    goal: 30m
    calendar: support
"""


def test_rich_file() -> None:
    ps = parse_policies(RICH, source="rich.yaml")
    assert ps.names == ("first_touch", "acceptance", "support_reply")
    assert set(ps.calendars) == {"24x7", "office", "support"}

    office = ps.calendars["office"]
    assert office.timezone == "Europe/Berlin"
    assert office.hours == (((time(9), time(17)),),) * 5 + ((), ())
    assert office.holidays == {date(2026, 12, 25), date(2026, 12, 26)}
    support = ps.calendars["support"]
    assert support.hours == (((time(8), time(12)), (time(13), time(18))),) * 4 + (
        ((time(8), time(12)),),
        ((time(10), None),),
        (),
    )

    first = ps.by_name("first_touch")
    assert first.description == "Sales touches a handed-off lead within one business hour."
    assert first.calendar is office
    assert (first.goal_us, first.at_risk, first.objective, first.on_restart) == (H, 0.5, 0.95, "keep")
    assert first.match == (("attributes.tier", frozenset({"gold"})), ("segment", frozenset({"smb", "mid"})))

    acc = ps.by_name("acceptance")
    assert acc.calendar is ALWAYS_OPEN
    assert (acc.goal_us, acc.at_risk, acc.objective, acc.on_restart) == (48 * H, 0.9, 0.99, "restart")
    assert acc.selectors == {
        START: (Selector("lead.handed_off", (("source", frozenset({"marketing"})),)),),
        STOP: (Selector("lead.accepted"),),
        PAUSE: (Selector("lead.recycled"),),
        RESUME: (Selector("lead.mql", (("team", frozenset({"emea"})),)),),
        ATTEMPT: (),
        GIVE_UP: (),
    }
    assert ps.by_name("support_reply").calendar is support
    assert ps.for_type("lead.handed_off") == (0, 1)
    assert ps.for_type("lead.connected") == (0, 2)
    assert ps.for_type("lead.recycled") == (1,)


def test_compiled_calendar_deadline() -> None:
    office = parse_policies(RICH).calendars["office"]
    assert office.add(ts("2026-11-27T16:30:00+01:00"), H) == ts("2026-11-30T09:30:00+01:00")
    assert office.add(ts("2026-12-24T16:30:00+01:00"), H) == ts("2026-12-28T09:30:00+01:00")


@pytest.mark.parametrize(
    ("fields", "roles"),
    [
        ({"segment": "smb", "attributes": {"tier": "gold"}}, (START,)),
        ({"segment": "mid", "attributes": {"tier": "gold", "x": "y"}}, (START,)),
        ({"segment": "enterprise", "attributes": {"tier": "gold"}}, ()),
        ({"segment": "smb", "attributes": {"tier": "silver"}}, ()),
        ({"segment": "smb"}, ()),
        ({}, ()),
    ],
)
def test_policy_match_narrows_the_start(fields: dict[str, object], roles: tuple[str, ...]) -> None:
    p = parse_policies(RICH).by_name("first_touch")
    assert p.roles(ev("lead.handed_off", 0, "e", **fields)) == roles  # type: ignore[arg-type]
    # Stops are not filtered by the policy's match: they stop whatever clock runs.
    assert p.roles(ev("lead.connected", 0, "s", **fields)) == (STOP,)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("etype", "fields", "roles"),
    [
        ("lead.handed_off", {"source": "marketing"}, (START,)),
        ("lead.handed_off", {"source": "sales"}, ()),
        ("lead.handed_off", {}, ()),
        ("lead.accepted", {}, (STOP,)),
        ("lead.recycled", {}, (PAUSE,)),
        ("lead.mql", {"team": "emea"}, (RESUME,)),
        ("lead.mql", {"team": "apac"}, ()),
    ],
)
def test_selectors(etype: str, fields: dict[str, object], roles: tuple[str, ...]) -> None:
    p = parse_policies(RICH).by_name("acceptance")
    assert p.roles(ev(etype, 0, "e", **fields)) == roles  # type: ignore[arg-type]


def test_one_event_can_play_several_roles_in_a_fixed_order() -> None:
    p = pol(
        """
        policies:
          - name: x
            start: lead.connected
            stop: lead.connected
            pause: lead.connected
            resume: lead.connected
            goal: 1h
        """
    ).policies[0]
    assert p.roles(ev("lead.connected", 0, "e")) == (START, PAUSE, RESUME, STOP)


@pytest.mark.parametrize(
    ("key", "days"),
    [
        ("mon", [0]),
        ("sun", [6]),
        ("mon-fri", [0, 1, 2, 3, 4]),
        ("sat-mon", [0, 5, 6]),
        ("weekdays", [0, 1, 2, 3, 4]),
        ("daily", [0, 1, 2, 3, 4, 5, 6]),
        ("Tue", [1]),
    ],
)
def test_weekday_keys(key: str, days: list[int]) -> None:
    ps = pol(
        f"""
        calendars:
          c:
            hours:
              {key}: "10:00-11:30"
        policies:
          - {{name: x, start: lead.created, stop: lead.mql, goal: 1h, calendar: c}}
        """
    )
    cal = ps.calendars["c"]
    assert cal.timezone == "UTC"
    assert [d for d in range(7) if cal.hours[d]] == days
    assert all(cal.hours[d] == ((time(10), time(11, 30)),) for d in days)


def test_defaults_are_overridden_by_the_policy() -> None:
    ps = pol(
        """
        defaults:
          goal: 2h
          on_restart: restart
          match: {region: emea}
        policies:
          - {name: a, start: lead.created, stop: lead.mql}
          - {name: b, start: lead.created, stop: lead.mql, goal: 15m, on_restart: keep, match: {}}
        """
    )
    a, b = ps.policies
    assert (a.goal_us, a.on_restart, a.match) == (2 * H, "restart", (("region", frozenset({"emea"})),))
    assert (b.goal_us, b.on_restart, b.match) == (15 * M, "keep", ())


def test_load_policies_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(RICH, encoding="utf-8")
    ps = load_policies(path)
    assert ps.names == ("first_touch", "acceptance", "support_reply")
    assert ps.source == str(path)


def test_load_policies_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as info:
        load_policies(path)
    assert str(info.value) == f"{path}: cannot read the policies file: No such file or directory"


def test_load_policies_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"policies:\n  - name: caf\xe9\n")
    with pytest.raises(PolicyError) as info:
        load_policies(path)
    assert str(info.value) == f"{path}: not UTF-8 text (invalid continuation byte at byte 23)"


def test_load_policies_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL_YAML.replace("goal: 1h ", "goal: 2x "), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policies(path)
    assert str(info.value).startswith(f"{path}:5:5: policies[0].goal: not a duration: '2x'")


# -- errors: problem, position and path ---------------------------------------------

_TWO = """\
policies:
  - name: first_touch
    start: lead.handed_off
    stop: lead.connected
    goal: 1h
  - name: second
    start: lead.handed_off
    stop: lead.connected
    goal: {goal}
"""

_CAL = """\
calendars:
  office:
    timezone: {tz}
    hours:
      {day}: {hours}
policies:
  - name: a
    start: lead.created
    stop: lead.mql
    goal: 1h
    calendar: office
"""


def _cal(tz: str = "Europe/Berlin", day: str = "mon-fri", hours: str = '"09:00-17:00"') -> str:
    return _CAL.format(tz=tz, day=day, hours=hours)


ERRORS = [
    (
        "bad duration",
        _TWO.format(goal="2x"),
        "p.yaml:9:5: policies[1].goal: not a duration: '2x' (use e.g. 90s, 15m, 1h30m, 2d, 500ms or ISO 8601 PT1H)",
    ),
    ("zero goal", _TWO.format(goal="0s"), "p.yaml:9:5: policies[1].goal: goal must be longer than zero"),
    ("negative goal", _TWO.format(goal="-5"), "p.yaml:9:5: policies[1].goal: negative duration: -5"),
    (
        "infinite goal",
        _TWO.format(goal=".inf"),
        "p.yaml:9:11: policies[1].goal: YAML reads .inf as the number inf; write a duration with a unit, "
        "such as 90s, 15m, 1h30m or PT1H",
    ),
    ("quoted infinite goal", _TWO.format(goal='"inf"'), "p.yaml:9:5: policies[1].goal: not a finite duration: 'inf'"),
    (
        "goal true",
        _TWO.format(goal="true"),
        "p.yaml:9:11: policies[1].goal: YAML reads true as the boolean true; write a duration with a unit, "
        "such as 90s, 15m, 1h30m or PT1H",
    ),
    ("missing goal", _TWO.replace("    goal: {goal}\n", ""), "p.yaml:6:5: policies[1].goal: Field required"),
    (
        "unknown start type",
        _TWO.format(goal="1h").replace(
            "start: lead.handed_off\n    stop: lead.connected\n    goal: 1h\n  -",
            "start: lead.handof\n    stop: lead.connected\n    goal: 1h\n  -",
        ),
        "p.yaml:3:5: policies[0].start: unknown event type 'lead.handof'; known: ",
    ),
    (
        "unknown stop type in a list",
        MINIMAL_YAML.replace("lead.connected,", "lead.conected,"),
        "p.yaml:4:34: policies[0].stop[1]: unknown event type 'lead.conected'; known: deal.lost, deal.won, ",
    ),
    (
        "unknown key in a policy",
        _TWO.format(goal="1h") + "    colour: red\n",
        "p.yaml:10:5: policies[1].colour: unknown key 'colour'",
    ),
    ("unknown top-level key", MINIMAL_YAML + "version: 2\n", "p.yaml:6:1: version: unknown key 'version'"),
    ("misspelt policies", "polices: []\n", "p.yaml:1:1: polices: unknown key 'polices'; did you mean 'policies'?"),
    (
        "unknown key in a selector",
        MINIMAL_YAML.replace("start: lead.handed_off", "start: {type: lead.handed_off, when: x}"),
        "p.yaml:3:36: policies[0].start.when: unknown key 'when'",
    ),
    (
        "bad match field",
        _TWO.format(goal="1h") + "    match: {colour: red}\n",
        "p.yaml:10:5: policies[1].match: cannot match on 'colour': use one of source, segment, persona, "
        "team, rep, region, channel, currency or attributes.<name>",
    ),
    (
        "duplicate name",
        _TWO.format(goal="1h").replace("name: second", "name: first_touch"),
        "p.yaml:6:5: policies[1].name: duplicate policy name 'first_touch'",
    ),
    (
        "bad name",
        _TWO.format(goal="1h").replace("name: second", "name: Second-One"),
        "p.yaml:6:5: policies[1].name: 'Second-One' is not a valid name: use lowercase letters, digits and _ only, such as first_touch",
    ),
    (
        "unknown calendar",
        _TWO.format(goal="1h") + "    calendar: office\n",
        "p.yaml:10:5: policies[1].calendar: unknown calendar 'office'; defined: 24x7",
    ),
    (
        "bad time zone",
        _cal(tz="Europe/Atlantis"),
        "p.yaml:3:5: calendars.office.timezone: unknown IANA time zone 'Europe/Atlantis'",
    ),
    (
        "hours range backwards",
        _cal(hours='"17:00-09:00"'),
        "p.yaml:5:7: calendars.office.hours.mon-fri: '17:00-09:00' ends before it starts (use 24:00 for midnight)",
    ),
    (
        "hours not a range",
        _cal(hours='"9-17"'),
        "p.yaml:5:7: calendars.office.hours.mon-fri: '9-17' is not an HH:MM-HH:MM range",
    ),
    (
        "hours out of range",
        _cal(hours='"09:00-24:30"'),
        "p.yaml:5:7: calendars.office.hours.mon-fri: '09:00-24:30' is not a valid time range",
    ),
    (
        "bad weekday",
        _cal(day="funday"),
        "p.yaml:5:7: calendars.office.hours.funday: 'funday' is not a weekday or range (mon, tue, …, mon-fri)",
    ),
    (
        "overlapping hours",
        _cal(hours='["09:00-13:00", "12:00-17:00"]'),
        "p.yaml:4:5: calendars.office.hours: open hours overlap on mon",
    ),
    (
        "overlapping hours across keys",
        _cal().replace(
            '      mon-fri: "09:00-17:00"\n', '      mon-fri: "09:00-17:00"\n      fri: "16:00-18:00"\n'
        ),
        "p.yaml:4:5: calendars.office.hours: open hours overlap on fri",
    ),
    (
        "no open hours",
        _cal().replace('    hours:\n      mon-fri: "09:00-17:00"\n', "    hours: {}\n"),
        "p.yaml:4:5: calendars.office.hours: a calendar needs open hours on at least one day",
    ),
    (
        "bad holiday date",
        _cal().replace("    hours:", "    holidays: [2026-13-01]\n    hours:"),
        "p.yaml:4:16: not valid YAML: '2026-13-01': month must be in 1..12",
    ),
    (
        "pause without resume",
        _TWO.format(goal="1h") + "    pause: lead.recycled\n",
        "p.yaml:6:5: policies[1]: pause and resume go together: give both or neither",
    ),
    (
        "at_risk out of range",
        _TWO.format(goal="1h") + "    at_risk: 1.5\n",
        "p.yaml:10:5: policies[1].at_risk: must be less than 1: a share of 1, such as 0.9 for 90%",
    ),
    (
        "bad on_restart",
        _TWO.format(goal="1h") + "    on_restart: sometimes\n",
        "p.yaml:10:5: policies[1].on_restart: must be 'keep' or 'restart'",
    ),
    (
        "unknown default",
        "defaults:\n  colour: red\n" + MINIMAL_YAML,
        "p.yaml:2:3: defaults.colour: unknown key 'colour'; defaults can set: at_risk, attempt, calendar, give_up, "
        "goal, match, max_pause, min_attempts, min_decisions, objective, on_restart, pause, period, period_timezone, "
        "points, resume, review_after",
    ),
    (
        "invalid YAML",
        "policies:\n  - name: [unclosed\n",
        "p.yaml:3:1: not valid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    (
        "tab indentation",
        "policies:\n\t- name: x\n",
        "p.yaml:2:1: not valid YAML: found character '\\t' that cannot start any token",
    ),
    (
        "unknown YAML tag",
        MINIMAL_YAML.replace("goal: 1h", "goal: !secret 1h"),
        "p.yaml:5:11: not valid YAML: could not determine a constructor for the tag '!secret'",
    ),
    (
        "complex mapping key",
        "policies:\n  - ? [a, b]\n    : 1\n",
        "p.yaml:2:7: not valid YAML: a mapping key must be a plain value",
    ),
    (
        "empty start",
        MINIMAL_YAML.replace("start: lead.handed_off ", "start: [] "),
        "p.yaml:2:5: policies[0]: start needs at least one event type",
    ),
    (
        "empty stop",
        _TWO.format(goal="1h").replace(
            "    stop: lead.connected\n    goal: 1h\n  -", "    stop: []\n    goal: 1h\n  -"
        ),
        "p.yaml:2:5: policies[0]: stop needs at least one event type",
    ),
    (
        "start not a type",
        MINIMAL_YAML.replace("start: lead.handed_off ", "start: 5 "),
        'p.yaml:3:12: policies[0].start: YAML reads 5 as the number 5; quote it ("5") if you mean the text',
    ),
    ("empty file", "", "p.yaml: empty policies file; it needs a 'policies:' list"),
    ("only comments", "# nothing here\n", "p.yaml: empty policies file; it needs a 'policies:' list"),
    (
        "policies empty list",
        "policies: []\n",
        "p.yaml:1:1: file: the file needs a 'policies:' list (or 'targets:'), with at least one entry",
    ),
    ("policies missing", "calendars: {}\n",
     "p.yaml:1:1: file: the file needs a 'policies:' list (or 'targets:'), with at least one entry"),
    ("policies not a list", "policies: first_touch\n", "p.yaml:1:1: policies: Input should be a valid list"),
    (
        "top level a list",
        "- name: a\n",
        "p.yaml:1:1: file: the top level must be a mapping with a 'policies:' list",
    ),
    (
        "policy not a mapping",
        "policies:\n  - first_touch\n",
        "p.yaml:2:5: policies[0]: Input should be a valid dictionary",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), ERRORS, ids=[c for c, _, _ in ERRORS])
def test_errors(case: str, text: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policies(text, source="p.yaml")
    assert str(info.value).startswith(message), case


def test_every_error_is_a_policy_error_and_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


def test_error_in_a_default_points_at_the_default() -> None:
    text = textwrap.dedent(
        """\
        defaults:
          goal: 2x
        policies:
          - name: a
            start: lead.created
            stop: lead.mql
        """
    )
    with pytest.raises(PolicyError) as info:
        parse_policies(text, source="p.yaml")
    assert str(info.value).startswith("p.yaml:2:3: defaults.goal: not a duration: '2x'")


def test_too_many_holidays() -> None:
    days = ", ".join((date(2026, 1, 1) + timedelta(days=i)).isoformat() for i in range(400))
    text = _cal().replace("    hours:", f"    holidays: [{days}]\n    hours:")
    with pytest.raises(PolicyError) as info:
        parse_policies(text, source="p.yaml")
    assert str(info.value) == "p.yaml:4:5: calendars.office.holidays: more than 400 holidays"


def test_load_policies_refuses_a_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(MINIMAL_YAML + "#" * (1 << 20), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policies(path)
    assert str(info.value) == f"{path}: larger than 1048576 bytes; is this the right file?"


def test_max_pause_is_a_duration_and_needs_pauses() -> None:
    p = pol(MINIMAL_YAML.replace("goal: 1h", "goal: 1h\n    pause: lead.accepted\n    resume: lead.connected\n    max_pause: 2d"))
    assert p.policies[0].max_pause_us == 2 * 86_400_000_000
    with pytest.raises(PolicyError, match=r"max_pause needs pause and resume events"):
        pol(MINIMAL_YAML.replace("goal: 1h", "goal: 1h\n    max_pause: 2d"))
    with pytest.raises(PolicyError, match=r"policies\[0\]\.max_pause: not a duration"):
        pol(MINIMAL_YAML.replace("goal: 1h", "goal: 1h\n    pause: lead.accepted\n    resume: lead.connected\n    max_pause: soon"))


# -- YAML traps ------------------------------------------------------------------------
#
# YAML 1.1 types unquoted values by their spelling. Where that would change what
# a policy means, the file is refused at the value's own line:col.

_ONE = """\
policies:
  - name: first_touch
    start: lead.handed_off
    stop: lead.connected
    goal: {goal}
"""
_DURATION_HINT = "write a duration with a unit, such as 90s, 15m, 1h30m or PT1H"
_PAUSES = "    pause: lead.recycled\n    resume: lead.mql\n"


def _one(goal: str = "1h", extra: str = "") -> str:
    return _ONE.format(goal=goal) + extra


def _refused(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policies(text, source="p.yaml")
    return str(info.value)


TRAPS = [
    (
        "sexagesimal goal",
        _one("1:30"),
        "p.yaml:5:11: policies[0].goal: YAML 1.1 reads 1:30 as the sexagesimal (base 60) number 90, "
        f"which would mean 90 seconds; {_DURATION_HINT}",
    ),
    (
        "sexagesimal goal with seconds",
        _one("1:30:00"),
        "p.yaml:5:11: policies[0].goal: YAML 1.1 reads 1:30:00 as the sexagesimal (base 60) number 5400, "
        f"which would mean 5400 seconds; {_DURATION_HINT}",
    ),
    (
        "sexagesimal max_pause",
        _one(extra=_PAUSES + "    max_pause: 2:00\n"),
        "p.yaml:8:16: policies[0].max_pause: YAML 1.1 reads 2:00 as the sexagesimal (base 60) number 120, "
        f"which would mean 120 seconds; {_DURATION_HINT}",
    ),
    (
        "sexagesimal goal in defaults",
        "defaults:\n  goal: 1:30\n" + _one().replace("    goal: 1h\n", ""),
        "p.yaml:2:9: defaults.goal: YAML 1.1 reads 1:30 as the sexagesimal (base 60) number 90, "
        f"which would mean 90 seconds; {_DURATION_HINT}",
    ),
    (
        "octal goal",
        _one("010"),
        f"p.yaml:5:11: policies[0].goal: YAML 1.1 reads 010 as the octal number 8, which would mean 8 seconds; {_DURATION_HINT}",
    ),
    (
        "exponent goal",
        _one("1.0e+3"),
        "p.yaml:5:11: policies[0].goal: YAML reads 1.0e+3 as the number 1000.0, which would mean 1000.0 seconds; "
        + _DURATION_HINT,
    ),
    (
        "exponent goal YAML leaves as text",
        _one("1e3"),
        f"p.yaml:5:11: policies[0].goal: '1e3' is not a plain number of seconds; {_DURATION_HINT}",
    ),
    (
        "underscored goal",
        _one("1_000"),
        "p.yaml:5:11: policies[0].goal: YAML 1.1 reads 1_000 as the number 1000 (it skips the _), "
        f"which would mean 1000 seconds; {_DURATION_HINT}",
    ),
    (
        "date goal",
        _one("2026-01-01"),
        f"p.yaml:5:11: policies[0].goal: YAML reads 2026-01-01 as the date 2026-01-01; {_DURATION_HINT}",
    ),
    ("null goal", _one("~"), f"p.yaml:5:11: policies[0].goal: YAML reads ~ as null (no value); {_DURATION_HINT}"),
    (
        "boolean name",
        _one().replace("name: first_touch", "name: on"),
        'p.yaml:2:11: policies[0].name: YAML reads on as the boolean true; quote it ("on") if you mean the text',
    ),
    (
        "empty name",
        _one().replace("name: first_touch", "name:"),
        "p.yaml:2:10: policies[0].name: no value given (YAML reads an empty value as null); write a value",
    ),
    (
        "number description",
        _one(extra="    description: 12\n"),
        'p.yaml:6:18: policies[0].description: YAML reads 12 as the number 12; quote it ("12") if you mean the text',
    ),
    (
        "boolean on_restart",
        _one(extra="    on_restart: off\n"),
        'p.yaml:6:17: policies[0].on_restart: YAML reads off as the boolean false; quote it ("off") if you mean the text',
    ),
    (
        "null calendar",
        _one(extra="    calendar: null\n"),
        'p.yaml:6:15: policies[0].calendar: YAML reads null as null (no value); quote it ("null") if you mean the text',
    ),
    (
        "boolean event type in a list",
        _one().replace("start: lead.handed_off", "start: [lead.handed_off, yes]"),
        'p.yaml:3:30: policies[0].start[1]: YAML reads yes as the boolean true; quote it ("yes") if you mean the text',
    ),
    (
        "boolean in a match",
        _one(extra="    match: {region: NO}\n"),
        'p.yaml:6:21: policies[0].match.region: YAML reads NO as the boolean false; quote it ("NO") if you mean the text',
    ),
    (
        "boolean in a selector's match",
        _one().replace("stop: lead.connected", "stop: {type: lead.connected, match: {attributes.vip: yes}}"),
        "p.yaml:4:58: policies[0].stop.match.attributes.vip: YAML reads yes as the boolean true; "
        'quote it ("yes") if you mean the text',
    ),
    (
        "null in a match list",
        _one(extra="    match: {segment: [smb, ~]}\n"),
        'p.yaml:6:28: policies[0].match.segment[1]: YAML reads ~ as null (no value); quote it ("~") if you mean the text',
    ),
    (
        "boolean in a match in defaults",
        "defaults:\n  match: {region: NO}\n" + _one(),
        'p.yaml:2:19: defaults.match.region: YAML reads NO as the boolean false; quote it ("NO") if you mean the text',
    ),
    (
        "date time zone",
        _cal(tz="2026-01-01"),
        "p.yaml:3:15: calendars.office.timezone: YAML reads 2026-01-01 as the date 2026-01-01; "
        'quote it ("2026-01-01") if you mean the text',
    ),
    (
        "sexagesimal open hours",
        _cal(hours="9:30"),
        "p.yaml:5:16: calendars.office.hours.mon-fri: YAML 1.1 reads 9:30 as the sexagesimal (base 60) number 570; "
        'quote it ("9:30") if you mean the text',
    ),
    (
        "number holiday",
        _cal().replace("    hours:", "    holidays: [2026-12-24, 20261225]\n    hours:"),
        "p.yaml:4:28: calendars.office.holidays[1]: YAML reads 20261225 as the number 20261225; "
        "write the date as YYYY-MM-DD, such as 2026-12-25",
    ),
    (
        "boolean key",
        _one(extra="    on: restart\n"),
        'p.yaml:6:5: policies[0].on: YAML reads on as the boolean true; quote the key ("on")',
    ),
    (
        "boolean at_risk",
        _one(extra="    at_risk: yes\n"),
        "p.yaml:6:14: policies[0].at_risk: YAML reads yes as the boolean true; "
        "write the number in plain decimal, such as 0.8 or 10",
    ),
    (
        "sexagesimal min_decisions",
        _one(extra="    min_decisions: 1:00\n"),
        "p.yaml:6:20: policies[0].min_decisions: YAML 1.1 reads 1:00 as the sexagesimal (base 60) number 60; "
        "write the number in plain decimal, such as 0.8 or 10",
    ),
    (
        "hexadecimal objective",
        _one(extra="    objective: 0x1\n"),
        "p.yaml:6:16: policies[0].objective: YAML 1.1 reads 0x1 as the hexadecimal number 1; "
        "write the number in plain decimal, such as 0.8 or 10",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), TRAPS, ids=[c for c, _, _ in TRAPS])
def test_yaml_typing_traps_are_refused_at_the_value(case: str, text: str, message: str) -> None:
    assert _refused(text) == message, case


def test_sexagesimal_goal_is_refused_by_load_policies(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_one("1:30"), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policies(path)
    assert str(info.value).startswith(f"{path}:5:11: policies[0].goal: YAML 1.1 reads 1:30 as the sexagesimal")


def test_quoted_sexagesimal_goal_is_not_a_duration_either() -> None:
    assert _refused(_one('"1:30"')).startswith("p.yaml:5:5: policies[0].goal: not a duration: '1:30' (use e.g.")


DUPLICATES = [
    (
        "in a policy",
        _one(extra="    goal: 2h\n"),
        "p.yaml:6:5: policies[0].goal: duplicate key 'goal' (first on line 5); YAML would silently keep only the last",
    ),
    (
        "at the top level",
        _one() + "policies: []\n",
        "p.yaml:6:1: policies: duplicate key 'policies' (first on line 1); YAML would silently keep only the last",
    ),
    (
        "in a flow mapping",
        _one(extra="    match: {segment: smb, segment: mid}\n"),
        "p.yaml:6:27: policies[0].match.segment: duplicate key 'segment' (first on line 6); "
        "YAML would silently keep only the last",
    ),
    (
        "in defaults",
        "defaults:\n  at_risk: 0.5\n  objective: 0.9\n  at_risk: 0.7\n" + _one(),
        "p.yaml:4:3: defaults.at_risk: duplicate key 'at_risk' (first on line 2); YAML would silently keep only the last",
    ),
    (
        "in open hours",
        _cal().replace('      mon-fri: "09:00-17:00"\n', '      mon-fri: "09:00-17:00"\n      mon-fri: "10:00-18:00"\n'),
        "p.yaml:6:7: calendars.office.hours.mon-fri: duplicate key 'mon-fri' (first on line 5); "
        "YAML would silently keep only the last",
    ),
    (
        "two calendars of one name",
        "calendars:\n  office: {hours: {mon: '09:00-17:00'}}\n  office: {hours: {tue: '09:00-17:00'}}\n" + _one(),
        "p.yaml:3:3: calendars.office: duplicate key 'office' (first on line 2); YAML would silently keep only the last",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), DUPLICATES, ids=[c for c, _, _ in DUPLICATES])
def test_duplicate_keys_are_refused_at_the_second(case: str, text: str, message: str) -> None:
    assert _refused(text) == message, case


UNKNOWN_KEYS = [
    ("top level", "polcies: []\n", "p.yaml:1:1: polcies: unknown key 'polcies'; did you mean 'policies'?"),
    (
        "top level, next to policies",
        _one() + "calenders: {}\n",
        "p.yaml:6:1: calenders: unknown key 'calenders'; did you mean 'calendars'?",
    ),
    ("policy", _one().replace("goal:", "gaol:"), "p.yaml:5:5: policies[0].gaol: unknown key 'gaol'; did you mean 'goal'?"),
    (
        "calendar",
        _cal().replace("timezone:", "timezon:"),
        "p.yaml:3:5: calendars.office.timezon: unknown key 'timezon'; did you mean 'timezone'?",
    ),
    (
        "calendar holidays",
        _cal().replace("    hours:", "    holiday: [2026-12-25]\n    hours:"),
        "p.yaml:4:5: calendars.office.holiday: unknown key 'holiday'; did you mean 'holidays'?",
    ),
    (
        "defaults",
        "defaults:\n  objectiv: 0.9\n" + _one(),
        "p.yaml:2:3: defaults.objectiv: unknown key 'objectiv'; did you mean 'objective'?",
    ),
    (
        "selector",
        _one().replace("stop: lead.connected", "stop: {type: lead.connected, mach: {segment: smb}}"),
        "p.yaml:4:34: policies[0].stop.mach: unknown key 'mach'; did you mean 'match'?",
    ),
    (
        "selector in a list",
        _one().replace("stop: lead.connected", "stop: [lead.mql, {typ: lead.connected}]"),
        "p.yaml:4:23: policies[0].stop[1].typ: unknown key 'typ'; did you mean 'type'?",
    ),
    (
        "selector in defaults",
        "defaults:\n  pause: {type: lead.recycled, mach: {segment: smb}}\n  resume: lead.mql\n" + _one(),
        "p.yaml:2:32: defaults.pause.mach: unknown key 'mach'; did you mean 'match'?",
    ),
    (
        "nothing close",
        _one(extra="    colour: red\n"),
        "p.yaml:6:5: policies[0].colour: unknown key 'colour'; known keys: at_risk, attempt, calendar, description, "
        "give_up, goal, match, max_pause, min_attempts, min_decisions, name, objective, on_restart, pause, period, "
        "period_timezone, points, resume, review_after, start, stop",
    ),
    (
        "a per-policy key in defaults",
        "defaults:\n  name: x\n" + _one(),
        "p.yaml:2:3: defaults.name: 'name' cannot be a default: each policy sets its own",
    ),
    (
        "match field",
        _one(extra="    match: {segmnt: smb}\n"),
        "p.yaml:6:5: policies[0].match: cannot match on 'segmnt'; did you mean 'segment'?",
    ),
    (
        "match attribute",
        _one(extra="    match: {attribute.tier: gold}\n"),
        "p.yaml:6:5: policies[0].match: cannot match on 'attribute.tier'; did you mean 'attributes.tier'?",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), UNKNOWN_KEYS, ids=[c for c, _, _ in UNKNOWN_KEYS])
def test_unknown_keys_name_the_closest_known_key(case: str, text: str, message: str) -> None:
    assert _refused(text) == message, case


DEFAULTS_ERRORS = [
    ("out of range", "  at_risk: 1.5\n", "p.yaml:2:3: defaults.at_risk: must be less than 1: a share of 1, such as 0.9 for 90% (got 1.5)"),
    ("unknown calendar", "  calendar: office\n", "p.yaml:2:3: defaults.calendar: unknown calendar 'office'; defined: 24x7"),
    ("bad on_restart", "  on_restart: sometimes\n", "p.yaml:2:3: defaults.on_restart: must be 'keep' or 'restart' (got 'sometimes')"),
    (
        "bad event type in a selector",
        "  pause: {type: lead.paused}\n  resume: lead.mql\n",
        "p.yaml:2:11: defaults.pause.type: unknown event type 'lead.paused'; known: ",
    ),
    ("bad match field", "  match: {colour: red}\n", "p.yaml:2:3: defaults.match: cannot match on 'colour': use one of"),
]


@pytest.mark.parametrize(("case", "defaults", "message"), DEFAULTS_ERRORS, ids=[c for c, _, _ in DEFAULTS_ERRORS])
def test_errors_in_defaults_point_at_the_defaults_entry(case: str, defaults: str, message: str) -> None:
    # Both policies inherit the bad value; it is reported once, where it is written.
    assert _refused("defaults:\n" + defaults + _TWO.format(goal="1h")).startswith(message), case


def test_an_error_in_a_policy_that_overrides_a_default_points_at_the_policy() -> None:
    text = "defaults:\n  goal: 1h\n" + _TWO.format(goal="2x")
    assert _refused(text).startswith("p.yaml:11:5: policies[1].goal: not a duration: '2x'")


def test_typed_values_where_numbers_and_dates_are_meant_are_kept() -> None:
    ps = parse_policies(
        _cal().replace("    hours:", "    holidays: [2026-12-25, 2027-01-01]\n    hours:")
        + "    at_risk: 0.8\n    objective: 0.95\n    min_decisions: 10\n"
        + "  - {name: b, start: lead.created, stop: lead.mql, goal: 3600, objective: 9.5e-1, at_risk: .5}\n"
        + "  - {name: c, start: lead.created, stop: lead.mql, goal: 1.5, pause: lead.recycled, resume: lead.mql,"
        + " max_pause: 90}\n"
    )
    a, b, c = ps.policies
    assert ps.calendars["office"].holidays == {date(2026, 12, 25), date(2027, 1, 1)}
    assert (a.at_risk, a.objective, a.min_decisions) == (0.8, 0.95, 10)
    assert (b.goal_us, b.objective, b.at_risk) == (H, 0.95, 0.5)
    # A bare number is seconds, in plain decimal.
    assert (c.goal_us, c.max_pause_us) == (1_500_000, 90_000_000)


def test_a_plain_number_or_date_in_a_match_is_the_text_as_written() -> None:
    ps = parse_policies(
        _one(extra="    match: {segment: [123, 0123, 1:30], attributes.since: 2026-01-01, region: 1.50}\n")
    )
    p = ps.policies[0]
    assert p.match == (
        ("attributes.since", frozenset({"2026-01-01"})),
        ("region", frozenset({"1.50"})),
        ("segment", frozenset({"123", "0123", "1:30"})),
    )
    assert p.roles(ev("lead.handed_off", 0, "e", segment="0123", region="1.50", attributes={"since": "2026-01-01"})) == (
        START,
    )


def test_quoted_or_explicitly_tagged_text_is_text() -> None:
    ps = parse_policies(
        _one().replace("name: first_touch", 'name: "on"')
        + '    match: {region: "NO", attributes.vip: !!str yes}\n    description: "12"\n'
    )
    p = ps.policies[0]
    assert (p.name, p.description) == ("on", "12")
    assert p.match == (("attributes.vip", frozenset({"yes"})), ("region", frozenset({"NO"})))


def test_an_empty_max_pause_or_pause_means_none() -> None:
    p = parse_policies(_one(extra="    pause:\n    resume:\n    max_pause:\n")).policies[0]
    assert (p.selectors[PAUSE], p.selectors[RESUME], p.max_pause_us) == ((), (), None)


def test_the_bundled_example_still_loads_unchanged() -> None:
    from leadsla.streams.settings import EXAMPLE_POLICIES

    ps = load_policies(EXAMPLE_POLICIES)
    assert ps.names == ("first_touch", "disposition", "demo_request_first_touch", "follow_up_depth")
    office = ps.calendars["sales_office"]
    assert office.timezone == "America/New_York"
    assert office.hours == (((time(8), time(18)),),) * 5 + ((), ())
    assert office.holidays == {
        date(2026, 11, 26), date(2026, 12, 25), date(2027, 1, 1), date(2027, 5, 31), date(2027, 7, 5)
    }
    first, disposition, demo, depth = ps.policies
    assert [(p.goal_us, p.at_risk, p.objective, p.calendar) for p in ps.policies] == [
        (H, 0.75, 0.95, office),
        (20 * H, 0.75, 0.95, office),
        (15 * M, 0.75, 0.9, office),
        (50 * H, 0.75, 0.9, office),
    ]
    assert (depth.min_attempts, depth.selectors[ATTEMPT], depth.selectors[GIVE_UP]) == (
        6, (Selector("lead.contact_attempt"),), (Selector("lead.disqualified"), Selector("lead.recycled")))
    (target,) = ps.targets
    assert (target.name, target.goal, target.value_goal, target.period, target.timezone) == (
        "mql_volume", 100, 4000.0, "month", "America/New_York")
    assert disposition.max_pause_us == 72 * H
    assert disposition.selectors[PAUSE] == (
        Selector("lead.contact_attempt", (("attributes.outcome", frozenset({"waiting_on_prospect"})),)),
    )
    assert disposition.selectors[RESUME] == (
        Selector("lead.connected"),
        Selector("lead.contact_attempt", (("attributes.outcome", frozenset({"no_answer", "reached"})),)),
    )
    assert demo.match == (("attributes.form", frozenset({"demo_request"})),)
    assert first.selectors[STOP] == tuple(Selector(t) for t in STOPS)


def test_the_contract_minimal_form_still_loads_unchanged() -> None:
    p = parse_policies(MINIMAL_YAML).policies[0]
    assert (p.name, p.goal_us, p.calendar, p.match) == ("first_touch", H, ALWAYS_OPEN, ())
    assert p.selectors[START] == (Selector("lead.handed_off"),)
    assert p.selectors[STOP] == tuple(Selector(t) for t in STOPS)


def test_aliases_may_share_a_list() -> None:
    ps = parse_policies(
        "policies:\n"
        "  - {name: a, start: lead.handed_off, stop: &stops [lead.connected, lead.disqualified], goal: 1h}\n"
        "  - {name: b, start: lead.mql, stop: *stops, goal: 2h}\n"
    )
    assert ps.policies[0].selectors[STOP] == ps.policies[1].selectors[STOP]


@pytest.mark.parametrize(
    ("case", "text", "message"),
    [
        (
            "an alias to its own list",
            "policies: &a [*a]\n",
            "p.yaml:1:11: policies[0]: an alias inside this mapping or list refers back to it",
        ),
        (
            "aliases of aliases",
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"b{i}: &b{i} [{', '.join([f'*b{i - 1}' if i else '*a'] * 10)}]\n" for i in range(6))
            + _one(),
            "p.yaml:1:35: b3[7][8][8][8][9]: more than 100000 values once aliases are expanded",
        ),
        ("nesting", "policies: " + "[" * 1000 + "]" * 1000 + "\n", "p.yaml: mappings and lists nested too deeply"),
    ],
)
def test_yaml_that_would_never_finish_reading_is_refused(case: str, text: str, message: str) -> None:
    assert _refused(text) == message, case


@pytest.mark.parametrize("key", ["goal", "max_pause"])
def test_durations_beyond_ten_years_are_refused(key: str) -> None:
    extra = "    pause: lead.recycled\n    resume: lead.mql\n"
    text = MINIMAL_YAML.replace("goal: 1h", "goal: 3651d" if key == "goal" else "goal: 1h\n" + extra + "    max_pause: 3651d")
    with pytest.raises(PolicyError, match=f"{key} must be at most 3650d"):
        pol(text)


@pytest.mark.parametrize("written", ["25/12/2026", '"2026/12/25"', '"Dec 25, 2026"', '"2026-12-25T10:00:00"'])
def test_a_holiday_in_another_format_names_the_expected_one(written: str) -> None:
    text = _cal().replace("    hours:", f"    holidays: [{written}]\n    hours:")
    with pytest.raises(PolicyError) as info:
        parse_policies(text, source="p.yaml")
    assert str(info.value).startswith("p.yaml:4:16: calendars.office.holidays[0]: not a date: ")
    assert str(info.value).endswith("; write it as YYYY-MM-DD, such as 2026-12-25")


# -- fingerprint: what the policies mean, not how the file spells it -------------

_FP_A = """
# the office
calendars:
  office: {timezone: Europe/Berlin, hours: {mon-fri: "09:00-17:00"}, holidays: [2026-12-25, 2026-12-24]}
defaults: {calendar: office}
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
"""

_FP_B = """
calendars:
  office:
    hours: {mon-fri: "09:00-17:00"}
    holidays: [2026-12-24, 2026-12-25]
    timezone: "Europe/Berlin"
policies:
  - goal: PT1H
    name: first_touch
    stop: [lead.contact_attempt, lead.connected]
    start: [lead.handed_off]
    calendar: office
"""


def test_fingerprint_ignores_layout_comments_order_of_keys_and_defaults() -> None:
    a, b = parse_policies(_FP_A, source="a.yaml"), parse_policies(_FP_B, source="/etc/leadsla/b.yaml")
    assert fingerprint(a) == fingerprint(b)
    assert re.fullmatch(r"[0-9a-f]{12}", fingerprint(a)), fingerprint(a)


@pytest.mark.parametrize("change", [
    ("goal: 1h", "goal: 2h"),
    ('"09:00-17:00"', '"09:00-18:00"'),
    ("2026-12-24]", "2026-12-31]"),
    ("lead.connected]", "lead.connected, lead.disqualified]"),
])
def test_fingerprint_changes_with_what_a_clock_does(change: tuple[str, str]) -> None:
    old, new = change
    assert fingerprint(parse_policies(_FP_A)) != fingerprint(parse_policies(_FP_A.replace(old, new)))


@pytest.mark.parametrize(("line", "message"), [
    ("objective: 90", "policies[0].objective: must be at most 1: a share of 1, write 0.9 for 90% (got 90)"),
    ("at_risk: 75", "policies[0].at_risk: must be less than 1: a share of 1, write 0.75 for 75% (got 75)"),
    ("min_decisions: 0", "policies[0].min_decisions: must be at least 1 (got 0)"),
    ("min_attempts: many", "policies[0].min_attempts: must be a whole number (got 'many')"),
    ("period: day", "policies[0].period: must be 'month', 'week' or 'quarter' (got 'day')"),
])
def test_schema_errors_say_what_to_write(line: str, message: str) -> None:
    text = f"policies:\n  - name: p\n    start: lead.handed_off\n    stop: lead.connected\n    goal: 1h\n    {line}\n"
    with pytest.raises(PolicyError) as info:
        parse_policies(text, source="p.yaml")
    assert str(info.value) == f"p.yaml:6:5: {message}"


def test_a_name_that_is_not_an_id_says_how_to_write_one() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policies("policies:\n  - {name: First Touch, start: lead.handed_off, stop: lead.connected, goal: 1h}\n",
                       source="p.yaml")
    assert str(info.value).endswith(
        "policies[0].name: 'First Touch' is not a valid name: use lowercase letters, digits and _ only, "
        "such as first_touch")


def test_the_fingerprint_tells_business_days_from_the_same_nominal_hours() -> None:
    from leadsla.models.policy import PolicySet, _canonical, fingerprint

    def of(goal: str) -> PolicySet:
        return parse_policies(
            "calendars:\n  office: {hours: {mon-fri: '09:00-17:00'}}\n"
            f"policies:\n  - {{name: p, start: lead.handed_off, stop: lead.connected, goal: {goal}, calendar: office}}\n")

    assert of("2bd").policies[0].goal_us == of("16h").policies[0].goal_us
    assert fingerprint(of("2bd")) != fingerprint(of("16h"))
    # A file without business days is fingerprinted as before they existed.
    assert "goal_days" not in _canonical(of("16h").policies[0])


# -- compiled matching -------------------------------------------------------------------

_MATCHING = pol("""\
    policies:
      - name: a
        start: [lead.handed_off, {type: lead.mql, match: {segment: [smb, mid]}}]
        match: {region: eu, attributes.form: demo}
        stop: [lead.connected, {type: lead.contact_attempt, match: {attributes.outcome: reached}}]
        pause: {type: lead.contact_attempt, match: {attributes.outcome: [later, busy]}}
        resume: [lead.connected, {type: lead.contact_attempt, match: {attributes.outcome: reached}}]
        goal: 1h
      - name: b
        start: {type: lead.connected, match: {team: [t1]}}
        stop: [lead.connected, lead.qualified, {type: lead.connected, match: {rep: r1}}]
        attempt: [lead.contact_attempt, {type: lead.contact_attempt, match: {source: sales}}]
        min_attempts: 2
        give_up: lead.disqualified
        goal: 2h
      - name: c
        start: lead.handed_off
        stop: lead.handed_off
        goal: 5m
""")


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(sorted(EVENT_TYPES)),
    st.sampled_from([None, "smb", "mid", "ent"]),
    st.sampled_from([None, "eu", "us"]),
    st.sampled_from([None, "t1", "t2"]),
    st.sampled_from([None, "r1", "r2"]),
    st.sampled_from([None, "marketing", "sales"]),
    st.dictionaries(st.sampled_from(["form", "outcome"]), st.sampled_from(["demo", "reached", "later", "busy", ""])),
)
def test_compiled_roles_equal_each_policys_own(etype: str, segment: str | None, region: str | None, team: str | None,
                                               rep: str | None, source: str | None, attributes: dict[str, str]) -> None:
    """PolicySet.roles (compiled once per event type) gives what asking each
    relevant policy in turn gives."""
    fields = {k: v for k, v in (("segment", segment), ("region", region), ("team", team), ("rep", rep),
                                ("source", source)) if v is not None}
    e = ev(etype, 0, "e", attributes=attributes, **fields)
    expected = tuple((p.name, role) for i in _MATCHING.for_type(etype) for p in [_MATCHING.policies[i]]
                     for role in p.roles(e))
    assert _MATCHING.roles(e) == expected
    assert _MATCHING.get("a") is _MATCHING.by_name("a") and _MATCHING.get("gone") is None
