"""Facts about nftables: whether a table of our own is loaded as its file says."""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase

from pyinfra_wordpress_lb.facts._lines import key_values

STAMP_DIR = "/var/lib/wordpress-lb"


def stamp_path(table: str) -> str:
    return f"{STAMP_DIR}/{table}.nft.loaded"


class Table(FactBase[dict]):
    """
    Returns, for one nftables table: whether the kernel has it (``loaded``), the SHA-256
    of the file that defines it (``file``, ``None`` when missing) and the SHA-256 of the
    file as it was when ``nftables.table_loaded`` last loaded it (``stamp``). When the
    table is missing or the two digests differ, the rules in force are not the file's.
    ``nft`` missing gives ``loaded: False``.

    .. code:: python

        {"loaded": True, "file": "8c1f...", "stamp": "8c1f..."}
    """

    default = dict

    def command(self, family: str, table: str, path: str) -> str:
        q_path = shlex.quote(path)
        return (
            f"if nft list table {shlex.quote(family)} {shlex.quote(table)} >/dev/null 2>&1; "
            "then echo loaded=yes; else echo loaded=no; fi; "
            f"echo file=$(sha256sum {q_path} 2>/dev/null | cut -d' ' -f1); "
            f"echo stamp=$(cat {shlex.quote(stamp_path(table))} 2>/dev/null)"
        )

    def process(self, output: list[str]) -> dict:
        found = key_values(output)
        return {"loaded": found.get("loaded") == "yes", "file": found.get("file") or None,
                "stamp": found.get("stamp") or None}


class Sources(FactBase[dict]):
    """
    Returns the addresses a rules file admits per cluster rule (lines marked
    ``comment "cluster"``, ``ip saddr { ... } <rule>``): ``{rule: [address, ...]}``;
    ``{}`` without the file. A deploy keeps hosts that leave the inventory admitted
    until nothing sends them work any more.

    .. code:: python

        {"tcp dport 3306 accept": ["10.0.0.11", "10.0.0.12"]}
    """

    default = dict

    def command(self, path: str) -> str:
        return f"grep -h 'comment \"cluster\"' {shlex.quote(path)} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict:
        found: dict = {}
        for line in output:
            match = re.match(r'\s*ip saddr \{ ([^}]*) \} (.*?) comment "cluster"', line)
            if match:
                addresses = [a.strip() for a in match.group(1).split(",") if a.strip()]
                found.setdefault(match.group(2).strip(), [])
                found[match.group(2).strip()] += addresses
        return found
