"""The ``leadsla`` command: broker, run, demo and policies.

Only the standard library is imported when this module loads: everything
else is imported by the command that needs it, inside :func:`main`, so that
Ctrl-C while the command is still starting (importing takes up to a second
or more) ends it with one line and status 130, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadsla import __version__
from leadsla.models.durations import format_duration_us

if TYPE_CHECKING:
    import asyncio

    from pydantic import ValidationError

    from leadsla.models.policy import PolicySet
    from leadsla.streams.settings import Settings

log = logging.getLogger("leadsla")

DESCRIPTION = """\
leadsla watches the marketing-to-sales lead handoff as a live SLA. It reads lead
lifecycle events from Kafka, runs one event-time clock per lead and policy,
decides each clock once (met or breached, breaches detected by a timer even
when no further event arrives), writes decisions to the sla-outcomes topic and
exposes Prometheus metrics on /metrics.

Every option is also an environment variable: LEADSLA_<OPTION>, e.g.
LEADSLA_BROKER, LEADSLA_POLICIES, LEADSLA_WEB_PORT, LEADSLA_ALLOWED_LATENESS.
"""

EPILOG = """\
examples:
  leadsla demo                                  # everything in one process, metrics on :6066
  leadsla broker                                # an embedded broker on 127.0.0.1:9092
  leadsla run --policies my.yaml --broker kafka://kafka:9092
  leadsla policies my.yaml                      # check a policies file and show what it means
  leadsla lead L-1042                           # a lead's clocks, from a running worker
  leadsla queue --team emea                     # open clocks, the most urgent first
  leadsla generate --policies my.yaml --out out # rules, alerts, Alertmanager and Grafana files
  GRAFANA_TOKEN=... leadsla dashboards push --grafana-url http://grafana:3000
"""


class CliError(Exception):
    pass


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policies", type=Path, help="policies file (YAML); default: the bundled example [LEADSLA_POLICIES]")
    p.add_argument("--web-port", type=int, help="port of /metrics and the query API (default 6066) [LEADSLA_WEB_PORT]")
    p.add_argument("--web-host", help="address to serve on (default 127.0.0.1) [LEADSLA_WEB_HOST]")
    p.add_argument("--partitions", type=int, help="partitions of the topics leadsla creates (default 4) [LEADSLA_PARTITIONS]")
    p.add_argument("--allowed-lateness", help="how late a stop event may arrive and still count, e.g. 2m [LEADSLA_ALLOWED_LATENESS]")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="[LEADSLA_LOG_LEVEL]")


PUBLISH_EPILOG = """\
examples:
  leadsla publish events.jsonl                  # one JSON event per line, keyed by lead_id
  crm-export | leadsla publish -                # from standard input
  leadsla publish --dry-run events.jsonl        # only check the lines; send nothing
  leadsla publish leads.csv --map lead_id="Lead ID" --map occurred_at="Created" \\
      --set type=lead.created --set source=marketing --timezone Europe/Berlin
  leadsla publish export.txt --format csv --delimiter ';' --extra-columns attributes

CSV: the first line names the columns. A column named like an event field
(event_id, lead_id, type, occurred_at, source, segment, persona, team, rep,
region, channel, amount, currency) fills it; --map FIELD=COLUMN takes another
column, --map attributes.NAME=COLUMN fills one attribute, --set FIELD=VALUE
gives every row the same value. Empty cells leave the field out. Without an
event_id column each row's id is derived from its content, so publishing the
same export twice counts each event once.

exit status: 0 every line sent; 1 some lines rejected (reported on stderr as
"line N: reason: error", not sent; the others were sent); 2 a bad option or
file, a broker that does not answer, a missing topic or a failed delivery.
"""

READ_EPILOG = """\
examples:
  leadsla {cmd}                                  # everything so far, as JSON lines
  leadsla {cmd} --follow                         # and new records as they come, until Ctrl-C
  leadsla {cmd} --table {filters}
