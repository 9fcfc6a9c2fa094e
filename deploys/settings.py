"""Every data key the deploys read is declared once: name, default, meaning.

Each deploy module lists its keys in a ``SETTINGS`` tuple next to the deploy; the
deploy takes its ``data_defaults`` from it, and the README's settings table is
generated from the same declarations (``python -m deploys.settings``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    meaning: str


def defaults(*groups: tuple[Setting, ...]) -> dict[str, Any]:
    """The ``data_defaults`` of a deploy, from its own SETTINGS and those of the tiers it
    reads keys of (copies, so no run mutates a shared default)."""
    return {s.name: (list(s.default) if isinstance(s.default, (list, tuple)) else s.default)
            for settings in groups for s in settings}


def all_settings() -> list[tuple[str, Setting]]:
    """(tier, setting) for every declared key, in deploy order."""
    from deploys import common, database, web

    return [(module.__name__.split(".")[-1], s)
            for module in (common, database, web) for s in module.SETTINGS]


def markdown_table() -> str:
    rows = ["| key | tier | default | meaning |", "|---|---|---|---|"]
    for tier, s in all_settings():
        value = list(s.default) if isinstance(s.default, tuple) else s.default
        default = "(host's)" if s.default is None else f"`{json.dumps(value)}`"
        rows.append(f"| `{s.name}` | {tier} | {default} | {s.meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
