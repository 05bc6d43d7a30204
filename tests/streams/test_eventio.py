"""streams.eventio without a broker: input lines judged by the worker's own
rules (line numbers, reasons, size limit), the CSV mapping, the dry-run
publisher, the filters and the printed forms of outcomes and dead letters,
and the publish command's exit status and messages."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
from pathlib import Path

import orjson
import pytest

from leadsla.models.events import parse_timestamp_us
from leadsla.streams import eventio
from leadsla.streams.cli import main
from leadsla.streams.codec import decode
from leadsla.streams.eventio import Bad, CsvMapping, CsvRows, EventIOError, Filters, Good, Limits, Record

NOW = parse_timestamp_us("2026-11-30T12:00:00Z")
LIMITS = Limits(max_event_bytes=1024, max_skew_us=15 * 60 * 1_000_000, now_us=lambda: NOW)


def ev(**fields: object) -> bytes:
    base: dict[str, object] = {"event_id": "e1", "lead_id": "L1", "type": "lead.created",
                               "occurred_at": "2026-11-30T09:00:00Z"}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not None})


def judge(data: bytes, limits: Limits = LIMITS) -> list[Good | Bad]:
    return list(eventio.jsonl_lines(io.BytesIO(data), limits))


# -- JSON lines ---------------------------------------------------------------------


def test_good_lines_are_keyed_by_their_lead_id_and_sent_byte_for_byte() -> None:
    a, b = ev(event_id="e1", lead_id="lead-ä"), ev(event_id="e2", lead_id="L2", type="lead.handed_off", team="emea")
    out = judge(a + b"\r\n" + b)  # CRLF, and no newline after the last line
    assert out == [Good(1, "lead-ä".encode(), a), Good(2, b"L2", b)]


def test_each_reason_with_its_line_number_and_blank_lines_keep_the_count() -> None:
    lines = [
        ev(),                                                  # 1 good
        b"",                                                   # 2 blank: skipped, still counted
        b"{not json",                                          # 3
        b"[1, 2]",                                             # 4
        ev(type="lead.teleported"),                            # 5
        ev(lead_id=""),                                        # 6
        ev(occurred_at="2026-11-30 09:00:00"),                 # 7 no offset
        ev(occurred_at="2026-11-30T12:16:00Z"),                # 8 16 minutes ahead of NOW: skew is 15
        ev(occurred_at="2026-11-30T12:14:00Z"),                # 9 within the skew
        ev(lead_id=42),                                        # 10 a number is not a string
        b"   ",                                                # 11 blank
        ev(amount=-1),                                         # 12
    ]
    out = judge(b"\n".join(lines) + b"\n")
    got = [(o.line, o.reason) if isinstance(o, Bad) else (o.line, "ok") for o in out]
    assert got == [(1, "ok"), (3, "malformed"), (4, "malformed"), (5, "unknown_type"), (6, "invalid"),
                   (7, "invalid"), (8, "invalid"), (9, "ok"), (10, "invalid"), (12, "invalid")]
    bad = {o.line: o for o in out if isinstance(o, Bad)}
    assert bad[5].error == "unknown event type 'lead.teleported'"
    assert bad[6].error.startswith("lead_id: String should have at least 1 character")
    assert "RFC 3339" in bad[7].error
    assert bad[8].error == "occurred_at 2026-11-30T12:16:00Z is in the future"
    assert bad[4].error == "expected a JSON object, got list"
    assert bad[12].report() == "line 12: invalid: amount: Input should be greater than or equal to 0"


def test_the_verdicts_are_the_workers_own() -> None:
    """Every line's reason and message are what codec.decode says for the record it would send."""
    for value in (ev(), b"{", ev(type="x.y"), ev(event_id=""), ev(currency="eur"), ev(attributes={"a": 1})):
        (out,) = judge(value)
        key = orjson.loads(value).get("lead_id", "").encode() if value.startswith(b"{\"") else None
        worker = decode(key, value, LIMITS.max_event_bytes, NOW, LIMITS.max_skew_us)
        if isinstance(out, Good):
            assert worker.lead_id == out.key.decode()  # type: ignore[union-attr]
        else:
            assert (out.reason, out.error) == (worker.reason, worker.error)  # type: ignore[union-attr]


def test_a_utf8_bom_before_the_first_line_is_not_part_of_it() -> None:
    (out,) = judge(b"\xef\xbb\xbf" + ev())
    assert isinstance(out, Good) and out.value == ev()


