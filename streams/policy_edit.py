"""Writing a target's goal into a policies file, keeping everything else —
comments, order, quoting — as it was. The file is edited as text at the
position PyYAML reports for the goal's value, checked with the same loader
the monitor uses, and replaced atomically; a file that would not load is left
untouched."""

from __future__ import annotations

import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import yaml

from leadsla.models.policy import PolicyError, parse_policies, read_policies_text


class EditError(ValueError):
    """The file cannot be edited as asked; the message says why."""


# A target's period (contract §7 and the README): its shortest and longest
# length in days, and the average length used to convert another span.
# 365.25 days a year: a month averages 30.4375 days, a quarter 91.3125.
PERIOD_DAYS: dict[str, tuple[int, int, Fraction, str]] = {
    "week": (7, 7, Fraction(7), "a week"),
    "month": (28, 31, Fraction(36525, 1200), "an average month"),
    "quarter": (89, 92, Fraction(36525, 400), "an average quarter"),
}


def goal_for_period(leads_needed: int, days: int, period: str) -> tuple[int, str]:
    """The goal of a target whose period is ``period`` (week, month or
    quarter) when ``leads_needed`` leads are needed in ``days`` days (the
    calculator's ``--days``).

    When ``days`` is one such period (7 for a week, 28 to 31 for a month,
    89 to 92 for a quarter) the goal is ``leads_needed`` itself. Otherwise it
    is the same rate over the target's period, rounded up to a whole lead:
    ⌈leads_needed × L ÷ days⌉ with L = 7 for a week, 30.4375 for a month and
    91.3125 for a quarter (the average lengths in a year of 365.25 days);
    so 100 leads in 30 days are 24 a week. Returns (goal, a note saying how
    it was scaled, ``""`` when it was not). Raises ValueError for another
    period."""
    try:
        shortest, longest, average, name = PERIOD_DAYS[period]
    except KeyError:
        raise ValueError(f"unknown period {period!r}; targets have week, month or quarter") from None
    if shortest <= days <= longest:
        return leads_needed, ""
    goal = math.ceil(Fraction(leads_needed) * average / days)
    length = str(average.numerator) if average.denominator == 1 else f"{float(average):g}"
    leads = f"{leads_needed:,} lead{'' if leads_needed == 1 else 's'}"
    return goal, f" ({leads} in {days:,} days x {length} days of {name}, rounded up)"


def target_period(path: Path, name: str) -> str:
    """The period of target ``name`` in the policies file at ``path``:
    ``week``, ``month`` or ``quarter``; ``month`` (a new target's) when the
    file has no such target. Raises EditError when the file does not load."""
    try:
        policies = parse_policies(read_policies_text(path), source=str(path))
    except PolicyError as exc:
        raise EditError(f"the file does not load as it is, so it was not changed: {exc}") from None
    return next((t.period for t in policies.targets if t.name == name), "month")


def write_target_goal(path: Path, name: str, goal: int, deliver: str = "lead.mql") -> str:
    """Set target ``name``'s ``goal`` to ``goal`` leads in the policies file at
    ``path``, or add the target (delivered by ``deliver``) when the file has
    none of that name. Returns "updated" or "added". Raises EditError (an
    unreadable file, a flow-style ``targets:``, a result that would not load)."""
    try:
        text = read_policies_text(path)
    except PolicyError as exc:
        raise EditError(str(exc)) from None
    try:
        parse_policies(text, source=str(path))
    except PolicyError as exc:
        raise EditError(f"the file does not load as it is, so it was not changed: {exc}") from None
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)  # parse_policies checked the top level
    targets = next((v for k, v in root.value if k.value == "targets"), None)
    if targets is None:
        new = text.rstrip("\n") + f"\n\ntargets:\n  - name: {name}\n    deliver: {deliver}\n    goal: {goal}\n"
        outcome = "added"
    else:
        if not isinstance(targets, yaml.SequenceNode) or targets.flow_style:
            raise EditError(f"{path}: write targets: as a block list (one '- name: …' entry per target) "
                            "to have a goal written into it")
        entry = next((m for m in targets.value if isinstance(m, yaml.MappingNode)
                      and any(k.value == "name" and v.value == name for k, v in m.value)), None)
        if entry is None:
            indent = " " * targets.value[0].start_mark.column if targets.value else "  "
            at = targets.end_mark.index
            block = f"{indent[:-2] if len(indent) >= 2 else ''}- name: {name}\n{indent}deliver: {deliver}\n{indent}goal: {goal}\n"
            prefix = text[:at] if text[:at].endswith("\n") else text[:at] + "\n"
            new = prefix + block + text[at:]
            outcome = "added"
        else:
            value = next(v for k, v in entry.value if k.value == "goal")
            new = text[: value.start_mark.index] + str(goal) + text[value.end_mark.index :]
            outcome = "updated"
    try:
        parse_policies(new, source=str(path))
    except PolicyError as exc:
        raise EditError(f"the edited file would not load, so it was not changed: {exc}") from None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(new)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise EditError(f"{path}: cannot write the policies file: {exc.strerror or exc}") from None
    return outcome