"""


def _event_parsers(sub: Any) -> None:
    """The subcommands of contract §10 that move events: publish, outcomes, dead-letters."""
    broker_help = ("Kafka bootstrap, e.g. kafka://127.0.0.1:9092 (default 127.0.0.1:9092) [LEADSLA_BROKER]; "
                   "the embedded broker is never started")
    pub = sub.add_parser("publish", help="send lead events from a JSON-lines or CSV file to lead-events",
                         description="Send lead events to the input topic (LEADSLA_INPUT_TOPIC, default "
                                     "lead-events), keyed by lead_id. Every line is first checked with the "
                                     "monitor's own rules (LEADSLA_MAX_EVENT_BYTES, the event fields, "
                                     "LEADSLA_MAX_CLOCK_SKEW): a line the monitor would dead-letter is reported "
                                     "with its number and reason and not sent. A summary ends the run; a large "
                                     "file shows progress on stderr.",
                         epilog=PUBLISH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    pub.add_argument("file", nargs="?", default="-", metavar="FILE",
                     help="JSON lines (one event per line) or CSV; - or nothing: standard input")
    pub.add_argument("--format", choices=("auto", "jsonl", "csv"), default="auto",
                     help="input format (default auto: csv for a *.csv file, otherwise JSON lines)")
    pub.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                     help="CSV: fill event field FIELD (or attributes.NAME) from COLUMN; repeatable")
    pub.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                     help="CSV: give every event FIELD=VALUE (e.g. type=lead.created); repeatable")
    pub.add_argument("--extra-columns", choices=("ignore", "attributes"), default="ignore",
                     help="CSV: columns no field uses are left out (default) or go to attributes under their "
                          "header")
    pub.add_argument("--timezone", metavar="TZ",
                     help="CSV: read timestamps without an offset (2026-11-22 09:15) in this IANA zone")
    pub.add_argument("--delimiter", default=",", help="CSV field separator (default ,)")
    pub.add_argument("--encoding", default="utf-8", help="CSV text encoding (default utf-8; a BOM is skipped)")
    pub.add_argument("--dry-run", action="store_true", help="check and report the lines; send nothing, need no broker")
    pub.add_argument("--broker", help=broker_help)
    for name, topic, filters in (("outcomes", "sla-outcomes (LEADSLA_OUTCOMES_TOPIC)",
                                  "--policy first_touch --outcome breached"),
                                 ("dead-letters", "lead-events-dlq (LEADSLA_DLQ_TOPIC)", "--reason invalid")):
        desc = (f"Print the records of {topic} from the earliest one to the end the topic had when the "
                "command started, then exit; with --follow keep printing new records until Ctrl-C. Reads "
                "with a consumer that joins no group and commits nothing: the monitor's workers are not "
                "disturbed.")
        if name == "outcomes":
            desc += " Each JSON line is one outcome record as the monitor wrote it."
            help_ = "print the decisions on sla-outcomes"
        else:
            desc += (" Each JSON line holds partition, offset, timestamp, the reason and error headers, the key "
                     "and the value (as text when UTF-8, else base64, said by key_encoding/value_encoding) and, "
                     "for a dead letter sent cut, truncated, original_size and original_sha256.")
            help_ = "print the rejected records on lead-events-dlq, with their reason"
        rd = sub.add_parser(name, help=help_, description=desc, formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog=READ_EPILOG.format(cmd=name, filters=filters))
        rd.add_argument("--follow", "-f", action="store_true", help="keep printing new records until Ctrl-C")
        rd.add_argument("--table", action="store_true", help="aligned columns for people instead of JSON lines")
        rd.add_argument("--lead", action="append", default=[], metavar="LEAD_ID",
                        help="only this lead's records (the record key); repeatable")
        if name == "outcomes":
            rd.add_argument("--policy", action="append", default=[], metavar="NAME",
                            help="only this policy's outcomes; repeatable")
            rd.add_argument("--outcome", action="append", default=[], choices=("met", "breached", "corrected"),
                            help="only this outcome; repeatable")
        else:
            rd.add_argument("--reason", action="append", default=[], metavar="REASON",
                            help="only this reason (malformed, invalid, unknown_type, too_large); repeatable")
        rd.add_argument("--broker", help=broker_help)


def parser() -> argparse.ArgumentParser:
    """The ``leadsla`` argument parser with every subcommand."""
    from leadsla.streams.settings import EMBEDDED_LISTEN

    ap = argparse.ArgumentParser(prog="leadsla", description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"leadsla {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    b = sub.add_parser("broker", help="run the embedded Kafka-compatible broker and create the topics",
                       description="Run the embedded Kafka-compatible broker (Tansu, in-memory storage: data is "
                                   "gone when it stops) in the foreground and create lead-events, lead-events-dlq, "
                                   "sla-outcomes, sla-periods and leadsla-period-reports in it. Ctrl-C stops it.")
    b.add_argument("--listen", default=EMBEDDED_LISTEN, help=f"HOST:PORT to listen on (default {EMBEDDED_LISTEN})")
    b.add_argument("--partitions", type=int, help="partitions per topic (default 4) [LEADSLA_PARTITIONS]")

    r = sub.add_parser("run", help="run the monitor",
                       description="Run the SLA monitor: consume lead-events, decide clocks, publish sla-outcomes, "
                                   "serve /metrics. Without --broker (and no LEADSLA_BROKER) it starts the embedded "
                                   "broker itself on 127.0.0.1:9092. Run several with the same broker to split the "
                                   "partitions (give each its own --web-port), or --workers N on one host.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--broker", help="Kafka bootstrap, e.g. kafka://127.0.0.1:9092 [LEADSLA_BROKER]")
    r.add_argument("--workers", type=int, metavar="N",
                   help="run N worker processes in one consumer group; worker i serves on --web-port + i "
                        "and is started again if it dies (default 1) [LEADSLA_WORKERS]")
    # Set by the --workers supervisor on its children: the worker's number
    # (no banner of its own: the supervisor prints one), and whether the
    # supervisor's output is a terminal (the child's is a pipe).
    r.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    r.add_argument("--terminal", action="store_true", help=argparse.SUPPRESS)
    _common(r)

    d = sub.add_parser("demo", help="broker, monitor and realistic traffic in one command",
                       description="Start the embedded broker, the monitor and a generator of realistic lead "
                                   "traffic (a few days of history, then live leads). Within a minute "
                                   "http://127.0.0.1:6066/metrics shows met and breached clocks, and live decisions "
                                   "follow at any hour: with its own broker the demo swaps business hours for a "
                                   "calendar open around the clock. The banner names a lead to look up and commands "
                                   "to try; a status line follows every 5 s on a terminal. Ctrl-C stops all and "
                                   "prints the totals.")
    d.add_argument("--broker", help="use this broker instead of starting the embedded one [LEADSLA_BROKER]")
    d.add_argument("--history-leads", type=int, default=400, help="leads in the generated history (default 400)")
    d.add_argument("--keep-calendars", action="store_true",
                   help="keep the policies' business-hours calendars (with its own embedded broker the demo "
                        "replaces them with one open around the clock, so that live leads are decided at any "
                        "hour; with --broker it always keeps them, as other workers of its group do)")
    _common(d)

    g = sub.add_parser("generate", help="render recording rules, alerts, Alertmanager and Grafana files from the policies",
                       description="Render Prometheus recording rules and alerts, an example Alertmanager "
                                   "configuration, Grafana dashboards and provisioning from one policies file, "
                                   "deterministically. The example policies' output is committed in "
                                   "dashboards/generated/.")
    g.add_argument("--policies", type=Path, help="policies file (default: the bundled example) [LEADSLA_POLICIES]")
    g.add_argument("--out", type=Path, default=Path("dashboards/generated"), help="output folder (default dashboards/generated)")
    g.add_argument("--runbook-base", help="URL of the README that holds the runbooks (alerts link to its sections)")
    g.add_argument("--check", action="store_true", help="write nothing; exit 1 if the folder differs from what would be generated")

    dash = sub.add_parser("dashboards", help="Grafana dashboards: push them to a Grafana",
                          description="Work with the generated Grafana dashboards.")
    dsub = dash.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)
    push = dsub.add_parser("push", help="upload the dashboards to Grafana (same UID: updated in place)",
                           description="Upload the dashboards generated from the policies to Grafana through its "
                                       "HTTP API, into a 'leadsla' folder. Idempotent: a dashboard with the same UID "
                                       "is overwritten. The API token comes from the environment: GRAFANA_TOKEN "
                                       "(a service account token), or GRAFANA_USER and GRAFANA_PASSWORD.")
    push.add_argument("--grafana-url", required=True, help="e.g. http://grafana:3000")
    push.add_argument("--policies", type=Path, help="policies file (default: the bundled example) [LEADSLA_POLICIES]")
    push.add_argument("--folder", default="leadsla", help="folder title and UID (default leadsla)")

    pol = sub.add_parser("policies", help="check a policies file and show what it means",
                         description="Parse and check a policies file; print each policy's clock, goal, "
                                     "calendar and objective. Exit status 2 with the position of the problem "
                                     "if the file is wrong.")
    pol.add_argument("file", type=Path, nargs="?", help="policies file (default: the bundled example)")

    calc = sub.add_parser("calculate", help="marketing's lead goal from the sales quota",
                          description="Marketing's lead goal for a period from the sales quota: revenue goal = "
                                      "Q x S; customers needed = ceil(Q x S / D); leads needed = ceil(customers / "
                                      "R); leads per day = leads / N. Exact decimal arithmetic: 0.3 x 1000 / 100 "
                                      "is 3 customers, not 4.")
    calc.add_argument("--quota", required=True, metavar="Q", help="sales revenue quota for the period")
    calc.add_argument("--marketing-share", required=True, metavar="S",
                      help="the part of the quota marketing's leads bring, in (0, 1]: a fraction or a "
                           "percentage (0.6 or 60%%)")
    calc.add_argument("--deal-size", required=True, metavar="D", help="average revenue per won customer")
    calc.add_argument("--close-rate", required=True, metavar="R",
                      help="won customers per lead, in (0, 1]: a fraction or a percentage (0.25 or 25%%)")
    calc.add_argument("--days", default="30", metavar="N", help="days in the period (default 30)")
    calc.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    calc.add_argument("--write-target", metavar="NAME",
                      help="write leads needed as the goal of target NAME in --policies (added, delivered by "
                           "lead.mql, if the file has no such target), scaled to the target's period when --days "
                           "is not one (a weekly target gets ceil(leads x 7 / N)); comments and layout are kept")
    calc.add_argument("--policies", type=Path, help="the policies file --write-target edits")
    calc.add_argument("--broker", help="accepted like every command's; the calculator reads nothing from Kafka "
                                       "[LEADSLA_BROKER]")

    rec = sub.add_parser("recalibrate", help="the observed funnel in the history of lead-events, and the next goal",
                         description="Read lead-events from its earliest record to its end (a consumer without a "
                                     "group: nothing is committed), decode every record as the monitor does, count "
                                     "each event id once and keep the events whose occurred_at is in [--from, "
                                     "--to). Print the observed funnel (marketing leads, customers, close rate, "
                                     "average deal size, marketing revenue share, sales cycle), the won revenue "
                                     "whose first-touch clock was met, breached or still open, and the lead goal "
                                     "these give for the next period (leadsla calculate with the observed figures).")
    rec.add_argument("--from", dest="from_", metavar="DATE",
                     help="first instant of the range: YYYY-MM-DD (UTC midnight) or RFC 3339 (default: no bound)")
    rec.add_argument("--to", metavar="DATE", help="end of the range, excluded (default: no bound)")
    rec.add_argument("--quota", metavar="Q",
                     help="the next period's quota (default: the won revenue observed in the range)")
    rec.add_argument("--days", default="30", metavar="N", help="days in the next period (default 30)")
    rec.add_argument("--policy", default="first_touch", metavar="NAME",
                     help="the policy whose first clock splits the won revenue (default first_touch)")
    rec.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    rec.add_argument("--broker", help="Kafka bootstrap, e.g. kafka://127.0.0.1:9092 (default 127.0.0.1:9092) "
                                      "[LEADSLA_BROKER]; the topic is LEADSLA_INPUT_TOPIC (default lead-events)")
    rec.add_argument("--policies", type=Path,
                     help="policies file (YAML); default: the bundled example [LEADSLA_POLICIES]")
    _event_parsers(sub)
    ld = sub.add_parser("lead", help="a lead's SLA clocks, from a running worker's query API",
                        description="Show every policy's clock for one lead (state, start, deadline, business "
                                    "time elapsed and remaining, pauses, last decision, events waiting for the "
                                    "watermark). Any worker of the group answers. The token comes from "
                                    "LEADSLA_API_TOKEN.")
    ld.add_argument("lead_id", metavar="ID")
    qu = sub.add_parser("queue", help="open clocks, the most urgent first, from a running worker's query API",
                        description="List open and pending clocks of every worker, at-risk first, then by "
                                    "deadline. The token comes from LEADSLA_API_TOKEN.")
    qu.add_argument("--team", help="only this team's clocks; a team with no open clocks and none decided this "
                                   "period on any worker is reported with the teams there are (exit status 1)")
    qu.add_argument("--rep", help="only this rep's clocks")
    qu.add_argument("--policy", help="only this policy's clocks")
    qu.add_argument("--limit", type=int, help="at most this many rows (default 100)")
    for p in (ld, qu):
        p.add_argument("--api", metavar="URL", help="a worker's query API (default http://127.0.0.1:6066) "
                                                    "[LEADSLA_API_URL]")
        p.add_argument("--json", action="store_true", help="print the API's JSON answer instead of a table")
    return ap


# Settings that are also flags of run and demo (--web-port for web_port).
FLAGS = ("broker", "policies", "web_port", "web_host", "partitions", "allowed_lateness", "log_level", "workers")


def settings_error(exc: ValidationError, flags: tuple[str, ...] = FLAGS) -> CliError:
    """What is wrong with the settings, naming the flag and the variable of
    each bad value: one line for one error (``--broker / LEADSLA_BROKER:
    'kafka://' has no host; …``), a list for several."""
    lines = []
    for e in exc.errors():
        name = str(e["loc"][0]) if e["loc"] else ""
        msg = e["msg"].removeprefix("Value error, ")
        if not name:  # a check of several settings together, whose message names them
            lines.append(msg)
            continue
        where = f"LEADSLA_{name.upper()}"
        if name in flags:
            where = f"--{name.replace('_', '-')} / {where}"
        lines.append(f"{where}: {msg}")
    if len(lines) == 1:
        return CliError(lines[0])
    return CliError("invalid settings (flags or LEADSLA_* variables):\n" + "\n".join(f"  {line}" for line in lines))


def make_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment and the flags given (flags win).
    Raises CliError naming each bad value's flag and variable."""
    from pydantic import ValidationError

    from leadsla.streams.settings import Settings

    overrides: dict[str, Any] = {}
    for name in FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise settings_error(exc) from None


