"""Small helpers the tier deploys share: cluster addresses and groups."""

from __future__ import annotations

from pyinfra import host, inventory
from pyinfra.api.host import Host

from facts.network import PrivateAddress


def private_address(target: Host | None = None) -> str:
    """A host's cluster address: its `private_address` data, else what it reports."""
    target = target or host
    address = target.data.get("private_address") or target.get_fact(PrivateAddress)
    if not address:
        raise ValueError(
            f"{target.name}: no private IPv4 address found; set `private_address` in its data"
        )
    return address


def group_hosts(group: str) -> list[Host]:
    """The hosts of an inventory group, in a stable order (by name)."""
    return sorted(inventory.get_group(group, []), key=lambda h: h.name)


def group_addresses(group: str) -> list[str]:
    return [private_address(h) for h in group_hosts(group)]
