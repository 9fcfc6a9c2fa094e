"""Facts about a host's network, as the cluster needs it."""

from __future__ import annotations

import ipaddress

from pyinfra.api import FactBase


# RFC 1918 and carrier-grade NAT (often used by overlay networks such as WireGuard).
# Not `ip_address.is_private`: that also counts documentation ranges.
CLUSTER_NETWORKS = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
]


class PrivateAddress(FactBase[str | None]):
    """
    Returns the IPv4 address this host should use for cluster traffic (upstreams, DB
    grants, the sync mesh): the first global-scope address in a private range
    (RFC 1918, or 100.64/10 carrier-grade NAT), else ``None``. Given an interface, only
    that interface's addresses count.

    .. code:: python

        "10.0.0.5"
    """

    requires_command = "ip"
    default = type(None)

    def command(self, interface: str | None = None) -> str:
        if interface:
            return f"ip -4 -o addr show scope global dev {interface}"
        return "ip -4 -o addr show scope global"

    def process(self, output: list[str]) -> str | None:
        # Lines look like: "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0"
        for line in output:
            words = line.split()
            if "inet" not in words:
                continue
            address = ipaddress.ip_interface(words[words.index("inet") + 1]).ip
            if any(address in network for network in CLUSTER_NETWORKS):
                return str(address)
        return None


class Holds(FactBase[bool]):
    """
    Returns whether one of this host's interfaces carries an IPv4 address now (the
    balancers' shared address moves between them).

    .. code:: python

        True
    """

    requires_command = "ip"

    def command(self, address: str) -> str:
        return f"ip -4 -o addr show | grep -qF ' {address}/' && echo yes || echo no"

    def process(self, output: list[str]) -> bool:
        return "".join(output).strip() == "yes"


class Answers(FactBase[bool]):
    """
    Returns whether the host answers now: a round trip made afresh each time it is asked
    (never one of the answers kept while a run executes), so a host that died since its
    last command fails here.

    .. code:: python

        True
    """

    default = bool

    def command(self) -> str:
        return "echo pwlb-answers"

    def process(self, output: list[str]) -> bool:
        return "pwlb-answers" in output