def _load(path: Path) -> PolicySet:
    from leadsla.models.policy import PolicyError, load_policies

    try:
        return load_policies(path)
    except PolicyError as exc:
        raise CliError(f"policies file: {exc}") from None


def _selectors_text(selectors: Any) -> str:
    """Event selectors as text: ``lead.connected, lead.contact_attempt where
    attributes.outcome in ['no_answer', 'reached']``."""
    return ", ".join(s.type + ("".join(f" where {k} in {sorted(v)}" for k, v in s.match) if s.match else "")
                     for s in selectors)


def _calendar_text(cal: Any) -> str:
    """A calendar's zone, weekly hours (runs of days with the same hours
    grouped: ``mon-fri 08:00-18:00, sat-sun closed``) and holidays."""
    from leadsla.models.calendar import WEEKDAYS

    def day_hours(ranges: Any) -> str:
        if not ranges:
            return "closed"
        return " and ".join(f"{a:%H:%M}-{'24:00' if b is None else format(b, '%H:%M')}" for a, b in ranges)

    runs: list[tuple[int, int, str]] = []
    for i, ranges in enumerate(cal.hours):
        text = day_hours(ranges)
        if runs and runs[-1][2] == text:
            runs[-1] = (runs[-1][0], i, text)
        else:
            runs.append((i, i, text))
    week = ", ".join((WEEKDAYS[a] if a == b else f"{WEEKDAYS[a]}-{WEEKDAYS[b]}") + f" {text}" for a, b, text in runs)
    holidays = ", ".join(d.isoformat() for d in sorted(cal.holidays)) or "none"
    return f"  calendar {cal.name}: {cal.timezone}; {week}; holidays {holidays}"


