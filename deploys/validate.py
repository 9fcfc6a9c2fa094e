"""Guard rails: a wrong inventory or setting is an error before any host is touched.

`validate()` runs first in deploy.py (import it first in your own deploys too). pyinfra
loads the whole deploy for every host before it runs a single operation, so an error
raised here stops everything with nothing changed. Every problem is listed, one line
each, naming the host or key, what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from urllib.parse import urlsplit

from pyinfra import inventory, state
from pyinfra.api.connectors import get_all_connectors
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.server import LinuxDistribution

from pyinfra_wordpress_lb.deploys import secrets
from pyinfra_wordpress_lb.deploys.settings import all_settings, value

SUPPORTED_DEBIAN = {12: "bookworm", 13: "trixie"}
PORT_SETTINGS = ("web_port", "colocated_web_port", "lb_port", "db_port")
# Data that belongs to pyinfra (connectors, global arguments) rather than to us.
_PYINFRA_PREFIXES = ("_", "ssh_", "fake_", "docker_", "dockerssh_", "chroot_", "local_",
                     "terraform_", "vagrant_", "podman_")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
                       r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
_EMAIL = re.compile(r"^[^@\s]+@([a-zA-Z0-9-]+\.)+[a-zA-Z0-9-]{2,}$")


class InvalidDeploy(PyinfraError):
    """The inventory or the settings are wrong; nothing was changed."""


def _pyinfra_keys() -> set[str]:
    keys = set()
    for connector in get_all_connectors().values():
        keys |= set(getattr(connector, "data_meta", {}) or {})
    return keys


def _hosts():
    return sorted(inventory, key=lambda h: h.name)


def _group(name):
    return sorted(inventory.get_group(name, []), key=lambda h: h.name)


def _check_roles(problems: list[str]) -> None:
    web, db, lb = _group("web"), _group("db"), _group("lb")
    if not web:
        problems.append("no host in group `web`: give at least one host the `web` role")
    if not db:
        problems.append("no host in group `db`: give exactly one host the `db` role")
    if len(db) > 1:
        problems.append(f"{len(db)} hosts in group `db` ({', '.join(h.name for h in db)}): "
                        "only one database host is supported (no replication yet)")
    if len(web) > 1 and not lb:
        problems.append(f"{len(web)} web hosts but no host in group `lb`: give one host the "
                        "`lb` role (it may also be a web host)")


def _check_addresses(problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for h in _hosts():
        raw = h.data.get("private_address")
        if raw is None:
            continue
        try:
            address = str(ipaddress.IPv4Address(str(raw)))
        except ValueError:
            problems.append(f"{h.name}: private_address {raw!r} is not an IPv4 address; "
                            "set the address the hosts use to reach each other")
            continue
        if address in seen:
            problems.append(f"{h.name}: private_address {address} is also {seen[address]}'s; "
                            "every host needs its own")
        seen.setdefault(address, h.name)


def _check_ports(problems: list[str]) -> None:
    for h in _hosts():
        for name in PORT_SETTINGS:
            port = value(h, name)
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                problems.append(f"{h.name}: {name} {port!r} is not a port (1-65535)")
        if "lb" in h.groups and "web" in h.groups:
            colocated, public = value(h, "colocated_web_port"), value(h, "lb_port")
            if colocated == public:
                problems.append(
                    f"{h.name}: is both `lb` and `web`, and colocated_web_port equals "
                    f"lb_port ({public}): the backend needs another port than the balancer's")


def _check_site(problems: list[str]) -> None:
    checked = set()
    for h in _hosts():
        url, email = h.data.get("site_url"), value(h, "admin_email")
        if url is not None and ("site_url", url) not in checked:
            checked.add(("site_url", url))
            parts = urlsplit(str(url))
            try:
                port_ok = parts.port is None or 1 <= parts.port <= 65535
            except ValueError:
                port_ok = False
            if (parts.scheme not in ("http", "https") or not parts.hostname
                    or not port_ok or parts.query or parts.fragment
                    or not (_HOSTNAME.match(parts.hostname) or _is_ip(parts.hostname))):
                problems.append(f"{h.name}: site_url {url!r} is not a site address; use "
                                "http(s)://<domain or IP>[:port][/path]")
        if ("admin_email", email) not in checked:
            checked.add(("admin_email", email))
            if not _EMAIL.match(str(email)):
                problems.append(f"{h.name}: admin_email {email!r} is not an email address")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _check_keys(problems: list[str]) -> None:
    known = {s.name for _, s in all_settings()}
    pyinfra_keys = _pyinfra_keys()
    typos: dict[tuple[str, str], list[str]] = {}
    for h in _hosts():
        for key in h.data.dict():
            if key in known or key in pyinfra_keys or key.startswith(_PYINFRA_PREFIXES):
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
            if close:
                typos.setdefault((key, close[0]), []).append(h.name)
    for (key, close), names in sorted(typos.items()):
        problems.append(f"unknown setting {key!r} (on {', '.join(names)}): did you mean "
                        f"{close!r}? See README.md, Settings")


def _check_secrets(problems: list[str]) -> None:
    for path in sorted({secrets.secrets_path(h) for h in _hosts()}):
        try:
            secrets.check_file(path)
        except secrets.SecretsError as exc:
            problems.append(str(exc))


def _check_releases(problems: list[str]) -> None:
    for h in _hosts():
        distro = h.get_fact(LinuxDistribution)
        meta = distro.get("release_meta") or {}
        name = distro.get("name") or "an unknown system"
        major = distro.get("major")
        if meta.get("ID") != "debian" or major not in SUPPORTED_DEBIAN:
            running = f"{name} {meta.get('VERSION_ID') or major or ''}".strip()
            problems.append(
                f"{h.name}: runs {running}; only Debian 13 (trixie) and Debian 12 (bookworm) "
                "are supported: nothing was changed on it")


CHECKS = (_check_roles, _check_addresses, _check_ports, _check_site, _check_keys,
          _check_secrets, _check_releases)


def problems() -> list[str]:
    """Every problem of this inventory and its settings (computed once per run: the
    deploy is loaded once per host, the answer is the same for all)."""
    found = getattr(state, "pwlb_problems", None)
    if found is None:
        found = []
        for check in CHECKS:
            check(found)
        state.pwlb_problems = found
    return found


def validate() -> None:
    """Stop the deploy before any change if the inventory or settings are wrong."""
    found = problems()
    if found:
        lines = "\n".join(f"    - {p}" for p in found)
        raise InvalidDeploy(
            f"{len(found)} problem{'s' if len(found) > 1 else ''} with the inventory or "
            f"settings; nothing was changed:\n{lines}")