def test_size_limit_counts_key_and_value_and_long_lines_are_not_held_whole() -> None:
    limits = Limits(max_event_bytes=300, max_skew_us=LIMITS.max_skew_us, now_us=lambda: NOW)
    pad = "x" * (300 - len(ev(attributes={"p": ""})) - 2)  # key "L1" (2 bytes) + value == 300: fits
    fits = ev(attributes={"p": pad})
    over = ev(attributes={"p": pad + "y"})  # 301 with the key
    huge = b"y" * 5_000_000
    out = judge(b"\n".join([fits, over, huge, ev(event_id="after")]) + b"\n", limits)
    assert [type(o).__name__ for o in out] == ["Good", "Bad", "Bad", "Good"]
    assert out[1].error == "record is 301 bytes; the limit is 300"  # type: ignore[union-attr]
    assert out[2] == Bad(3, "too_large", "line is 5000000 bytes; the limit is 300 (LEADSLA_MAX_EVENT_BYTES)")
    assert out[3].line == 4


def test_a_long_last_line_without_newline_is_measured_exactly() -> None:
    limits = Limits(max_event_bytes=256, max_skew_us=0, now_us=lambda: NOW)
    (out,) = judge(b"z" * 1000, limits)
    assert out == Bad(1, "too_large", "line is 1000 bytes; the limit is 256 (LEADSLA_MAX_EVENT_BYTES)")


# -- CSV -----------------------------------------------------------------------------


def rows(text: str, mapping: CsvMapping | None = None) -> CsvRows:
    return CsvRows(io.StringIO(text, newline=""), mapping or CsvMapping(), LIMITS)


def values(out: list[Good | Bad]) -> list[dict[str, object]]:
    return [orjson.loads(o.value) for o in out if isinstance(o, Good)]


def test_csv_columns_named_like_fields_need_no_mapping() -> None:
    r = rows("event_id,lead_id,type,occurred_at,team,amount\n"
             "e1,L1,lead.handed_off,2026-11-30T09:00:00Z,emea,\n"
             "e2,L1,deal.won,2026-11-30T10:00:00+01:00,,1250.50\n")
    out = list(r)
    assert [o.line for o in out] == [2, 3] and all(isinstance(o, Good) for o in out)
    assert values(out) == [
        {"event_id": "e1", "lead_id": "L1", "type": "lead.handed_off", "occurred_at": "2026-11-30T09:00:00Z",
         "team": "emea"},
        {"event_id": "e2", "lead_id": "L1", "type": "deal.won", "occurred_at": "2026-11-30T10:00:00+01:00",
         "amount": 1250.5},
    ]
    assert out[0].key == b"L1"  # type: ignore[union-attr]


def test_csv_map_set_attributes_and_timezone() -> None:
    mapping = CsvMapping(
        columns={"lead_id": "Lead ID", "occurred_at": "Created", "attributes.tier": "Tier"},
        constants={"type": "lead.created", "source": "marketing"},
        timezone="Europe/Berlin",
    )
    r = rows("Lead ID,Created,Tier,Email\nA1,2026-11-29 10:00,gold,a@example.com\nA2,2026-07-01 10:00:30,,\n", mapping)
    assert r.unused == ["Email"]
    out = list(r)
    got = values(out)
    assert [g["occurred_at"] for g in got] == ["2026-11-29T10:00:00+01:00", "2026-07-01T10:00:30+02:00"]
    assert got[0]["attributes"] == {"tier": "gold"} and "attributes" not in got[1]  # empty cell: left out
    assert all(g["type"] == "lead.created" and g["source"] == "marketing" for g in got)
    assert "a@example.com" not in str(got)  # a column no field takes is not sent


def test_csv_extra_columns_can_go_to_attributes() -> None:
    r = rows("lead_id,type,occurred_at,Tier,Form\nL1,lead.mql,2026-11-29T10:00:00Z,gold,\n",
             CsvMapping(extra_to_attributes=True))
    assert r.unused == []
    (got,) = values(list(r))
    assert got["attributes"] == {"Tier": "gold"}