def goal_meaning(policy: Any) -> str | None:
    """What a policy's goal means where that can surprise, else None: a goal
    of whole days (``3d``) under a business calendar is 24 business hours a
    day, not open days (``goal 3d = 72 business hours under calendar emea
    (for 3 business days write 3bd)``). ``policy`` is a ``models.policy.Policy``."""
    from leadsla.models.calendar import DAY_US

    if policy.goal_days is not None or policy.calendar.always_open or policy.goal_us % DAY_US:
        return None
    n = policy.goal_us // DAY_US
    return (f"goal {policy.goal_text} = {n * 24} business hours under calendar {policy.calendar.name} "
            f"(for {n} business day{'' if n == 1 else 's'} write {n}bd)")


def describe(policies: PolicySet) -> str:
    """What a policies file means, one indented line per policy (and a
    second one where its goal needs explaining), calendar and target: the
    text of ``leadsla policies`` and of the banner of ``run``."""
    rows = []
    for p in policies.policies:
        starts = _selectors_text(p.selectors["start"])
        stops = _selectors_text(p.selectors["stop"])
        extra = []
        if p.selectors["pause"]:
            pause = (f"pauses on {_selectors_text(p.selectors['pause'])}, "
                     f"resumes on {_selectors_text(p.selectors['resume'])}")
            extra.append(pause + (f", at most {format_duration_us(p.max_pause_us)}" if p.max_pause_us else ""))
        if p.match:
            extra.append("match " + ", ".join(f"{k} in {sorted(v)}" for k, v in p.match))
        if p.on_restart != "keep":
            extra.append("restarts on a new start")
        if p.is_depth:
            attempts = _selectors_text(p.selectors["attempt"])
            gives = _selectors_text(p.selectors["give_up"])
            extra.append(f"depth: met by {p.min_attempts} x {attempts} or reaching the lead"
                         + (f"; breached if given up ({gives}) first" if gives else ""))
        goal, meaning = p.goal_text, goal_meaning(p)
        rows.append(
            f"  {p.name}: {starts} -> {stops} within {goal} "
            f"({'wall-clock time' if p.calendar.always_open else 'business hours of ' + p.calendar.name + ', ' + p.calendar.timezone}); "
            f"objective {p.objective:.1%}, at risk at {p.at_risk:.0%}" + (f"; {'; '.join(extra)}" if extra else "")
        )
        if meaning is not None:
            rows.append(f"    {meaning}")
    for cal in sorted(policies.calendars.values(), key=lambda c: c.name):
        if not cal.always_open:
            rows.append(_calendar_text(cal))
    for t in policies.targets:
        delivers = _selectors_text(t.selectors)
        value = ""
        if t.value_by is not None:
            weights = ", ".join(f"{k} {w:g}" for k, w in t.weights)
            value = f"; value by {t.value_by} ({weights}, otherwise {t.value_default:g})"
            if t.value_goal is not None:
                value += f", value goal {t.value_goal:g}"
        match = ("; match " + ", ".join(f"{k} in {sorted(v)}" for k, v in t.match)) if t.match else ""
        rows.append(f"  target {t.name}: {t.goal} leads per {t.period} ({t.timezone}) by {delivers}{value}{match}")
    return "\n".join(rows)


def _policies_arg(args: argparse.Namespace) -> Path:
    from pydantic import ValidationError

    from leadsla.streams.settings import Settings

    if args.policies is not None:
        return Path(args.policies)
    # A bad LEADSLA_* variable is an error here too: falling back to the
    # example would silently ignore LEADSLA_POLICIES along with it.
    try:
        return Settings().policies
    except ValidationError as exc:
        raise settings_error(exc) from None


def cmd_generate(args: argparse.Namespace) -> int:
    from leadsla.dashboards.alerts import burn_tier_warnings
    from leadsla.dashboards.render import render, write
    from leadsla.dashboards.slo import RUNBOOK_BASE

    path = _policies_arg(args)
    policies = _load(path)
    # Warnings only: the capped rules are still valid, and --check's exit
    # status must keep meaning "the folder is stale".
    for line in burn_tier_warnings(policies):
        print(f"leadsla: {line}", file=sys.stderr)
    files = render(policies, path.name, args.runbook_base or RUNBOOK_BASE)
    if args.check:
        stale = [rel for rel, text in sorted(files.items())
                 if not (args.out / rel).exists() or (args.out / rel).read_text() != text]
        extra = sorted(str(p.relative_to(args.out)) for p in args.out.rglob("*")
                       if p.is_file() and p.suffix in (".yml", ".json") and str(p.relative_to(args.out)) not in files)
        for rel in stale:
            print(f"differs: {args.out / rel}")
        for rel in extra:
            print(f"not generated: {args.out / rel}")
        if stale or extra:
            print("leadsla generate: the folder is out of date; run leadsla generate", file=sys.stderr)
            return 1
        print(f"{args.out}: {len(files)} files up to date")
        return 0
    written = write(files, args.out)
    print(f"wrote {len(written)} files to {args.out} from {path}")
    return 0


