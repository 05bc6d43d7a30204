"""Durations as written in policy files and settings: ``90s``, ``15m``,
``1h30m``, ``2d``, ``500ms`` or ISO 8601 (``PT1H``, ``P2D``, ``P1DT2H30M``)."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNITS_US = {
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}
_SHORT = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_ISO = re.compile(
    r"P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


class DurationError(ValueError):
    """A duration string that is not one of the accepted forms."""


def parse_duration_us(text: str | int | float | timedelta) -> int:
    """Return the duration in whole microseconds.

    Bare numbers are seconds. Negative durations are refused: every duration in
    leadsla is a goal, a lateness or an interval.
    """
    if isinstance(text, timedelta):
        us = (text.days * 86_400 + text.seconds) * 1_000_000 + text.microseconds
    elif isinstance(text, bool):
        raise DurationError(f"not a duration: {text!r}")
    elif isinstance(text, (int, float)):
        us = _round(text * 1_000_000, text)
    elif isinstance(text, str):
        us = _parse_text(text.strip())
    else:
        raise DurationError(f"not a duration: {text!r}")
    if us < 0:
        raise DurationError(f"negative duration: {text!r}")
    return us


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    return timedelta(microseconds=parse_duration_us(text))


def _parse_text(text: str) -> int:
    if not text:
        raise DurationError("empty duration")
    if text[0] in "Pp":
        m = _ISO.fullmatch(text.upper())
        if m is None or text.upper() in ("P", "PT") or text.upper().endswith("T"):
            raise DurationError(f"not an ISO 8601 duration: {text!r}")
        total = 0.0
        for unit, scale in (("w", "w"), ("d", "d"), ("h", "h"), ("m", "m"), ("s", "s")):
            if m.group(unit):
                total += float(m.group(unit)) * _UNITS_US[scale]
        return _round(total, text)
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return _round(number * 1_000_000, text)
    pos = 0
    total = 0.0
    for m in _SHORT.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS_US[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise DurationError(
            f"not a duration: {text!r} (use e.g. 90s, 15m, 1h30m, 2d, 500ms or ISO 8601 PT1H)"
        )
    return _round(total, text)


def _round(us: float, text: object) -> int:
    if not math.isfinite(us):  # "inf", "nan", 1e400, .inf in YAML
        raise DurationError(f"not a finite duration: {text!r}")
    return round(us)


def format_duration_us(us: int) -> str:
    """The shortest ``1h30m``-style spelling of a duration (for messages and labels)."""
    if us == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_US[unit]
        if us >= size:
            parts.append(f"{us // size}{unit}")
            us %= size
    if us:
        parts.append(f"{us // 1000}ms" if us % 1000 == 0 else f"{us}us")
    return "".join(parts)
