"""leadsla calculate and the parts of leadsla recalibrate that need no broker:
the table and JSON, one-line errors with exit status 2, the progress display."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import pytest

from leadsla.models.funnel import observe
from leadsla.streams.cli import main
from leadsla.streams.history import Progress, ReadStats
from leadsla.streams.report import funnel_dict, funnel_text
from tests.models.conftest import MINIMAL_YAML, D, ev, pol, ts
from tests.streams.test_cli import flat


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    for name in ("LEADSLA_BROKER", "LEADSLA_POLICIES", "LEADSLA_INPUT_TOPIC"):
        monkeypatch.delenv(name, raising=False)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


GUIDE = ["calculate", "--quota", "5000", "--marketing-share", "1", "--deal-size", "100", "--close-rate", "0.5"]


def test_the_guides_example_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(GUIDE, capsys)
    assert (code, err) == (0, "")
    assert out == (
        "Marketing's lead goal for a period of 30 days\n"
        "  quota                   5,000\n"
        "  marketing share          100%\n"
        "  marketing revenue goal  5,000   quota x marketing share\n"
        "  deal size                 100\n"
        "  customers needed           50   ceil(5,000 / 100)\n"
        "  close rate                50%\n"
        "  leads needed              100   ceil(50 / 0.5)\n"
        "  leads per day            3.33   100 / 30 days\n"
    )


def test_the_guides_example_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([*GUIDE, "--json", "--days", "20"], capsys)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert json.loads(out) == {
        "quota": 5000, "marketing_share": 1, "deal_size": 100, "close_rate": 0.5, "days": 20,
        "marketing_revenue_goal": 5000, "customers_needed": 50, "leads_needed": 100, "leads_per_day": 5,
    }


def test_decimal_inputs_are_exact(capsys: pytest.CaptureFixture[str]) -> None:
    # 0.3 x 1000 / 100 is 3.0000000000000004 in floats: 4 customers by a float ceiling.
    code, out, _ = run(["calculate", "--quota", "1000", "--marketing-share", "0.3", "--deal-size", "100",
                        "--close-rate", "0.3", "--json"], capsys)
    assert code == 0
    got = json.loads(out)
    assert (got["marketing_revenue_goal"], got["customers_needed"], got["leads_needed"]) == (300, 3, 10)


def test_tiny_and_huge_figures_keep_their_digits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["calculate", "--quota", "5000", "--marketing-share", "1", "--deal-size", "0.0000001",
                        "--close-rate", "0.00000000001"], capsys)
    assert code == 0
    rows = {line.split("  ")[1].strip(): line for line in out.splitlines()[1:]}
    assert rows["deal size"].split()[-1] == "0.0000001"
    assert "166,666,666,666,666,666,666.67" in rows["leads per day"]  # exact: no float noise


def test_a_tiny_close_rate_is_shown_not_rounded_to_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["calculate", "--quota", "5000", "--marketing-share", "1", "--deal-size", "100",
                        "--close-rate", "0.00001"], capsys)
    assert code == 0
    rows = {line.split("  ")[1].strip(): line for line in out.splitlines()[1:]}
    assert rows["close rate"].split()[-1] == "0.001%"
    assert rows["leads needed"].endswith("ceil(50 / 0.00001)")
    assert "5,000,000" in rows["leads needed"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--quota", "0"), "leadsla: --quota: must be more than 0, got 0"),
        (("--quota", "5,000"), "leadsla: --quota: must be a number, got '5,000'"),
        (("--marketing-share", "60"),
         "leadsla: --marketing-share: must be more than 0 and at most 1 (a fraction: 0.6 is 60 %), got 60"),
        (("--marketing-share", "0"), "leadsla: --marketing-share: must be more than 0 and at most 1"),
        (("--deal-size", "-1"), "leadsla: --deal-size: must be more than 0, got -1"),
        (("--close-rate", "1.5"), "leadsla: --close-rate: must be more than 0 and at most 1"),
        (("--close-rate", "nan"), "leadsla: --close-rate: must be a finite number, got NaN"),
        (("--days", "0"), "leadsla: --days: must be a whole number of days, 1 or more, got '0'"),
        (("--days", "2.5"), "leadsla: --days: must be a whole number of days, 1 or more, got '2.5'"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(change: tuple[str, str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = list(GUIDE)
    if change[0] in argv:
        argv[argv.index(change[0]) + 1] = change[1]
    else:
        argv += change
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith(message)


@pytest.mark.parametrize(("share", "rate"), [("60%", "25%"), ("60 %", "25.0%"), ("0.6", "0.25")])
def test_shares_and_rates_may_be_percentages(share: str, rate: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["calculate", "--quota", "1000", "--marketing-share", share, "--deal-size", "100",
                          "--close-rate", rate, "--json"], capsys)
    assert (code, err) == (0, "")
    got = json.loads(out)
    assert (got["marketing_share"], got["close_rate"], got["customers_needed"], got["leads_needed"]) == (
        0.6, 0.25, 6, 24)


def test_a_tiny_percentage_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["calculate", "--quota", "1000", "--marketing-share", "100%", "--deal-size", "100",
                        "--close-rate", "0.001%", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["leads_needed"] == 1_000_000  # 10 customers at 1 in 100,000


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--marketing-share", "150%", "leadsla: --marketing-share: must be more than 0 and at most 1"),
    ("--marketing-share", "%", "leadsla: --marketing-share: must be a number or a percentage (0.6 or 60%), got '%'"),
    ("--close-rate", "ten%", "leadsla: --close-rate: must be a number or a percentage (0.25 or 25%), got 'ten%'"),
    ("--close-rate", "nan%", "leadsla: --close-rate: must be a number or a percentage (0.25 or 25%), got 'nan%'"),
])
def test_a_bad_percentage_is_one_line(flag: str, value: str, message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    argv = list(GUIDE)
    argv[argv.index(flag) + 1] = value
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(message), err


def test_a_missing_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["calculate", "--quota", "5000"])
    assert info.value.code == 2
    assert "the following arguments are required: --marketing-share, --deal-size, --close-rate" in capsys.readouterr().err


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    for command, phrases in [
        ("calculate", ["customers needed = ceil(Q x S / D)", "--days N days in the period (default 30)", "--json"]),
        ("recalibrate", ["--from DATE", "YYYY-MM-DD (UTC midnight) or RFC 3339", "[LEADSLA_BROKER]",
                         "LEADSLA_INPUT_TOPIC", "[LEADSLA_POLICIES]", "--policy NAME", "(default first_touch)"]),
    ]:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = flat(capsys.readouterr().out)
        for phrase in phrases:
            assert phrase in out, (command, phrase)


# -- recalibrate's errors, before any broker is asked ------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-32"], "leadsla: --from: expected YYYY-MM-DD (UTC) or an RFC 3339 timestamp"),
        (["--to", "yesterday"], "leadsla: --to: expected YYYY-MM-DD"),
        (["--from", "2026-12-01", "--to", "2026-11-01"], "leadsla: --from 2026-12-01 is not before --to 2026-11-01"),
        (["--quota", "0"], "leadsla: --quota: must be more than 0, got 0"),
        (["--days", "x"], "leadsla: --days: must be a whole number of days"),
        (["--policy", "nope"], "has no policy 'nope' (it has first_touch, "),
        (["--policy", "nope"], "); choose one with --policy"),
        (["--broker", "kafka://"], "leadsla: --broker / LEADSLA_BROKER: 'kafka://' has no host"),
    ],
)
def test_recalibrate_refuses_bad_arguments_in_one_line(args: list[str], message: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["recalibrate", "--broker", "kafka://127.0.0.1:1", *args], capsys)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert message in err


def test_recalibrate_without_a_broker_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.integration.conftest import free_port

    port = free_port()  # nothing listens there
    code, out, err = run(["recalibrate", "--broker", f"kafka://127.0.0.1:{port}"], capsys)
    assert (code, out) == (2, "")
    assert err == f"leadsla: cannot reach the broker at 127.0.0.1:{port} (--broker / LEADSLA_BROKER): connection refused\n"


# -- the progress display ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_off_a_terminal_is_plain_lines_every_few_seconds() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(1000, "reading lead-events", out, interval=5.0, tty=False, clock=clock)
    for i in range(1, 20):
        clock.t = i
        p.update(i * 50, i * 50)
    p.update(1000, 1000, final=True)
    lines = out.getvalue().splitlines()
    assert lines == [
        "reading lead-events: 25% (250 records, 5s)",
        "reading lead-events: 50% (500 records, 10s)",
        "reading lead-events: 75% (750 records, 15s)",
        "reading lead-events: 100% (1,000 records, 19s)",
    ]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_progress_off_a_terminal_says_nothing_for_a_quick_read() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(10, "reading", out, tty=False, clock=clock)
    clock.t = 1.0
    p.update(10, 10)
    p.update(10, 10, final=True)
    assert out.getvalue() == ""


def test_progress_on_a_terminal_redraws_one_line() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(200, "reading", out, tty=True, clock=clock)
    clock.t = 0.5
    p.update(100, 100)
    clock.t = 1.0
    p.update(200, 200, final=True)
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "\x1b" not in text
    assert "[###############...............]  50% 100 records" in text
    assert "[##############################] 100% 200 records" in text


# -- the report ----------------------------------------------------------------------------


def test_the_recalibration_report() -> None:
    t0 = ts("2026-11-02T09:00:00Z")
    events = [
        ev("lead.handed_off", t0, "a1", "a", source="marketing"),
        ev("lead.contact_attempt", t0 + 60_000_000, "a2", "a"),
        ev("deal.won", t0 + 2 * D, "a3", "a", amount=1200),
        ev("lead.created", t0, "b1", "b", source="marketing"),
        ev("deal.won", t0 + D, "c1", "c", source="sales", amount=800),
    ]
    f = observe(events, end_us=t0 + 10 * D, policies=pol(MINIMAL_YAML))
    stats = ReadStats(records=7, partitions=4)
    stats.rejected["malformed"] = 1
    goal = f.next_period()
    d = funnel_dict(f, "lead-events", stats, goal, None, True)
    assert d["to"] == "2026-11-12T09:00:00Z" and d["from"] is None
    assert (d["records"], d["rejected"], d["events"], d["leads"]) == (7, {"malformed": 1}, 5, 3)
    assert (d["marketing_leads"], d["customers"], d["close_rate"], d["average_deal_size"]) == (2, 1, 0.5, 1200)
    assert (d["marketing_revenue_share"], d["sales_cycle_days"]) == (0.6, 2)
    assert (d["revenue_first_touch_met"], d["revenue_first_touch_breached"], d["revenue_first_touch_open"],
            d["revenue_first_touch_untracked"]) == (1200, 0, 0, 800)
    assert d["next_period"] == {
        "quota": 2000, "marketing_share": 0.6, "deal_size": 1200, "close_rate": 0.5, "days": 30,
        "marketing_revenue_goal": 1200, "customers_needed": 1, "leads_needed": 2,
        "leads_per_day": float(Fraction(2, 30)), "quota_observed": True,
    }
    text = funnel_text(f, "lead-events", stats, goal, None, True)
    assert "  close rate                 50%   customers / marketing leads" in text
    assert "  marketing revenue share    60%   marketing revenue / all won revenue" in text
    assert "  all won revenue          2,000   2 leads of any source" in text
    assert "  met        1,200   1 lead\n" in text
    assert "  untracked    800   1 lead, no clock started" in text
    assert "  quota                   2,000   won revenue observed in the range" in text
    assert "  leads needed                2   ceil(1 / 0.5)" in text


def test_a_report_without_a_goal_says_why() -> None:
    f = observe([ev("lead.created", ts("2026-11-02T09:00:00Z"), "a", "a", source="sales")])
    try:
        f.next_period()
    except Exception as exc:
        problem = exc
    d = funnel_dict(f, "t", ReadStats(), None, problem, True)  # type: ignore[arg-type]
    assert d["next_period"] is None and d["next_period_unavailable"] == "no marketing leads in the range"
    assert d["close_rate"] is None
    assert "Next period: no goal: no marketing leads in the range" in funnel_text(
        f, "t", ReadStats(), None, problem, True)  # type: ignore[arg-type]


def test_no_escape_codes_in_a_report(tmp_path: Path) -> None:
    f = observe([])
    assert "\x1b" not in funnel_text(f, "t", ReadStats(), None, None, True)