def cmd_dashboards(args: argparse.Namespace) -> int:
    import os

    from leadsla.dashboards.grafana import dashboards
    from leadsla.dashboards.push import PushError, push

    policies = _load(_policies_arg(args))
    token = os.environ.get("GRAFANA_TOKEN")
    user, password = os.environ.get("GRAFANA_USER"), os.environ.get("GRAFANA_PASSWORD")
    if not token and not (user and password):
        raise CliError("set GRAFANA_TOKEN (or GRAFANA_USER and GRAFANA_PASSWORD) in the environment")
    credential: Any = token if token else (user, password)
    try:
        for line in push(args.grafana_url, credential, dashboards(policies), folder=args.folder):
            print(line)
    except PushError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_policies(args: argparse.Namespace) -> int:
    from leadsla.dashboards.alerts import burn_tier_warnings
    from leadsla.models.policy import fingerprint
    from leadsla.streams.settings import EXAMPLE_POLICIES

    path = args.file or EXAMPLE_POLICIES
    policies = _load(path)
    n, t = len(policies.policies), len(policies.targets)
    print(f"{path}: {n} polic{'y' if n == 1 else 'ies'}" + (f", {t} target{'' if t == 1 else 's'}" if t else ""))
    print(describe(policies))
    print(f"  fingerprint {fingerprint(policies)} (every worker of one group must show the same)")
    # A lax objective is a valid file: say which burn-rate tiers are capped,
    # but keep the exit status for real errors.
    for line in burn_tier_warnings(policies):
        print(f"leadsla: {line}", file=sys.stderr)
    return 0


def _days(text: str) -> int:
    t = text.strip()
    if not (t.isascii() and t.isdigit() and len(t) <= 9) or int(t) < 1:
        raise CliError(f"--days: must be a whole number of days, 1 or more, got {text!r}")
    return int(t)


