"""Writing a target's goal into a policies file, keeping everything else —
comments, order, quoting — as it was. The file is edited as text at the
position PyYAML reports for the goal's value, checked with the same loader
the monitor uses, and replaced atomically; a file that would not load is left
untouched."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from leadsla.models.policy import PolicyError, parse_policies, read_policies_text


class EditError(ValueError):
    """The file cannot be edited as asked; the message says why."""


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