def test_csv_derived_event_ids_are_stable_and_differ_by_content() -> None:
    text = ("lead_id,type,occurred_at\nL1,lead.contact_attempt,2026-11-29T10:00:00Z\n"
            "L1,lead.contact_attempt,2026-11-29T10:05:00Z\nL1,lead.contact_attempt,2026-11-29T10:00:00Z\n")
    first, second = values(list(rows(text))), values(list(rows(text)))
    ids = [g["event_id"] for g in first]
    assert ids == [g["event_id"] for g in second]  # published again: the same ids, counted once
    assert ids[0] == ids[2] != ids[1]  # an identical row is the same event
    assert all(isinstance(i, str) and i.startswith("csv-") and len(i) == 36 for i in ids)


def test_csv_bad_rows_keep_file_line_numbers() -> None:
    text = ('lead_id,type,occurred_at,rep\n'
            'L1,lead.created,2026-11-29T10:00:00Z,"two\nlines"\n'   # lines 2-3: good
            'L2,lead.created\n'                                     # line 4: too few fields
            ',lead.created,2026-11-29T10:00:00Z,x\n'                # line 5: no lead_id
            'L3,lead.created,2026-11-29 10:00,x\n'                  # line 6: no offset, no --timezone
            '\n'                                                    # line 7: blank
            'L4,lead.oops,2026-11-29T10:00:00Z,x\n')                # line 8
    out = list(rows(text))
    assert [(o.line, o.reason if isinstance(o, Bad) else "ok") for o in out] == [
        (2, "ok"), (4, "malformed"), (5, "invalid"), (6, "invalid"), (8, "unknown_type")]
    assert out[1].error == "has 2 fields; the header has 4"  # type: ignore[union-attr]
    assert out[2].error.startswith("lead_id: Field required")  # type: ignore[union-attr]
    assert out[3].error.endswith("(a local time: read it in a zone with --timezone)")  # type: ignore[union-attr]
    assert values(out)[0]["rep"] == "two\nlines"


