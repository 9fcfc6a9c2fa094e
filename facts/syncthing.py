"""Facts about a syncthing mesh member."""

from __future__ import annotations

import json
import re
import shlex

from pyinfra.api import FactBase


class Devices(FactBase[dict]):
    """
    Returns the devices (web hosts) a managed syncthing configuration shares the mesh
    with, by name, and the private address each is reached at.

    .. code:: python

        {"web1": "10.0.0.11", "web2": "10.0.0.12"}
    """

    default = dict

    def command(self, path: str = "/etc/wordpress-lb/syncthing.xml") -> str:
        return f"grep -E '<device id=.* name=|<address>tcp://' {shlex.quote(path)} 2>/dev/null; true"

    def process(self, output: list[str]) -> dict:
        devices: dict = {}
        name = None
        for line in output:
            if match := re.search(r'<device id="[^"]+" name="([^"]*)"', line):
                name = match.group(1)
            elif name and (match := re.search(r"<address>tcp://([^:<]+):\d+</address>", line)):
                devices[name] = match.group(1)
                name = None
        return devices


class Status(FactBase[dict]):
    """
    Returns what a mesh member is doing: whether its syncthing unit is active, its
    folder's state, how many items it still needs, whether its backend is held back
    (catching up after a boot), and per peer whether it is connected and what it still
    lacks of this host's changes (a few of those paths by name); whether catching up
    after the last boot failed (a peer answered, this host did not catch up in time);
    whether the watcher that sends each change at once runs.

    .. code:: python

        {"active": True, "watching": True, "catch_up_failed": False, "state": "idle",
         "needs": 0, "errors": 0,
         "catching_up": False,
         "peers": {"web2": {"connected": False, "lacks": 2,
                            "lacking": ["uploads/a.jpg", "uploads/b.jpg"]}}}
    """

    default = dict

    def command(self, unit: str = "syncthing-wordpress.service",
                tool: str = "/usr/local/sbin/wordpress-lb-mesh",
                catch_up: str = "wordpress-lb-mesh-catch-up.service",
                watch: str = "wordpress-lb-mesh-watch.service") -> str:
        return (f"echo active=$(systemctl is-active {shlex.quote(unit)}); "
                f"echo watching=$(systemctl is-active {shlex.quote(watch)}); "
                f"echo catch_up=$(systemctl is-active {shlex.quote(catch_up)}); "
                f"{shlex.quote(tool)} status 2>/dev/null; true")

    def process(self, output: list[str]) -> dict:
        status: dict = {"active": False, "watching": False, "catch_up_failed": False, "state": None, "needs": 0,
                        "errors": 0, "catching_up": False, "peers": {}}
        for line in output:
            line = line.strip()
            if line.startswith("active="):
                status["active"] = line == "active=active"
            elif line.startswith("watching="):
                status["watching"] = line == "watching=active"
            elif line.startswith("catch_up="):
                status["catch_up_failed"] = line == "catch_up=failed"
            elif line.startswith("{"):
                try:
                    status.update(json.loads(line))
                except ValueError:
                    pass
        return status