def _share(text: str, flag: str, example: str) -> Any:
    """A share or rate as given: ``0.6`` stays text (the calculator reads it
    exactly), ``60%`` (or ``60 %``) becomes the exact decimal 0.60. Raises
    CliError for a percentage whose number is not a finite decimal;
    ``example`` shows both forms in that message (``0.6 or 60%``)."""
    from decimal import MAX_EMAX, MIN_EMIN, Decimal, InvalidOperation, localcontext

    t = text.strip()
    if not t.endswith("%"):
        return text
    try:
        number = Decimal(t[:-1].strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise CliError(f"{flag}: must be a number or a percentage ({example}), got {text!r}")
    with localcontext(Emax=MAX_EMAX, Emin=MIN_EMIN):
        return number.scaleb(-2)  # exact: only the exponent changes, whatever the size (the calculator bounds it)


def cmd_calculate(args: argparse.Namespace) -> int:
    import orjson

    from leadsla.models.funnel import FunnelError, lead_goal
    from leadsla.streams.report import goal_text

    if args.write_target is not None and args.policies is None:
        raise CliError("--write-target needs --policies FILE: the file to write the goal into")
    try:
        goal = lead_goal(args.quota, _share(args.marketing_share, "--marketing-share", "0.6 or 60%"), args.deal_size,
                         _share(args.close_rate, "--close-rate", "0.25 or 25%"), _days(args.days))
    except FunnelError as exc:
        raise CliError(f"--{exc.name.replace('_', '-')}: {exc.problem}") from None
    print(orjson.dumps(goal.as_dict()).decode() if args.json else goal_text(goal))
    if args.write_target is not None:
        from leadsla.streams.policy_edit import EditError, goal_for_period, target_period, write_target_goal

        # The target's goal is for its own period (a week's share of a
        # 30-day figure, not all of it).
        try:
            period = target_period(args.policies, args.write_target)
            target_goal, how = goal_for_period(goal.leads_needed, goal.days, period)
            done = write_target_goal(args.policies, args.write_target, target_goal)
        except EditError as exc:
            raise CliError(str(exc)) from None
        print(f"{done} target {args.write_target}: goal {target_goal} leads per {period}{how} in {args.policies}",
              file=sys.stderr)
    return 0


def cmd_recalibrate(args: argparse.Namespace) -> int:
    import time

    import orjson

    from leadsla.models.funnel import FunnelBuilder, FunnelError, LeadGoal, exact, parse_instant
    from leadsla.streams.history import HistoryError, read_events
    from leadsla.streams.report import funnel_dict, funnel_text

    settings = make_settings(args)
    try:
        start = None if args.from_ is None else parse_instant(args.from_, "--from")
        end = None if args.to is None else parse_instant(args.to, "--to")
        quota = None if args.quota is None else exact(args.quota, "--quota")
    except FunnelError as exc:
        raise CliError(str(exc)) from None
    if start is not None and end is not None and start >= end:
        raise CliError(f"--from {args.from_} is not before --to {args.to}: the range is empty")
    if quota is not None and quota <= 0:
        raise CliError(f"--quota: must be more than 0, got {args.quota}")
    days = _days(args.days)
    policies = _load(settings.policies)
    try:
        builder = FunnelBuilder(start, end, policies, args.policy)
    except KeyError:
        raise CliError(f"{settings.policies} has no policy {args.policy!r} (it has {', '.join(policies.names)}); "
                       "choose one with --policy") from None
    bootstrap = _reachable(settings)
    now_us = time.time_ns() // 1000
    try:
        stats = read_events(bootstrap, settings.input_topic, builder.add, max_event_bytes=settings.max_event_bytes,
                            max_skew_us=round(settings.max_clock_skew * 1_000_000), now_us=now_us,
                            security=settings.kafka_security())
    except HistoryError as exc:
        raise CliError(str(exc)) from None
    # Clocks are judged as of the range's end, or now if that is earlier:
    # a deadline still ahead of the wall clock has not been missed yet.
    funnel = builder.result(now_us if end is None else min(end, now_us))
    goal: LeadGoal | None = None
    problem_goal: FunnelError | None = None
    try:
        goal = funnel.next_period(quota, days)
    except FunnelError as exc:
        problem_goal = exc
    if args.json:
        print(orjson.dumps(funnel_dict(funnel, settings.input_topic, stats, goal, problem_goal, quota is None)).decode())
    else:
        print(funnel_text(funnel, settings.input_topic, stats, goal, problem_goal, quota is None))
    return 0


def _reachable(settings: Settings) -> str:
    """The bootstrap of a broker that answers; CliError otherwise, and
    BrokerAuthError (one line naming the cause) when it refuses the
    credentials or its certificate does not verify."""
    import asyncio

    from leadsla.streams.broker import probe_broker

    bootstrap = settings.bootstrap()
    problem = asyncio.run(probe_broker(bootstrap, settings.broker_probe_timeout, settings.kafka_security()))
    if problem:
        raise CliError(f"cannot reach the broker at {bootstrap} (--broker / LEADSLA_BROKER): {problem}")
    return bootstrap


def cmd_publish(args: argparse.Namespace) -> int:
    from leadsla.streams import eventio

    settings = make_settings(args)
    try:
        mapping = eventio.CsvMapping(
            columns=eventio.parse_assignments(args.map, "--map"),
            constants=eventio.parse_assignments(args.set, "--set"),
            extra_to_attributes=args.extra_columns == "attributes",
            timezone=args.timezone, delimiter=args.delimiter)
        bootstrap = None if args.dry_run else _reachable(settings)
        limits = eventio.Limits(settings.max_event_bytes, round(settings.max_clock_skew * 1_000_000))
        stats = eventio.publish_file(args.file, bootstrap, settings.input_topic, limits, fmt=args.format,
                                     mapping=mapping, encoding=args.encoding, security=settings.kafka_security())
    except eventio.EventIOError as exc:
        raise CliError(str(exc)) from None
    print(f"leadsla publish: {stats.summary(settings.input_topic, args.dry_run)}", file=sys.stderr)
    if stats.interrupted:
        return 130
    return 1 if stats.rejected else 0


def _read_command(follow: bool, bootstrap: str, topic: str, handle: Any, security: Any = None) -> int:
    """Read ``topic`` into ``handle`` (``security``: a KafkaSecurity, default
    PLAINTEXT); exit status 0 (130 when a signal cut a read without --follow)."""
    import os

    from leadsla.streams import eventio

    try:
        _, interrupted = eventio.read_until_interrupted(bootstrap, topic, handle, follow, security)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
    except eventio.EventIOError as exc:
        raise CliError(str(exc)) from None
    except BrokenPipeError:
        # The reader of our output went away (| head): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 130 if interrupted and not follow else 0


def cmd_outcomes(args: argparse.Namespace) -> int:
    from leadsla.streams import eventio

    settings = make_settings(args)
    bootstrap = _reachable(settings)
    f = eventio.Filters(policies=frozenset(args.policy), outcomes=frozenset(args.outcome), leads=frozenset(args.lead))
    if args.table:
        print(eventio.table_header(eventio.OUTCOME_COLUMNS), flush=True)
    return _read_command(args.follow, bootstrap, settings.outcomes_topic,
                         eventio.outcome_printer(sys.stdout, f, args.table, args.follow), settings.kafka_security())


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from leadsla.streams import eventio

    settings = make_settings(args)
    bootstrap = _reachable(settings)
    f = eventio.Filters(reasons=frozenset(args.reason), leads=frozenset(args.lead))
    if args.table:
        print(eventio.table_header(eventio.DEAD_LETTER_COLUMNS), flush=True)
    return _read_command(args.follow, bootstrap, settings.dlq_topic,
                         eventio.dead_letter_printer(sys.stdout, f, args.table, args.follow), settings.kafka_security())


def cmd_lead(args: argparse.Namespace) -> int:
    import orjson

    from leadsla.streams.client import ApiError, api_base, lead, lead_text, printable

    try:
        answer = lead(api_base(args.api), args.lead_id)
    except ApiError as exc:
        raise CliError(printable(str(exc), 300)) from None  # the id comes back in the message
    print(orjson.dumps(answer).decode() if args.json else lead_text(answer))
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    import orjson

    from leadsla.streams.client import ApiError, api_base, printable, queue, queue_text, unknown_team

    try:
        base = api_base(args.api)
        answer = queue(base, args.team, args.rep, args.policy, args.limit)
    except ApiError as exc:
        raise CliError(printable(str(exc), 300)) from None
    # An empty queue for a team no worker has heard of is most often a typo:
    # say so (exit 1) rather than report an idle team.
    problem = None
    if args.team is not None and not answer["clocks"] and answer.get("complete", True):
        problem = unknown_team(base, args.team)
    if problem is None or args.json:
        print(orjson.dumps(answer).decode() if args.json else queue_text(answer))
    if problem is not None:
        print(f"leadsla: {problem}", file=sys.stderr)
        return 1
    return 0


def _topics_ready(settings: Settings, loop: asyncio.AbstractEventLoop) -> Settings:
    """Create missing topics; returns the settings with the input topic's real
    partition count, which the tables must share (an existing CRM topic keeps
    its own)."""
    from leadsla.streams.broker import ensure_topics, partition_count

    # The input topic first: the others (the period reports are co-partitioned
    # with the ledger table) are created with its real partition count.
    security = settings.kafka_security()
    created = loop.run_until_complete(ensure_topics(settings.bootstrap(), [settings.input_topic], settings.partitions,
                                                    security=security))
    actual = loop.run_until_complete(partition_count(settings.bootstrap(), settings.input_topic, security))
    if actual and actual != settings.partitions:
        log.info("%s has %d partitions (LEADSLA_PARTITIONS is %d): the tables follow the topic",
                 settings.input_topic, actual, settings.partitions)
        settings = settings.model_copy(update={"partitions": actual})
    created += loop.run_until_complete(ensure_topics(settings.bootstrap(), settings.required_topics(), settings.partitions,
                                                     security=security))
    if created:
        log.info("created topics %s with %d partitions", ", ".join(created), settings.partitions)
    return settings


def cmd_broker(args: argparse.Namespace) -> int:
    import asyncio

    from pydantic import ValidationError

    from leadsla.streams.broker import EmbeddedBroker
    from leadsla.streams.settings import Settings

    overrides = {"partitions": args.partitions} if args.partitions else {}
    broker = EmbeddedBroker(args.listen)
    broker.check_listen()  # before Settings, which would call it a bad --broker
    # The embedded broker speaks PLAINTEXT only: the LEADSLA_KAFKA_* of the
    # environment (meant for another broker) do not apply to it.
    plaintext: dict[str, Any] = {
        "kafka_security_protocol": "PLAINTEXT", "kafka_sasl_mechanism": None, "kafka_sasl_username": None,
        "kafka_sasl_password": None, "kafka_sasl_password_file": None, "kafka_ssl_cafile": None,
        "kafka_ssl_certfile": None, "kafka_ssl_keyfile": None}
    try:
        settings = Settings(broker=f"kafka://{args.listen}", **overrides, **plaintext)
    except ValidationError as exc:
        raise settings_error(exc, ("partitions",)) from None
    broker.start()
    loop = asyncio.new_event_loop()
    try:
        _topics_ready(settings, loop)
        print(f"leadsla broker: listening on {args.listen}; topics {', '.join(settings.required_topics())} "
              f"({settings.partitions} partitions). Ctrl-C stops it (its data is in memory only).", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        async def wait() -> None:
            while not stop.is_set():
                if broker.proc is not None and broker.proc.poll() is not None:
                    raise CliError(f"the embedded broker exited with status {broker.proc.returncode}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

        loop.run_until_complete(wait())
        print("leadsla broker: stopping", flush=True)
    finally:
        broker.stop()
        loop.close()
    return 0


def _broker_answers(settings: Settings, loop: asyncio.AbstractEventLoop) -> bool:
    """Wait until the broker answers (one log line per attempt, backoff up
    to ``broker_wait_max``). False when Ctrl-C or SIGTERM stopped the wait."""
    import asyncio

    from leadsla.streams.broker import probe_broker
    from leadsla.streams.health import wait_for_broker

    where = settings.bootstrap()

    security = settings.kafka_security()

    async def probe() -> str | None:
        # Raises BrokerAuthError for refused credentials: no waiting then.
        return await probe_broker(where, settings.broker_probe_timeout, security)

    task = loop.create_task(wait_for_broker(probe, where, cap=settings.broker_wait_max))
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
        return True
    except asyncio.CancelledError:
        return False
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _port_free(host: str, port: int) -> None:
    """Refuse, in one line and before anything starts, a web port another
    process holds (Faust would fail later with a long traceback)."""
    import errno
    import socket

    if port == 0:
        return  # the system picks one
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
            raise CliError(f"web port {host}:{port} {why}; choose another with --web-port or LEADSLA_WEB_PORT") from None


def cmd_run(args: argparse.Namespace, demo: bool = False) -> int:
    import asyncio

    import faust

    from leadsla.streams.api import exposure_problem
    from leadsla.streams.app import build_monitor
    from leadsla.streams.broker import EmbeddedBroker
    from leadsla.streams.settings import EMBEDDED_LISTEN

    settings = make_settings(args)
    problem = exposure_problem(settings)
    if problem is not None:
        raise CliError(problem)
    policies = _load(settings.policies)
    _own_logging(settings.log_level)
    # The demo is one process (its traffic runs inside the worker).
    workers = 1 if demo else settings.workers
    if workers < 1:
        raise CliError(f"--workers takes a number of worker processes, 1 or more, got {workers} "
                       "(--workers / LEADSLA_WORKERS)")
    index: int | None = getattr(args, "worker_index", None)
    # Where people read: the status lines go to the terminal, if any; a
    # supervised worker's output is a pipe, so its supervisor says whether
    # the pipe ends at one.
    out = _terminal_stream() or (sys.stdout if getattr(args, "terminal", False) else None)
    for port in range(settings.web_port, settings.web_port + workers):
        _port_free(settings.web_host, port)
    demo_note: list[str] = []
    if demo:
        policies, demo_note = _demo_calendars(args, settings, policies)
    security = settings.kafka_security()
    if settings.broker is None and security.protocol != "PLAINTEXT":
        raise CliError(f"LEADSLA_KAFKA_SECURITY_PROTOCOL={security.protocol} needs a broker (--broker / "
                       "LEADSLA_BROKER): the embedded broker speaks PLAINTEXT only")
    broker = None
    if settings.broker is None:
        broker = EmbeddedBroker(EMBEDDED_LISTEN)
        broker.start()
    if workers > 1:
        from leadsla.streams.supervisor import run_workers

        if security.protocol != "PLAINTEXT":
            # Refused credentials stop the whole run here, once, rather
            # than each worker in turn, restarted by the supervisor.
            from leadsla.streams.broker import probe_broker

            asyncio.run(probe_broker(settings.bootstrap(), settings.broker_probe_timeout, security))

        last = settings.web_port + workers - 1
        print(f"leadsla: {workers} workers on {settings.bootstrap()}{' (embedded broker)' if broker else ''}; "
              f"worker i serves /metrics and /api/leads/<lead_id> on http://{settings.web_host}:"
              f"{settings.web_port}+i ({settings.web_port}-{last}); their lines start with [worker i]\n"
              f"{describe(policies)}\nCtrl-C stops them all.", flush=True)
        try:
            return run_workers(args.argv, workers, settings.web_port, settings.data_dir,
                               None if broker is None else f"kafka://{EMBEDDED_LISTEN}", terminal=out is not None)
        finally:
            if broker is not None:
                broker.stop()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        if not _broker_answers(settings, loop):
            print("leadsla: stopped while waiting for the broker", file=sys.stderr, flush=True)
            return 0
        settings = _topics_ready(settings, loop)
        monitor = build_monitor(settings, policies)
        where = f"http://{settings.web_host}:{settings.web_port}"
        if demo:
            import time

            from leadsla.streams.demo import TrafficGenerator, run_demo_traffic

            stop = asyncio.Event()
            gen = TrafficGenerator(policies)
            plan = gen.plan(time.time_ns() // 1000, leads=args.history_leads)
            demo_note.append(_try_next(plan.showcase, settings, where))

            @monitor.app.task
            async def traffic() -> None:
                try:
                    await run_demo_traffic(settings.bootstrap(), settings.input_topic, policies, stop,
                                           gen=gen, plan=plan, security=security)
                except asyncio.CancelledError:
                    stop.set()
                    raise

        from leadsla.streams.console import attach

        console = attach(monitor, out)
        if index is None:
            print(f"leadsla: {'demo' if demo else 'monitor'} on {settings.bootstrap()}"
                  f"{' (embedded broker)' if broker else ''}; metrics at {where}/metrics, "
                  f"lead clocks at {where}/api/leads/<lead_id>\n{describe(policies)}\n"
                  + "".join(f"{note}\n" for note in demo_note)
                  + f"Ctrl-C stops it.{' A status line follows every few seconds.' if out else ''}", flush=True)
        else:  # the supervisor printed the banner
            log.info("worker %d: metrics at %s/metrics", index, where)
        # Faust narrates every service start at INFO; show its warnings and
        # leadsla's own info unless debugging.
        faust_level = "DEBUG" if settings.log_level == "debug" else "WARNING"
        worker = faust.Worker(monitor.app, loop=loop, loglevel=faust_level, quiet=True, override_logging=True)
        # Faust's spinner writes cursor escapes and backspaces to a terminal,
        # and its end ("\b" and show-cursor) even to a pipe or a file: the
        # status lines replace it.
        worker.spinner = None
        _own_logging(settings.log_level)
        code = 0
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            code = int(exc.code or 0)
        console.summary()
        return code
    finally:
        if broker is not None:
            broker.stop()
    return 0


def _demo_calendars(args: argparse.Namespace, settings: Settings,
                    policies: PolicySet) -> tuple[PolicySet, list[str]]:
    """The policies the demo runs, and banner lines saying why.

    With its own embedded broker the demo replaces them with one open around
    the clock (``demo.demo_policies``), unless ``--keep-calendars``: at night
    live leads would otherwise wait for the next opening. With ``--broker``
    it may join other workers' group (the Compose demo profile does), which
    must judge alike, so it keeps them and says which are closed now."""
    import time

    from leadsla.streams.demo import demo_policies

    swapped, replaced = demo_policies(policies)
    if not replaced:
        return policies, []
    names = ", ".join(f"{c.name} ({c.timezone})" for c in replaced)
    if settings.broker is None and not args.keep_calendars:
        return swapped, [f"demo: calendar {names} replaced by demo_24x7, open around the clock, for the demo only: "
                         "live leads are decided at any hour (--keep-calendars keeps the file's)"]
    now_us = time.time_ns() // 1000
    closed = [c for c in replaced if not c.is_open(now_us)]
    if not closed:
        return policies, []
    why = "as asked (--keep-calendars)" if args.keep_calendars else "with --broker, as the group's other workers do"
    return policies, [f"demo: calendar {', '.join(c.name for c in closed)} is closed now, so live clocks wait for "
                      f"it to open; the demo keeps the policies' calendars {why}"]


def _terminal_stream() -> Any:
    """The standard stream attached to a terminal, stdout first (None: neither)."""
    from leadsla.streams.console import is_terminal

    for stream in (sys.stdout, sys.stderr):
        if is_terminal(stream):
            return stream
    return None


def _try_next(lead_id: str, settings: Settings, where: str) -> str:
    """The demo's "what next": a lead to look up and commands to try."""
    broker = "" if settings.broker is None else f" --broker {settings.broker}"
    api = "" if where == "http://127.0.0.1:6066" else f" --api {where}"
    return ("Try, in another terminal:\n"
            f"  leadsla lead {lead_id}{api}    # a lead handed off 50 min ago, first contacted a minute from now\n"
            f"  leadsla outcomes --follow{broker}    # every decision as it is made\n"
            f"  curl -s {where}/metrics | grep leadsla_sla_outcomes_total\n"
            f"  curl -s {where}/api/leads/{lead_id}")


def _own_logging(level: str) -> None:
    # Faust's worker reconfigures the root logger; leadsla keeps its own handler.
    # The libraries' loggers get an explicit level: left at NOTSET they build a
    # debug record for every message produced (a tenth of the worker's CPU).
    libs = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("aiokafka", "faust", "mode", "kafka"):
        logging.getLogger(name).setLevel(libs)
    own = logging.getLogger("leadsla")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    own.handlers[:] = [handler]
    own.propagate = False
    own.setLevel(level.upper())


def main(argv: list[str] | None = None) -> int:
    """Run ``leadsla`` with ``argv`` (default: the process's arguments) and
    return its exit status: 0 done, 1 as each command documents, 2 a bad
    argument or a failure (one line on stderr), 130 Ctrl-C before the
    command took over the signal itself (``leadsla: interrupted``)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C while the command starts: importing its modules, probing the
        # broker. Its resources are released by their own finally clauses.
        with contextlib.suppress(OSError, ValueError):
            print("leadsla: interrupted", file=sys.stderr, flush=True)
        # CPython marks a KeyboardInterrupt that went through a string
        # exec or eval (dataclasses and namedtuple build their methods so,
        # at import time) as unhandled even once caught here, and
        # ``python -m leadsla`` then ends by SIGINT instead of with status
        # 130. Each string exec clears that mark when it starts.
        exec("", {})
        return 130


def _main(argv: list[str] | None) -> int:
    from leadsla.streams.broker import BrokerError

    ap = parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        # argparse would repeat every unknown word, the value of a mistyped
        # --password flag included: only the option names are said back.
        names = sorted({a.split("=", 1)[0] for a in unknown if a.startswith("-")})
        said = " ".join(names) if names else f"{len(unknown)} value(s) this command does not take"
        hint = ("; TLS and SASL settings, the password included, come from the environment only "
                "(LEADSLA_KAFKA_*, see the README)" if any("sasl" in n or "pass" in n or "ssl" in n for n in names)
                else "")
        ap.error(f"unrecognized arguments: {said}{hint}")
    args.argv = argv[argv.index(args.command) + 1:] if args.command in argv else []
    if args.command is None:
        ap.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    commands = {
        "broker": cmd_broker, "run": cmd_run, "demo": lambda a: cmd_run(a, demo=True), "policies": cmd_policies,
        "generate": cmd_generate, "dashboards": cmd_dashboards, "calculate": cmd_calculate,
        "recalibrate": cmd_recalibrate, "lead": cmd_lead, "queue": cmd_queue, "publish": cmd_publish,
        "outcomes": cmd_outcomes, "dead-letters": cmd_dead_letters,
    }
    command = commands.get(args.command)
    if command is None:
        return 2
    try:
        return int(command(args))
    except (CliError, BrokerError) as exc:
        print(f"leadsla: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