def test_csv_local_times_without_timezone_are_one_error_up_front(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "export.csv"
    f.write_text("lead_id,type,occurred_at\n" + "".join(f"L{i},lead.created,2026-11-29 10:{i:02d}\n"
                                                        for i in range(50)))
    assert main(["publish", "--dry-run", str(f)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("leadsla: line 2: occurred_at '2026-11-29 10:00' has no UTC offset: give --timezone ZONE "
                   "(an IANA name such as Europe/Berlin, or UTC) to read the file's local times in it; "
                   "no event was sent\n")


def test_csv_local_times_after_bad_rows_still_stop_before_anything_is_sent() -> None:
    text = ("lead_id,type,occurred_at\n"
            ",lead.created,2026-11-29T10:00:00Z\n"     # line 2: no lead_id, reported
            "L1,lead.created,\n"                       # line 3: no occurred_at, reported
            "L2,lead.created,2026-11-29 10:00\n")      # line 4: a local time: the file needs --timezone
    got = iter(rows(text))
    assert [b.line for b in (next(got), next(got))] == [2, 3]
    with pytest.raises(EventIOError, match=r"^line 4: occurred_at '2026-11-29 10:00' has no UTC offset"):
        next(got)


def test_csv_local_times_after_sent_rows_explain_once() -> None:
    text = ("lead_id,type,occurred_at\n"
            "L1,lead.created,2026-11-29T10:00:00Z\n"
            "L2,lead.created,2026-11-29 10:00\n"
            "L3,lead.created,2026-11-29 11:00\n")
    out = list(rows(text))
    assert [(o.line, isinstance(o, Good)) for o in out] == [(2, True), (3, False), (4, False)]
    assert out[1].error.endswith("(a local time: read it in a zone with --timezone)")  # type: ignore[union-attr]
    assert "--timezone" not in out[2].error  # type: ignore[union-attr]
    assert out[2].error.startswith("occurred_at: must be an RFC 3339 timestamp with an offset")  # type: ignore[union-attr]


def test_csv_amount_that_is_not_a_number_is_the_workers_rejection() -> None:
    (out,) = list(rows("lead_id,type,occurred_at,amount\nL1,deal.won,2026-11-29T10:00:00Z,12 EUR\n"))
    assert out == Bad(2, "invalid", "amount: Input should be a valid number")


@pytest.mark.parametrize("amount", ["NaN", "inf", "-Infinity", "1e999"])
def test_csv_amount_that_is_no_finite_number_is_rejected_not_sent_as_null(amount: str) -> None:
    (out,) = list(rows(f"lead_id,type,occurred_at,amount\nL1,deal.won,2026-11-29T10:00:00Z,{amount}\n"))
    assert out == Bad(2, "invalid", "amount: Input should be a valid number")


def test_csv_semicolons_and_a_bom_in_the_header() -> None:
    out = list(rows("\ufefflead_id;type;occurred_at\nL1;lead.mql;2026-11-29T10:00:00Z\n", CsvMapping(delimiter=";")))
    assert [o.line for o in out if isinstance(o, Good)] == [2]


@pytest.mark.parametrize(("mapping", "text", "message"), [
    (lambda: CsvMapping(columns={"lead_id": "Lead"}), "Lead ID,x\n",
     "--map lead_id=Lead: the CSV has no column 'Lead' (its columns: Lead ID, x)"),
    (lambda: CsvMapping(columns={"email": "Email"}), "", "'email' is not an event field"),
    (lambda: CsvMapping(columns={"type": "T"}, constants={"type": "lead.mql"}), "",
     "type is given both a column (--map) and a value (--set)"),
    (lambda: CsvMapping(timezone="Mars/Olympus"), "", "--timezone: unknown time zone 'Mars/Olympus'"),
    (lambda: CsvMapping(), "", "the CSV file is empty: it needs a header line"),
])
def test_csv_mapping_errors(mapping, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EventIOError) as info:
        rows(text, mapping())
    assert message in str(info.value)


def test_assignments() -> None:
    assert eventio.parse_assignments(["lead_id=Lead ID", " type =A=B"], "--map") == {"lead_id": "Lead ID", "type": "A=B"}
    with pytest.raises(EventIOError, match="--set takes FIELD=VALUE, got 'type'"):
        eventio.parse_assignments(["type"], "--set")
    with pytest.raises(EventIOError, match="--map: lead_id is given twice"):
        eventio.parse_assignments(["lead_id=a", "lead_id=b"], "--map")


def test_input_format() -> None:
    assert eventio.input_format("x.CSV", "auto") == "csv"
    assert eventio.input_format("x.jsonl", "auto") == "jsonl"
    assert eventio.input_format("-", "auto") == "jsonl"
    assert eventio.input_format("-", "csv") == "csv"


# -- the publisher without a broker ------------------------------------------------------


def test_dry_run_counts_and_reports_without_a_broker() -> None:
    reported: list[Bad] = []
    items = [Good(1, b"L1", ev()), Bad(2, "malformed", "x"), Good(3, b"L1", ev()), Bad(4, "invalid", "y"),
             Bad(5, "invalid", "z")]
    stats = asyncio.run(eventio.publish(items, None, "lead-events", reported.append))
    assert stats.sent == 2 and dict(stats.rejected) == {"malformed": 1, "invalid": 2}
    assert [b.line for b in reported] == [2, 4, 5]
    assert stats.summary("lead-events") == "sent 2 events to lead-events, rejected 3 lines (2 invalid, 1 malformed)"
    assert stats.summary("t", dry_run=True).startswith("would send 2 events to t")
    one = eventio.PublishStats(sent=1)
    assert one.summary("t") == "sent 1 event to t, rejected 0 lines"


# -- outcomes and dead letters as printed ----------------------------------------------------


OUTCOME = {"decision_id": "d1", "lead_id": "L1", "policy": "first_touch", "outcome": "met",
           "started_at": "2026-11-30T09:00:00Z", "deadline": "2026-11-30T10:00:00Z",
           "decided_at": "2026-11-30T09:20:01.5Z", "elapsed_seconds": 1200.0, "team": "emea"}


def rec(value: bytes | None, key: bytes | None = b"L1", headers: tuple[tuple[str, bytes], ...] = ()) -> Record:
    return Record(2, 17, 1_764_493_200_000, key, value, headers)


def test_outcome_filters() -> None:
    r = rec(orjson.dumps(OUTCOME))
    out = eventio.outcome_of(r)
    assert out == OUTCOME
    assert eventio.outcome_matches(out, r, Filters())
    assert eventio.outcome_matches(out, r, Filters(policies=frozenset({"x", "first_touch"}), outcomes=frozenset({"met"})))
    assert not eventio.outcome_matches(out, r, Filters(outcomes=frozenset({"breached", "corrected"})))
    assert not eventio.outcome_matches(out, r, Filters(policies=frozenset({"follow_up"})))
    assert eventio.outcome_matches(out, r, Filters(leads=frozenset({"L1"})))
    assert not eventio.outcome_matches(out, r, Filters(leads=frozenset({"L2"})))
    assert eventio.outcome_of(rec(b"[1]")) is None and eventio.outcome_of(rec(b"\xff")) is None


def test_outcome_printer_writes_json_lines_and_table_rows() -> None:
    buf = io.StringIO()
    handle = eventio.outcome_printer(buf, Filters(outcomes=frozenset({"met"})), table=False)
    handle(rec(orjson.dumps(OUTCOME)))
    handle(rec(orjson.dumps({**OUTCOME, "outcome": "breached"})))
    assert [orjson.loads(line) for line in buf.getvalue().splitlines()] == [OUTCOME]

    row = eventio.outcome_row({**OUTCOME, "lead_id": "L" * 40 + "\x1b[2J"})
    head = eventio.table_header(eventio.OUTCOME_COLUMNS)
    assert head.split() == ["DECIDED_AT", "POLICY", "OUTCOME", "LEAD", "TEAM", "STARTED_AT", "DEADLINE", "ELAPSED"]
    assert row.split() == ["2026-11-30T09:20:01.5Z", "first_touch", "met", "L" * 23 + "…", "emea",
                           "2026-11-30T09:00:00Z", "2026-11-30T10:00:00Z", "20m"]
    assert head.index("OUTCOME") == row.index("met")  # columns line up
    assert "\x1b" not in row
    breached = eventio.outcome_row({**OUTCOME, "outcome": "breached", "elapsed_seconds": None, "team": None})
    assert breached.split()[4] == "-" and breached.endswith("-")


def test_dead_letter_forms() -> None:
    headers = (("reason", b"malformed"), ("error", b"not JSON: x"))
    d = eventio.dead_letter_dict(rec(b"{\"a\": 1", headers=headers))
    assert d == {"partition": 2, "offset": 17, "timestamp": "2025-11-30T09:00:00Z", "reason": "malformed",
                 "error": "not JSON: x", "key": "L1", "key_encoding": "utf-8", "value": "{\"a\": 1",
                 "value_encoding": "utf-8"}
    binary = eventio.dead_letter_dict(rec(b"\xff\xfe\x00", key=b"\xc3", headers=headers))
    assert (binary["value"], binary["value_encoding"]) == (base64.b64encode(b"\xff\xfe\x00").decode(), "base64")
    assert (binary["key"], binary["key_encoding"]) == ("ww==", "base64")
    none = eventio.dead_letter_dict(rec(None, key=None))
    assert (none["key"], none["key_encoding"], none["value"], none["value_encoding"]) == (None, None, None, None)
    assert none["reason"] is None

    cut = rec(b"x" * 10, headers=(("reason", b"too_large"), ("error", b"record is 2000000 bytes"),
                                   ("original-size", b"2000000"), ("original-sha256", b"ab" * 32),
                                   ("truncated", b"true")))
    d = eventio.dead_letter_dict(cut)
    assert (d["truncated"], d["original_size"], d["original_sha256"]) == (True, 2_000_000, "ab" * 32)
    row = eventio.dead_letter_row(cut)
    assert row.split()[:4] == ["2025-11-30T09:00:00Z", "2:17", "too_large", "L1"]
    assert row.endswith("record is 2000000 bytes [cut from 2000000 bytes]")


def test_dead_letter_filters() -> None:
    r = rec(b"{}", headers=(("reason", b"invalid"), ("error", b"e")))
    assert eventio.dead_letter_matches(r, Filters(reasons=frozenset({"invalid", "malformed"})))
    assert not eventio.dead_letter_matches(r, Filters(reasons=frozenset({"too_large"})))
    assert eventio.dead_letter_matches(r, Filters(leads=frozenset({"L1"})))
    assert not eventio.dead_letter_matches(rec(b"{}", key=None), Filters(leads=frozenset({"L1"})))
    buf = io.StringIO()
    eventio.dead_letter_printer(buf, Filters(), table=False)(r)
    assert orjson.loads(buf.getvalue())["reason"] == "invalid"


# -- the commands ------------------------------------------------------------------------


@pytest.fixture
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")


@pytest.mark.usefixtures("_wide")
@pytest.mark.parametrize(("command", "phrases"), [
    ("publish", ["usage: leadsla publish", "checked with the monitor's own rules", "--map FIELD=COLUMN",
                 "leadsla publish leads.csv --map lead_id=\"Lead ID\"", "exit status: 0 every line sent; 1 some",
                 "[LEADSLA_BROKER]"]),
    ("outcomes", ["usage: leadsla outcomes", "joins no group", "--follow", "--policy NAME", "--outcome",
                  "leadsla outcomes --table --policy first_touch --outcome breached"]),
    ("dead-letters", ["usage: leadsla dead-letters", "base64", "original_sha256", "--reason REASON",
                      "leadsla dead-letters --follow"]),
])
def test_help(command: str, phrases: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for phrase in phrases:
        assert phrase in out


def test_publish_dry_run_exit_status_and_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(ev() + b"\n" + ev(event_id="e2") + b"\n")
    assert main(["publish", "--dry-run", str(good)]) == 0
    assert capsys.readouterr().err == "leadsla publish: would send 2 events to lead-events, rejected 0 lines\n"

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(ev(lead_id="secret@example.com") + b"\n" + ev(lead_id="secret@example.com", type="nope") + b"\n")
    assert main(["publish", "--dry-run", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["leadsla publish: line 2: unknown_type: unknown event type 'nope'",
                                "leadsla publish: would send 1 event to lead-events, rejected 1 line (1 unknown_type)"]
    assert "secret@example.com" not in err  # the report never quotes a line


def test_publish_reads_the_topic_and_limits_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEADSLA_INPUT_TOPIC", "crm-events")
    monkeypatch.setenv("LEADSLA_MAX_EVENT_BYTES", "256")
    f = tmp_path / "e.jsonl"
    f.write_bytes(ev(attributes={"p": "x" * 300}) + b"\n")
    assert main(["publish", "--dry-run", str(f)]) == 1
    err = capsys.readouterr().err
    assert "line 1: too_large: line is" in err and "the limit is 256" in err
    assert "would send 0 events to crm-events" in err


def test_publish_csv_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "export.csv"
    f.write_text("Lead ID,Created,Email\nA1,2026-11-29 10:00,a@example.com\nA2,yesterday,b@example.com\n")
    code = main(["publish", "--dry-run", str(f), "--map", "lead_id=Lead ID", "--map", "occurred_at=Created",
                 "--set", "type=lead.created", "--timezone", "UTC"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[0] == ("leadsla publish: columns left out: Email (map them with --map FIELD=COLUMN, or "
                      "--extra-columns attributes)")
    assert err[1].startswith("leadsla publish: line 3: invalid: occurred_at: must be an RFC 3339 timestamp")
    assert err[2] == "leadsla publish: would send 1 event to lead-events, rejected 1 line (1 invalid)"


@pytest.mark.parametrize(("argv", "message"), [
    (["publish", "/no/such/file.jsonl", "--dry-run"], "leadsla: cannot read /no/such/file.jsonl: No such file or directory"),
    (["publish", "x.jsonl", "--dry-run", "--map", "lead_id=a"], "apply to CSV input"),
    (["outcomes", "--broker", "kafka://nohost"], "--broker / LEADSLA_BROKER: 'kafka://nohost' has no port"),
])
def test_argument_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", [["publish", "-"], ["outcomes"], ["dead-letters", "--follow"]])
def test_a_broker_that_does_not_answer_is_one_line(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    assert main([*command, "--broker", f"kafka://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err == f"leadsla: cannot reach the broker at 127.0.0.1:{port} (--broker / LEADSLA_BROKER): connection refused\n"


def test_header_names_in_messages_are_cut_so_a_misread_json_line_is_not_printed() -> None:
    from leadsla.streams.eventio import header_names

    line = '{"event_id": "e1", "lead_id": "lead-42-with-a-long-id-0123456789"}'
    shown = header_names([line, "Team\x1b[31m"])
    assert "0123456789" not in shown
    assert shown.endswith("…, Team?[31m")
    assert header_names(["rep", "jane@example.com"]) == "rep, (an e-mail address)"
    assert header_names([f"c{i}" for i in range(25)]).endswith("c19 and 5 more")


def test_a_json_lines_file_read_as_csv_is_refused_without_quoting_it() -> None:
    from leadsla.streams.eventio import EventIOError

    line = '{"event_id": "e1", "lead_id": "lead-42", "rep": "jane@example.com"}\n'
    with pytest.raises(EventIOError) as info:
        list(rows(line))
    assert str(info.value).startswith("line 1 looks like JSON, not a CSV header")
    assert "lead-42" not in str(info.value)
