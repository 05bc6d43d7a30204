"""streams.cli.main: help texts, the policies subcommand and its errors, and
the argument errors that stop before any server starts."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from leadsla.streams import cli
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
                    "create lead-events, lead-events-dlq and sla-outcomes in it",
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
        "  disposition: lead.handed_off -> lead.qualified, lead.disqualified, lead.recycled within 20h "
        "(business hours of sales_office, America/New_York); objective 95.0%, at risk at 75%; pauses (at most 3d)",
        "  demo_request_first_touch: lead.handed_off -> lead.contact_attempt, lead.connected, lead.disqualified "
        "within 15m (business hours of sales_office, America/New_York); objective 90.0%, at risk at 75%; "
        "match attributes.form in ['demo_request']",
        "  follow_up_depth: lead.handed_off -> lead.connected within 2d2h (business hours of sales_office, "
        "America/New_York); objective 90.0%, at risk at 75%; depth: met by 6 x lead.contact_attempt or reaching the "
        "lead; breached if given up (lead.disqualified, lead.recycled) first",
        "  target mql_volume: 100 leads per month (America/New_York) by lead.mql; value by persona (director 50, "
        "executive 100, manager 40, otherwise 10), value goal 4000",
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

    async def probe(bootstrap: str, timeout: float) -> str | None:
        asked.append((bootstrap, timeout))
        return answers.pop(0)

    monkeypatch.setattr(cli, "probe_broker", probe)
    settings = Settings(broker="kafka://kafka-1:9092", broker_wait_max="10ms", broker_probe_timeout="1s")
    loop = asyncio.new_event_loop()
    try:
        assert cli._broker_answers(settings, loop) is True
    finally:
        loop.close()
    assert asked == [("kafka-1:9092", 1.0)] * 3


def test_sigterm_while_waiting_for_the_broker_stops_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    async def probe(bootstrap: str, timeout: float) -> str | None:
        return "connection refused"

    monkeypatch.setattr(cli, "probe_broker", probe)
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
