"""streams.cli.main: help texts, the policies subcommand and its errors, and
the argument errors that stop before any server starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadsla.streams.cli import main
from leadsla.streams.settings import EXAMPLE_POLICIES


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
    # demo_request_first_touch's objective 0.9 puts the 14.4x page out of reach: a warning, not an error.
    assert err == (
        "leadsla: warning: policy demo_request_first_touch, page tier 5m/1h: burn factor 14.4 cannot fire with "
        "objective 0.9 (error budget 10 %, threshold 144 % of clocks breached); capped to 10, so it fires when "
        "every decided clock in both windows breached\n"
    )
    assert out.splitlines() == [
        f"{EXAMPLE_POLICIES}: 3 policies",
        "  first_touch: lead.handed_off -> lead.contact_attempt, lead.connected, lead.disqualified, lead.recycled "
        "within 1h (business hours of sales_office, America/New_York); objective 95.0%, at risk at 75%",
        "  disposition: lead.handed_off -> lead.qualified, lead.disqualified, lead.recycled within 20h "
        "(business hours of sales_office, America/New_York); objective 95.0%, at risk at 75%; pauses (at most 3d)",
        "  demo_request_first_touch: lead.handed_off -> lead.contact_attempt, lead.connected, lead.disqualified "
        "within 15m (business hours of sales_office, America/New_York); objective 90.0%, at risk at 75%; "
        "match attributes.form in ['demo_request']",
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
        f"{path}: 1 policies",
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


def test_broker_with_a_bad_listen_address_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "--listen", "localhost"]) == 2
    assert capsys.readouterr().err == "leadsla: --listen must be HOST:PORT, got 'localhost'\n"


def test_bad_log_level_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--log-level", "loud"])
    assert info.value.code == 2
    assert "argument --log-level: invalid choice: 'loud'" in capsys.readouterr().err
