"""Every data key the deploys read is declared once: name, default, meaning.

Each deploy module lists its keys in a ``SETTINGS`` tuple next to the deploy; the
deploy takes its ``data_defaults`` from it, and the README's settings table is
generated from the same declarations (``python -m pyinfra_wordpress_lb.deploys.settings``).
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
    from pyinfra_wordpress_lb.deploys import (
        backup, balancer, common, database, firewall, ha, sync, tls, web, wordpress,
    )

    return [(module.__name__.split(".")[-1], s)
            for module in (common, firewall, database, backup, web, wordpress, sync, balancer,
                           tls, ha)
            for s in module.SETTINGS]


def value(target, name: str) -> Any:
    """A setting as another host sees it: its data, else the declared default (a deploy's
    data_defaults only apply to the host it runs on)."""
    found = target.data.get(name)
    if found is not None:
        return found
    for _, setting in all_settings():
        if setting.name == name:
            return setting.default
    raise KeyError(f"no setting {name!r} is declared")


def markdown_table() -> str:
    rows = ["| key | tier | default | meaning |", "|---|---|---|---|"]
    for tier, s in all_settings():
        value = list(s.default) if isinstance(s.default, tuple) else s.default
        default = "(host's)" if s.default is None else f"`{json.dumps(value)}`"
        rows.append(f"| `{s.name}` | {tier} | {default} | {s.meaning} |")
    return "\n".join(rows)


def write_readme(path: str) -> None:
    """Replace the table between the README's settings markers with the declarations."""
    import re
    from pathlib import Path

    readme = Path(path)
    text = readme.read_text()
    new = re.sub(r"(<!-- settings:begin -->\n).*?(\n<!-- settings:end -->)",
                 lambda m: m.group(1) + markdown_table() + m.group(2), text, flags=re.S)
    readme.write_text(new)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"]:
        write_readme(sys.argv[2])
    else:
        print(markdown_table())
