"""Every data key the deploys read is declared once: name, default, meaning.

Each deploy module lists its keys in a ``SETTINGS`` tuple next to the deploy; the
deploy takes its ``data_defaults`` from it, and the README's settings table is
generated from the same declarations (``python -m pyinfra_wordpress_lb.deploys.settings``).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, make_dataclass
from types import MappingProxyType
from typing import Any, Mapping


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


class Settings:
    """One host's settings, typed and read-only: every declared key as an attribute,
    its value from the host's data or the declared default (lists become tuples,
    tables read-only mappings). Built by `settings_of`; the class itself is made from
    the declarations (`settings_class`)."""


def _frozen(value):
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


def _kind(default) -> Any:
    if default is None:
        return Any
    return tuple if isinstance(default, (list, tuple)) else type(default)


@functools.cache
def settings_class() -> type:
    """The `Settings` dataclass: one frozen field per declared key, typed by its default."""
    return make_dataclass(
        "Settings", [(s.name, _kind(s.default)) for _, s in all_settings()],
        bases=(Settings,), frozen=True, slots=True)


def settings_of(data: Mapping[str, Any]) -> Settings:
    """A host's settings from its data (a key absent or None: the declared default)."""
    values = {}
    for _, s in all_settings():
        given = data.get(s.name)
        values[s.name] = _frozen_again(s.default if given is None else given)
    return settings_class()(**values)


def _frozen_again(value):
    """`_frozen(value)`, the answer kept for a list or table seen before that is still
    equal to what it was: a site's settings are read from its host's data over and over
    (~250 times with 20 sites), and `sites` itself is one of the keys (freezing it each
    time made that quadratic in the number of sites)."""
    if not isinstance(value, (list, dict, tuple, MappingProxyType)) or not value:
        return _frozen(value)
    kept = _FROZEN.get(id(value))
    if kept is not None and kept[0] is value and kept[1] == value:
        return kept[2]
    frozen = _frozen(value)
    if len(_FROZEN) >= 1024:
        _FROZEN.clear()
    _FROZEN[id(value)] = (value, _copied(value), frozen)  # (kept alive: its id too)
    return frozen


def _copied(value):
    """A deep copy of lists, tuples and tables (as plain ones) to tell a change by."""
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _copied(v) for k, v in value.items()}
    return copy.deepcopy(value)


_FROZEN: dict[int, tuple] = {}  # id -> (the value, a copy of it then, its frozen form)


@functools.cache
def all_settings() -> tuple[tuple[str, Setting], ...]:
    """(tier, setting) for every declared key, in deploy order."""
    from pyinfra_wordpress_lb.deploys import (
        backup, balancer, common, database, firewall, ha, sync, tls, web, wordpress,
    )

    return tuple((module.__name__.split(".")[-1], s)
                 for module in (common, firewall, database, backup, web, wordpress, sync,
                                balancer, tls, ha)
                 for s in module.SETTINGS)


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
