"""The audit log's Details as a person reads them: one "field: old → new" line per change, "field: value"
for the rest, instead of the raw stored dictionary."""
from __future__ import annotations

ARROW = " → "


def _show(value) -> str:
    if value is None or value == "":
        return "(none)"
    return str(value)


def _is_change(value) -> bool:
    return isinstance(value, dict) and set(value) == {"old", "new"}


def detail_lines(details: dict | None) -> list[str]:
    """``{"changes": {"city": {"old": "Boston", "new": "Berlin"}}}`` → ``["city: Boston → Berlin"]``;
    a top-level ``old``/``new`` pair is one "old → new" line; nested dicts name their keys with dots."""
    details = dict(details or {})
    lines: list[str] = []
    if "old" in details and "new" in details:
        lines.append(f"{_show(details.pop('old'))}{ARROW}{_show(details.pop('new'))}")

    def walk(prefix: str, value) -> None:
        if _is_change(value):
            lines.append(f"{prefix}: {_show(value['old'])}{ARROW}{_show(value['new'])}")
        elif isinstance(value, dict) and value:
            for key in sorted(value):
                walk(key if prefix in ("", "changes") else f"{prefix}.{key}", value[key])
        elif isinstance(value, (list, tuple)) and len(value) == 2 and prefix and not isinstance(value[0], dict):
            lines.append(f"{prefix}: {_show(value[0])}{ARROW}{_show(value[1])}")
        else:
            lines.append(f"{prefix}: {_show(value)}")

    for key in sorted(details):
        walk(key, details[key])
    return lines
