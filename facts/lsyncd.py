"""Facts about an lsyncd mesh member."""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase


class Status(FactBase[dict]):
    """
    Returns what a mesh member is doing: whether its lsyncd unit is active, the peers
    its configuration pushes to, and from its status file the events waiting per peer
    (``delays``) and how many directories it watches.

    .. code:: python

        {"active": True, "peers": ["10.0.0.12"], "delays": [0], "watches": 245}
    """

    default = dict

    def command(self, unit: str = "lsyncd-wordpress.service",
                config: str = "/etc/lsyncd/wordpress.conf.lua",
                status_file: str = "/var/lib/wordpress/lsyncd.status") -> str:
        return (
            f"echo active=$(systemctl is-active {shlex.quote(unit)}); "
            f"grep -h 'target = ' {shlex.quote(config)} 2>/dev/null; "
            f"cat {shlex.quote(status_file)} 2>/dev/null; true"
        )

    def process(self, output: list[str]) -> dict:
        status: dict = {"active": False, "peers": [], "delays": [], "watches": 0}
        for line in output:
            line = line.strip()
            if line.startswith("active="):
                status["active"] = line == "active=active"
            elif match := re.match(r'target = "[^@]*@([^:]+):', line):
                status["peers"].append(match.group(1))
            elif match := re.match(r"There (?:are|is) (\d+) delays?", line):
                status["delays"].append(int(match.group(1)))
            elif match := re.match(r"Inotify watching (\d+) directories", line):
                status["watches"] = int(match.group(1))
        return status
