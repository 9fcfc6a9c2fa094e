"""Facts about kernel settings (sysctl)."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class Setting(FactBase[dict]):
    """
    Returns one kernel setting: its current ``value`` (an int when it is a number) and
    whether this host may change it now (``writable``: false in most containers, whose
    ``/proc/sys`` is read-only).

    .. code:: python

        {"value": 192536, "writable": False}
    """

    default = dict

    def command(self, key: str) -> str:
        path = shlex.quote("/proc/sys/" + key.replace(".", "/"))
        return (f"cat {path} 2>/dev/null || echo; "
                f"if [ -w {path} ]; then echo writable; else echo read-only; fi")

    def process(self, output: list[str]) -> dict:
        raw = output[0].strip() if output else ""
        value = int(raw) if raw.lstrip("-").isdigit() else (raw or None)
        return {"value": value, "writable": bool(output) and output[-1].strip() == "writable"}
