"""streams.cli.main: help texts, the policies subcommand and its errors, and
the argument errors that stop before any server starts."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from leadsla.models.policy import fingerprint, load_policies
from leadsla.streams import broker, cli
from leadsla.streams.cli import main
from leadsla.streams.settings import EXAMPLE_POLICIES, Settings


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # argparse wraps help to the terminal width; keep phrases on one line.
    monkeypatch.setenv("COLUMNS", "1000")


def flat(text: str) -> str:
    return " ".join(text.split())


def run_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    return flat(out)


def test_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_help(["--help"], capsys)
    assert out.startswith("usage: leadsla [-h] [--version] COMMAND ...")
    assert "Every option is also an environment variable: LEADSLA_<OPTION>" in out
    for var in ("LEADSLA_BROKER", "LEADSLA_POLICIES", "LEADSLA_WEB_PORT", "LEADSLA_ALLOWED_LATENESS"):
        assert var in out
    assert "broker run the embedded Kafka-compatible broker and create the topics" in out
    assert "run run the monitor" in out
    assert "demo broker, monitor and realistic traffic in one command" in out
    assert "policies check a policies file and show what it means" in out
    assert "leadsla policies my.yaml" in out


@pytest.mark.parametrize(
    ("command", "phrases"),
    [
        ("broker", ["usage: leadsla broker", "Run the embedded Kafka-compatible broker",
                    "create lead-events, lead-events-dlq, sla-outcomes, sla-periods and leadsla-period-reports in it",
                    "--listen LISTEN HOST:PORT to listen on (default 127.0.0.1:9092)", "[LEADSLA_PARTITIONS]"]),
        ("run", ["usage: leadsla run", "Run the SLA monitor: consume lead-events, decide clocks, publish sla-outcomes",
                 "Without --broker (and no LEADSLA_BROKER) it starts the embedded broker itself on 127.0.0.1:9092",
                 "[LEADSLA_BROKER]", "[LEADSLA_POLICIES]", "(default 6066) [LEADSLA_WEB_PORT]",
                 "[LEADSLA_ALLOWED_LATENESS]", "[LEADSLA_LOG_LEVEL]"]),
        ("demo", ["usage: leadsla demo", "Start the embedded broker, the monitor and a generator of realistic lead traffic",
                  "http://127.0.0.1:6066/metrics", "--history-leads", "[LEADSLA_BROKER]", "[LEADSLA_WEB_PORT]"]),
        ("policies", ["usage: leadsla policies [-h] [file]", "Parse and check a policies file",
                      "Exit status 2 with the position of the problem if the file is wrong",
                      "policies file (default: the bundled example)"]),
    ],
)
def test_subcommand_help(command: str, phrases: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_help([command, "--help"], capsys)
    for phrase in phrases:
        assert phrase in out, phrase


def test_no_command_prints_help_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("usage: leadsla [-h] [--version] COMMAND ...")
    assert "LEADSLA_BROKER" in out
    assert err == ""


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "leadsla: error: argument COMMAND: invalid choice: 'serve'" in err


def test_policies_without_a_file_describes_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policies"]) == 0
    out, err = capsys.readouterr()
    # An objective of 0.9 puts the 14.4x page out of reach: a warning, not an error.
    assert err == "".join(
        f"leadsla: warning: policy {name}, page tier 5m/1h: burn factor 14.4 cannot fire with "
        "objective 0.9 (error budget 10 %, threshold 144 % of clocks breached); capped to 10, so it fires when "
        "every decided clock in both windows breached\n"
        for name in ("demo_request_first_touch", "follow_up_depth")
    )
    assert out.splitlines() == [
        f"{EXAMPLE_POLICIES}: 4 policies, 1 target",
        "  first_touch: lead.handed_off -> lead.contact_attempt, lead.connected, lead.disqualified, lead.recycled "
        "within 1h (business hours of sales_office, America/New_York); objective 95.0%, at risk at 75%",
        "  disposition: lead.handed_off -> lead.qualified, lead.disqualified, lead.recycled within 2bd "
        "(business hours of sales_office, America/New_York); objective 95.0%, at risk at 75%; pauses on "
        "lead.contact_attempt where attributes.outcome in ['waiting_on_prospect'], resumes on lead.connected, "
        "lead.contact_attempt where attributes.outcome in ['no_answer', 'reached'], at most 3d",
        "  demo_request_first_touch: lead.handed_off -> lead.contact_attempt, lead.connected, lead.disqualified "
        "within 15m (business hours of sales_office, America/New_York); objective 90.0%, at risk at 75%; "
        "match attributes.form in ['demo_request']",
        "  follow_up_depth: lead.handed_off -> lead.connected within 5bd (business hours of sales_office, "
        "America/New_York); objective 90.0%, at risk at 75%; depth: met by 6 x lead.contact_attempt or reaching the "
        "lead; breached if given up (lead.disqualified, lead.recycled) first",
        "  calendar sales_office: America/New_York; mon-fri 08:00-18:00, sat-sun closed; holidays 2026-11-26, "
        "2026-12-25, 2027-01-01, 2027-05-31, 2027-07-05",
        "  target mql_volume: 100 leads per month (America/New_York) by lead.mql; value by persona (director 50, "
        "executive 100, manager 40, otherwise 10), value goal 4000",
        f"  fingerprint {fingerprint(load_policies(EXAMPLE_POLICIES))} (every worker of one group must show the same)",
    ]


def test_policies_with_the_contract_minimal_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "minimal.yaml"
    path.write_text(
        "policies:\n"
        "  - name: first_touch\n"
        "    start: lead.handed_off\n"
        "    stop: [lead.contact_attempt, lead.connected, lead.disqualified, lead.recycled]\n"
        "    goal: PT1H\n"
        "    on_restart: restart\n"
    )
    assert main(["policies", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: 1 policy",
        "  first_touch: lead.handed_off -> lead.contact_attempt, lead.connected, lead.disqualified, lead.recycled "
        "within 1h (wall-clock time); objective 95.0%, at risk at 80%; restarts on a new start",
        f"  fingerprint {fingerprint(load_policies(path))} (every worker of one group must show the same)",
    ]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (
            "policies:\n  - name: first_touch\n    start: lead.handed_off\n    stop: lead.contact_attempt\n    goal: soon\n",
            "5:5",
            "policies[0].goal: not a duration: 'soon' (use e.g. 90s, 15m, 1h30m, 2d, 500ms or ISO 8601 PT1H)",
        ),
        (
            "policies:\n  - name: first_touch\n    start: lead.handed_of\n    stop: lead.contact_attempt\n    goal: 1h\n",
            "3:5",
            "policies[0].start: unknown event type 'lead.handed_of'; known: deal.lost, deal.won, lead.accepted",
        ),
        (
            "policies:\n  - name: first_touch\n    start: [lead.handed_off\n    stop: lead.contact_attempt\n",
            "4:9",
            "not valid YAML: expected ',' or ']', but got ':'",
        ),
    ],
)
def test_policies_with_a_bad_file_returns_2_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["policies", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"leadsla: policies file: {path}:{where}: ")
    assert problem in lines[0]


def test_policies_with_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.yaml"
    assert main(["policies", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"leadsla: policies file: {path}: cannot read the policies file: No such file or directory\n"
    )


@pytest.mark.parametrize("listen", ["localhost", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:x"])
def test_broker_with_a_bad_listen_address_returns_2(listen: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "--listen", listen]) == 2
    assert capsys.readouterr().err == f"leadsla: --listen must be HOST:PORT (port 1-65535), got {listen!r}\n"


FORM = "expected kafka://HOST:PORT, several separated by ',' or ';'"


@pytest.mark.parametrize(
    ("broker", "problem"),
    [
        ("kafka://", "'kafka://' has no host"),
        ("kafka://kafka", "'kafka://kafka' has no port"),
        ("kafka://kafka:90x2", "'kafka://kafka:90x2' has a port that is not a number: '90x2'"),
        ("kafka://kafka:70000", "'kafka://kafka:70000' has port 70000, outside 1-65535"),
        ("https://kafka:9092", "'https://kafka:9092' has the scheme 'https://', not kafka://"),
        ("kafka://a:9092;kafka://b", "'kafka://b' (address 2 of 2) has no port"),
        ("kafka://a:9092,,kafka://b:9092", "address 2 of 3 is empty"),
    ],
)
@pytest.mark.parametrize("command", ["run", "demo"])
@pytest.mark.parametrize("how", ["flag", "variable"])
def test_a_bad_broker_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], broker: str, problem: str, command: str, how: str
) -> None:
    if how == "flag":
        argv = [command, "--broker", broker]
    else:
        monkeypatch.setenv("LEADSLA_BROKER", broker)
        argv = [command]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"leadsla: --broker / LEADSLA_BROKER: {problem}; {FORM}\n"


def test_several_bad_settings_are_listed_with_flag_and_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADSLA_BROKER_WAIT_MAX", "0s")
    assert main(["run", "--broker", "kafka://", "--partitions", "0"]) == 2
    assert capsys.readouterr().err == (
        "leadsla: invalid settings (flags or LEADSLA_* variables):\n"
        f"  --broker / LEADSLA_BROKER: 'kafka://' has no host; {FORM}\n"
        "  --partitions / LEADSLA_PARTITIONS: Input should be greater than or equal to 1\n"
        "  LEADSLA_BROKER_WAIT_MAX: Input should be greater than 0\n"
    )


def test_generate_refuses_a_bad_variable_rather_than_ignore_the_policies_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("LEADSLA_BROKER", "kafka://kafka")
    monkeypatch.setenv("LEADSLA_POLICIES", str(tmp_path / "mine.yaml"))
    assert main(["generate", "--check", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"leadsla: --broker / LEADSLA_BROKER: 'kafka://kafka' has no port; {FORM}\n"


def test_a_starting_worker_waits_for_its_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = ["connection refused", "connection refused", None]
    asked: list[tuple[str, float]] = []

    async def probe(bootstrap: str, timeout: float, security: object = None) -> str | None:
        asked.append((bootstrap, timeout))
        return answers.pop(0)

    monkeypatch.setattr(broker, "probe_broker", probe)  # imported by the command when it runs
    settings = Settings(broker="kafka://kafka-1:9092", broker_wait_max="10ms", broker_probe_timeout="1s")
    loop = asyncio.new_event_loop()
    try:
        assert cli._broker_answers(settings, loop) is True
    finally:
        loop.close()
    assert asked == [("kafka-1:9092", 1.0)] * 3


def test_sigterm_while_waiting_for_the_broker_stops_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    async def probe(bootstrap: str, timeout: float, security: object = None) -> str | None:
        return "connection refused"

    monkeypatch.setattr(broker, "probe_broker", probe)  # imported by the command when it runs
    settings = Settings(broker="kafka://kafka-1:9092")
    loop = asyncio.new_event_loop()
    loop.call_later(0.1, os.kill, os.getpid(), signal.SIGTERM)
    try:
        assert cli._broker_answers(settings, loop) is False
    finally:
        loop.close()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_bad_log_level_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--log-level", "loud"])
    assert info.value.code == 2
    assert "argument --log-level: invalid choice: 'loud'" in capsys.readouterr().err


def test_a_busy_web_port_is_one_line_naming_the_port_and_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["run", "--broker", "kafka://127.0.0.1:1", "--web-port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == (f"leadsla: web port 127.0.0.1:{port} is in use; choose another with --web-port or "
                   "LEADSLA_WEB_PORT\n")


# -- newcomer rough edges ---------------------------------------------------------------


def test_policies_show_selector_matches_and_calendar_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "calendars:\n"
        "  support:\n"
        "    timezone: Europe/Berlin\n"
        "    hours: {mon-thu: \"09:00-12:00\", fri: [\"09:00-12:00\", \"13:00-24:00\"], sun: \"10:00-14:00\"}\n"
        "policies:\n"
        "  - name: callback\n"
        "    start: {type: lead.handed_off, match: {segment: [smb, enterprise]}}\n"
        "    stop: [lead.connected, {type: lead.contact_attempt, match: {channel: call}}]\n"
        "    goal: 4h\n"
        "    calendar: support\n"
    )
    assert main(["policies", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: 1 policy",
        "  callback: lead.handed_off where segment in ['enterprise', 'smb'] -> lead.connected, lead.contact_attempt "
        "where channel in ['call'] within 4h (business hours of support, Europe/Berlin); objective 95.0%, at risk "
        "at 80%",
        "  calendar support: Europe/Berlin; mon-thu 09:00-12:00, fri 09:00-12:00 and 13:00-24:00, sat closed, "
        "sun 10:00-14:00; holidays none",
        f"  fingerprint {fingerprint(load_policies(path))} (every worker of one group must show the same)",
    ]


def test_a_holiday_in_another_format_names_the_expected_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "calendars:\n  c:\n    hours: {mon-fri: \"09:00-17:00\"}\n    holidays: [25/12/2026]\n"
        "policies:\n  - {name: a, start: lead.handed_off, stop: lead.connected, goal: 1h, calendar: c}\n"
    )
    assert main(["policies", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"leadsla: policies file: {path}:4:16: calendars.c.holidays[0]: not a date: '25/12/2026'; "
        "write it as YYYY-MM-DD, such as 2026-12-25\n"
    )


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_a_bad_duration_names_the_flag_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    argv = ["run", "--broker", "kafka://127.0.0.1:1"]
    if how == "flag":
        argv += ["--allowed-lateness", "2x"]
    else:
        monkeypatch.setenv("LEADSLA_ALLOWED_LATENESS", "2x")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("leadsla: --allowed-lateness / LEADSLA_ALLOWED_LATENESS: not a duration: '2x'")
    assert "allowed_lateness" not in err


@pytest.mark.parametrize(
    ("value", "problem"),
    [("0", "--workers takes a number of worker processes, 1 or more, got 0 (--workers / LEADSLA_WORKERS)"),
     ("two", "--workers / LEADSLA_WORKERS: Input should be a valid integer")],
)
def test_bad_workers_variable_is_refused_naming_flag_and_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, problem: str
) -> None:
    monkeypatch.setenv("LEADSLA_WORKERS", value)
    assert main(["run", "--broker", "kafka://127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.startswith(f"leadsla: {problem}")


def _free_ports(n: int) -> int:
    """A port p with p .. p+n-1 free (the supervisor checks them all)."""
    import socket

    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        try:
            for port in range(base, base + n):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError("no free ports")


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_workers_from_the_flag_or_the_variable_start_the_supervisor_with_one_banner(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    from leadsla.streams import supervisor

    seen: dict[str, object] = {}

    def fake_run_workers(argv: list[str], workers: int, base_port: int, data_dir: Path, broker: str | None,
                         terminal: bool = False) -> int:
        seen.update(workers=workers, base_port=base_port, broker=broker, terminal=terminal)
        return 0

    monkeypatch.setattr(supervisor, "run_workers", fake_run_workers)
    port = _free_ports(3)
    argv = ["run", "--broker", "kafka://127.0.0.1:1", "--web-port", str(port)]
    if how == "flag":
        argv += ["--workers", "3"]
    else:
        monkeypatch.setenv("LEADSLA_WORKERS", "3")
    assert main(argv) == 0
    assert seen == {"workers": 3, "base_port": port, "broker": None, "terminal": False}
    out = capsys.readouterr().out
    assert out.startswith(f"leadsla: 3 workers on 127.0.0.1:1; worker i serves /metrics and /api/leads/<lead_id> on "
                          f"http://127.0.0.1:{port}+i ({port}-{port + 2}); their lines start with [worker i]\n")
    assert out.count("\n  first_touch:") == 1 and out.endswith("Ctrl-C stops them all.\n")


def test_a_supervised_child_is_one_worker_without_the_supervisors_flags() -> None:
    from leadsla.streams.supervisor import child_argv

    assert child_argv(["--workers", "2", "--worker-index", "1", "--terminal", "--log-level", "debug"]) == [
        "--log-level", "debug"]
    assert child_argv(["--worker-index=0", "--workers=2"]) == []


def test_the_relay_prefixes_whole_lines() -> None:
    import io
    import threading

    from leadsla.streams.supervisor import relay

    out = io.StringIO()
    relay(io.BytesIO(b"first line\nsecond \xff line\r\nlast without newline"), "[worker 1] ", out, threading.Lock())
    assert out.getvalue() == "[worker 1] first line\n[worker 1] second \ufffd line\n[worker 1] last without newline\n"


def test_the_demo_names_a_lead_and_the_commands_to_try() -> None:
    settings = Settings(broker="kafka://127.0.0.1:19092")
    text = cli._try_next("lead-0123456789ab", settings, "http://127.0.0.1:7000")
    assert "leadsla lead lead-0123456789ab --api http://127.0.0.1:7000" in text
    assert "leadsla outcomes --follow --broker kafka://127.0.0.1:19092" in text
    assert "curl -s http://127.0.0.1:7000/metrics" in text
    default = cli._try_next("lead-x", Settings(), "http://127.0.0.1:6066")
    assert "leadsla lead lead-x    #" in default and "leadsla outcomes --follow    #" in default


@pytest.mark.parametrize(("rate", "shown"), [("0.07", "7%"), ("0.0725", "7.25%"), ("0.29", "29%"), ("0.57", "57%")])
def test_calculate_shows_small_rates_without_float_artefacts(
    capsys: pytest.CaptureFixture[str], rate: str, shown: str
) -> None:
    assert main(["calculate", "--quota", "1000", "--marketing-share", rate, "--deal-size", "1",
                 "--close-rate", rate]) == 0
    out = capsys.readouterr().out
    shares = [line.split() for line in out.splitlines() if line.startswith(("  marketing share", "  close rate"))]
    assert shares == [["marketing", "share", shown], ["close", "rate", shown]]
    assert "0000" not in out


def test_grafana_token_is_redacted_as_a_whole_word_only() -> None:
    from leadsla.dashboards.push import _redact

    assert _redact("token abc123 refused", ["abc123"]) == "token *** refused"
    # A short password must not eat into unrelated words.
    assert _redact("administrator admin", ["admin"]) == "administrator ***"


def _closed_today(tmp_path: Path) -> Path:
    """A policies file whose one calendar is closed now: today and the days
    around it (in UTC) are holidays."""
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    days = ", ".join((today + timedelta(days=d)).isoformat() for d in (-1, 0, 1))
    path = tmp_path / "closed.yaml"
    path.write_text(
        f"calendars:\n  office:\n    timezone: UTC\n    hours: {{daily: \"00:00-24:00\"}}\n    holidays: [{days}]\n"
        "policies:\n  - {name: a, start: lead.handed_off, stop: lead.connected, goal: 1h, calendar: office}\n"
    )
    return path


@pytest.mark.parametrize(
    ("broker", "keep", "swapped", "note"),
    [
        (None, False, True, "demo: calendar office (UTC) replaced by demo_24x7, open around the clock, for the demo "
                            "only: live leads are decided at any hour (--keep-calendars keeps the file's)"),
        (None, True, False, "demo: calendar office is closed now, so live clocks wait for it to open; the demo keeps "
                            "the policies' calendars as asked (--keep-calendars)"),
        ("kafka://kafka:9092", False, False, "demo: calendar office is closed now, so live clocks wait for it to "
                                             "open; the demo keeps the policies' calendars with --broker, as the "
                                             "group's other workers do"),
    ],
)
def test_the_demo_swaps_calendars_only_with_its_own_broker(
    tmp_path: Path, broker: str | None, keep: bool, swapped: bool, note: str
) -> None:
    import argparse

    from leadsla.models.policy import load_policies

    policies = load_policies(_closed_today(tmp_path))
    got, notes = cli._demo_calendars(argparse.Namespace(keep_calendars=keep), Settings(broker=broker), policies)
    assert notes == [note]
    assert (got.policies[0].calendar.name == "demo_24x7") is swapped
    assert (got is policies) is not swapped


def test_policies_say_what_a_goal_in_days_means_under_a_calendar(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "calendars:\n  emea:\n    timezone: Europe/Berlin\n    hours: {mon-fri: \"09:00-17:00\"}\n"
        "policies:\n"
        "  - {name: days, start: lead.handed_off, stop: lead.connected, goal: 3d, calendar: emea}\n"
        "  - {name: business_days, start: lead.handed_off, stop: lead.connected, goal: 3bd, calendar: emea}\n"
        "  - {name: hours, start: lead.handed_off, stop: lead.connected, goal: 36h, calendar: emea}\n"
        "  - {name: wall, start: lead.handed_off, stop: lead.connected, goal: 2d}\n"
    )
    assert main(["policies", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    days = lines.index(next(x for x in lines if x.startswith("  days:")))
    assert " within 3d (business hours of emea, Europe/Berlin)" in lines[days]
    assert lines[days + 1] == "    goal 3d = 72 business hours under calendar emea (for 3 business days write 3bd)"
    assert lines[days + 2].startswith("  business_days: lead.handed_off -> lead.connected within 3bd (")
    assert lines[days + 3].startswith("  hours: ") and " within 1d12h (" in lines[days + 3]
    assert lines[days + 4].startswith("  wall: ") and " within 2d (wall-clock time)" in lines[days + 4]
    assert sum("business hours under calendar" in x for x in lines) == 1


def test_only_whole_days_under_a_business_calendar_are_explained() -> None:
    from leadsla.models.policy import parse_policies

    ps = parse_policies("calendars:\n  emea:\n    hours: {mon-fri: \"09:00-17:00\"}\n"
                        "policies:\n"
                        "  - {name: a, start: lead.handed_off, stop: lead.connected, goal: 1d, calendar: emea}\n"
                        "  - {name: b, start: lead.handed_off, stop: lead.connected, goal: 2bd, calendar: emea}\n"
                        "  - {name: c, start: lead.handed_off, stop: lead.connected, goal: 36h, calendar: emea}\n"
                        "  - {name: d, start: lead.handed_off, stop: lead.connected, goal: 2d}\n")
    assert [(p.goal_text, cli.goal_meaning(p)) for p in ps.policies] == [
        ("1d", "goal 1d = 24 business hours under calendar emea (for 1 business day write 1bd)"),
        ("2bd", None), ("1d12h", None), ("2d", None)]


def test_ctrl_c_before_a_command_takes_over_is_one_line_and_130(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_policies", interrupted)
    assert main(["policies"]) == 130
    assert capsys.readouterr() == ("", "leadsla: interrupted\n")


def test_the_command_line_module_loads_no_third_party_package() -> None:
    """Ctrl-C while ``leadsla`` imports must reach :func:`cli.main`'s
    handler: the module itself imports only the standard library (and
    leadsla's light duration helpers); the rest comes inside ``main``."""
    import subprocess
    import sys

    code = ("import sys; import leadsla.streams.cli; "
            "print(sorted(m for m in ('pydantic', 'aiokafka', 'faust', 'yaml', 'orjson', 'asyncio') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_an_unknown_flag_never_says_its_value_back(capsys: pytest.CaptureFixture[str]) -> None:
    """A password typed as a flag value must not reach the terminal's
    scrollback or a CI log: only the option's name is said back, with where
    such settings come from."""
    with pytest.raises(SystemExit) as done:
        cli.main(["publish", "--sasl-password", "s3cret-XYZ", "events.jsonl"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "s3cret-XYZ" not in err
    assert err.splitlines()[-1] == (
        "leadsla: error: unrecognized arguments: --sasl-password; TLS and SASL settings, the password included, "
        "come from the environment only (LEADSLA_KAFKA_*, see the README)")
    with pytest.raises(SystemExit):
        cli.main(["policies", "a.yaml", "--kafka-ssl-keyfile=/secret/key.pem"])
    assert "/secret/key.pem" not in capsys.readouterr().err
