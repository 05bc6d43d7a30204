"""leadsla run --workers N: what each child is started with."""

from __future__ import annotations

import pytest

from leadsla.streams.cli import main
from leadsla.streams.supervisor import child_argv


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--workers", "3"], []),
        (["--workers=3", "--policies", "p.yaml"], ["--policies", "p.yaml"]),
        (["--broker", "kafka://k:9092", "--web-port", "7000", "--workers", "2"], ["--broker", "kafka://k:9092"]),
        (["--web-port=7000", "--log-level", "debug", "--workers", "2"], ["--log-level", "debug"]),
    ],
)
def test_children_get_the_same_arguments_but_their_own_port(argv: list[str], expected: list[str]) -> None:
    assert child_argv(argv) == expected


def test_zero_workers_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--workers", "0", "--broker", "kafka://127.0.0.1:1"]) == 2
    assert "--workers takes a number of worker processes, 1 or more" in capsys.readouterr().err
