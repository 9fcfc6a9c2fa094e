"""Facts about SSH: a host's own host keys and the keys a user has pinned."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class HostKeys(FactBase[list]):
    """
    Returns the host's public SSH host keys, as ``"type base64"`` strings (no comment),
    sorted, so other hosts can pin them in their ``known_hosts``.

    .. code:: python

        ["ssh-ed25519 AAAAC3Nza...", "ecdsa-sha2-nistp256 AAAAE2Vj..."]
    """

    default = list

    def command(self) -> str:
        return "cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        keys = set()
        for line in output:
            words = line.split()
            if len(words) >= 2 and (words[0].startswith(("ssh-", "ecdsa-", "sk-"))):
                keys.add(f"{words[0]} {words[1]}")
        return sorted(keys)


class KnownHosts(FactBase[dict]):
    """
    Returns the entries of a ``known_hosts`` file as ``{host pattern: [key, ...]}``,
    keys as ``"type base64"`` sorted. Hashed entries (``|1|...``) keep their hashed
    pattern. A missing file gives ``{}``.

    .. code:: python

        {"10.0.0.6": ["ssh-ed25519 AAAAC3Nza..."]}
    """

    default = dict

    def command(self, path: str) -> str:
        return f"cat {shlex.quote(path)} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, list[str]]:
        entries: dict[str, set[str]] = {}
        for line in output:
            words = line.split()
            if len(words) < 3 or words[0].startswith("#") or words[0].startswith("@"):
                continue
            for pattern in words[0].split(","):
                entries.setdefault(pattern, set()).add(f"{words[1]} {words[2]}")
        return {pattern: sorted(keys) for pattern, keys in entries.items()}


class AuthorizedSources(FactBase[list]):
    """
    Returns the addresses an ``authorized_keys`` file lets its keys log in from (their
    ``from="..."`` options), sorted: the mesh peers a web host admits now.

    .. code:: python

        ["10.0.0.11", "10.0.0.12"]
    """

    default = list

    def command(self, path: str) -> str:
        return f"grep -o 'from=\"[^\"]*\"' {shlex.quote(path)} 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        sources = set()
        for line in output:
            line = line.strip()
            if line.startswith('from="') and line.endswith('"'):
                sources.update(a for a in line[6:-1].split(",") if a)
        return sorted(sources)


class Client(FactBase[str]):
    """
    Returns the address this SSH session comes from, as the host sees it (``None`` when
    not over SSH). Ask it with ``_sudo=False``: sudo drops ``SSH_CONNECTION``.

    .. code:: python

        "192.0.2.10"
    """

    def command(self) -> str:
        return 'echo "${SSH_CONNECTION%% *}"'

    def process(self, output: list[str]) -> str | None:
        text = "".join(output).strip()
        return text or None
