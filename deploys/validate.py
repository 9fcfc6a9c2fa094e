"""Guard rails: a wrong inventory or setting is an error before any host is touched.

`validate()` runs first in deploy.py (import it first in your own deploys too). pyinfra
loads the whole deploy for every host before it runs a single operation, so an error
raised here stops everything with nothing changed. Every problem is listed, one line
each, naming the host or key, what is wrong and how to fix it.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gevent.lock import Semaphore
from pyinfra import inventory, logger, state
from pyinfra.api.connectors import get_all_connectors
from pyinfra.api.exceptions import OperationError, PyinfraError
from pyinfra.facts.server import LinuxDistribution
from pyinfra_cli.exceptions import CliError

from pyinfra_wordpress_lb.deploys import balancer, secrets, wordpress
from pyinfra_wordpress_lb.deploys import _facts as kept_facts
from pyinfra_wordpress_lb.deploys import _speed
from pyinfra_wordpress_lb.deploys._failures import report_failures
from pyinfra_wordpress_lb.deploys._run import run
from pyinfra_wordpress_lb.deploys.plan import (
    SHORTHAND, SITE_ENTRY_KEYS, SITE_NAME, Cluster, cluster, first_site, site_entries, site_url,
)
from pyinfra_wordpress_lb.deploys._util import (
    host_fact, interface_of, private_address, reachable, unreachable,
)
from pyinfra_wordpress_lb.facts.network import PrivateAddress
from pyinfra_wordpress_lb.facts.ssh import Client
from pyinfra_wordpress_lb.operations.wordpress import parse_checksum
from pyinfra_wordpress_lb.deploys.settings import all_settings, settings_of, value

SUPPORTED_DEBIAN = {12: "bookworm", 13: "trixie"}
PORT_SETTINGS = ("web_port", "colocated_web_port", "lb_port", "lb_https_port", "db_port",
                 "db_proxy_port", "db_check_port")
TLS_MODES = ("self-signed", "acme", "files", "off")
# Data that belongs to pyinfra (connectors, global arguments) rather than to us.
_PYINFRA_PREFIXES = ("_", "ssh_", "fake_", "docker_", "dockerssh_", "chroot_", "local_",
                     "terraform_", "vagrant_", "podman_")
OWN_PREFIX = "x_"  # host data of the operator's own deploys, beside ours
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
                       r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
_EMAIL = re.compile(r"^[^@\s]+@([a-zA-Z0-9-]+\.)+[a-zA-Z0-9-]{2,}$")
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SQL_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class InvalidDeploy(PyinfraError, CliError):
    """The inventory or the settings are wrong; nothing was changed. (Also the CLI's own
    kind of error: pyinfra shows the message alone, not the line of this file.)"""


@functools.cache
def _pyinfra_keys() -> frozenset[str]:
    keys = set()
    for connector in get_all_connectors().values():
        keys |= set(getattr(connector, "data_meta", {}) or {})
    return frozenset(keys)


def _hosts():
    return sorted(inventory, key=lambda h: h.name)


def _group(name):
    return sorted(inventory.get_group(name, []), key=lambda h: h.name)


def _check_roles(problems: list[str]) -> None:
    web, db, lb = _group("web"), _group("db"), _group("lb")
    if not web:
        problems.append("no host in group `web`: give at least one host the `web` role")
    if not db:
        problems.append("no host in group `db`: give one host the `db` role (or three or "
                        "more: a Galera cluster)")
    arbitrators = {str(h.data.get("db_arbitrator")) for h in inventory
                   if h.data.get("db_arbitrator")}
    names = {h.name for h in inventory}
    if len(arbitrators) > 1:
        problems.append(f"db_arbitrator differs among the hosts ({', '.join(sorted(arbitrators))}): "
                        "set one, in group data")
    for name in sorted(arbitrators):
        if name not in names:
            problems.append(f"db_arbitrator {name!r} is not a host of the inventory")
        elif name in {h.name for h in db}:
            problems.append(f"db_arbitrator {name!r} is a db host: the arbitrator must run on "
                            "a host of another role (a vote without data)")
        elif len(db) != 2:
            problems.append(f"db_arbitrator {name!r} is set, but only two db hosts need one "
                            f"(there are {len(db)}): remove it")
    if len(db) == 2 and not arbitrators:
        problems.append(f"two hosts in group `db` ({', '.join(h.name for h in db)}): a Galera "
                        "cluster of two has no majority when one stops (the other stops "
                        "taking writes too); add a third db host, or set `db_arbitrator` to "
                        "a host of another role (Galera's arbitrator, a vote without data)")
    if len(web) > 1 and not lb:
        problems.append(f"{len(web)} web hosts but no host in group `lb`: give one host the "
                        "`lb` role (it may also be a web host)")


def _check_addresses(problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for h in _hosts():
        raw = h.data.get("private_address")
        if raw is None:
            reported = host_fact(h, PrivateAddress)
            if not reported and not reachable(h):
                problems.append(f"{h.name}: cannot be reached, and has no `private_address` "
                                "in its data: set it, so the others can be deployed without it")
                continue
            if not reported:
                problems.append(f"{h.name}: reports no private IPv4 address (none in "
                                "10/8, 172.16/12, 192.168/16, 100.64/10 on its interfaces); "
                                "set `private_address` to the address the hosts use to reach "
                                "each other")
                continue
            raw = reported
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


def _listening(h, galera: bool) -> dict[int, list[str]]:
    """The TCP ports a host's roles listen on -> what listens there."""
    from pyinfra_wordpress_lb.deploys.database import GALERA_PORTS
    from pyinfra_wordpress_lb.deploys.sync import API_PORT

    roles, found = set(h.groups), {}

    def add(port, what):
        if isinstance(port, int) and not isinstance(port, bool):
            found.setdefault(port, []).append(what)

    if "lb" in roles:
        add(value(h, "lb_port"), "lb_port")
        if value(h, "tls") != "off":
            add(value(h, "lb_https_port"), "lb_https_port")
    if "web" in roles:
        web = "colocated_web_port" if "lb" in roles and value(h, "web_port") == \
            value(h, "lb_port") else "web_port"
        add(value(h, web), web)
        slots = sum(1 for o in site_entries(h.data) if o["name"] != SHORTHAND)
        mesh = value(h, "mesh_port")
        for slot in range(1 + slots):  # each site's mesh (deploys/sync.py: Mesh)
            add(mesh + slot if isinstance(mesh, int) else mesh,
                "mesh_port" if not slot else f"mesh_port + {slot} (a site's mesh)")
            add(API_PORT + slot, "the mesh's local API" if not slot
                else f"a site's mesh's local API ({API_PORT} + {slot})")
        if galera:
            add(value(h, "db_proxy_port"), "db_proxy_port")
    if "db" in roles:
        add(value(h, "db_port"), "db_port")
        if galera:
            add(value(h, "db_check_port"), "db_check_port")
            for port in GALERA_PORTS["tcp"]:
                add(port, "Galera")
    return found


def _check_port_clash(problems: list[str]) -> None:
    """Two services of one host on one port: the second could not start."""
    from pyinfra_wordpress_lb.deploys.plan import is_galera

    galera = is_galera(len(_group("db")), any(value(h, "db_arbitrator") for h in _hosts()))
    for h in _hosts():
        for port, users in sorted(_listening(h, galera).items()):
            if len(set(users)) > 1:
                problems.append(f"{h.name}: {' and '.join(sorted(set(users)))} are both port "
                                f"{port}: each service of a host needs a port of its own")


def _check_releases_and_pool(problems: list[str]) -> None:
    for h in _group("web"):
        keep = value(h, "keep_releases")
        bad, text = SITE_VALUES["keep_releases"]
        if bad(keep):
            problems.append(f"{h.name}: keep_releases {keep!r} {text}")
        for flag in ("drain", "mesh_watch"):
            if not isinstance(value(h, flag), bool):
                problems.append(f"{h.name}: {flag} {value(h, flag)!r} is not true or false")
    web = _group("web")
    if web and all(value(h, "drain") is True for h in web) and _group("lb"):
        problems.append("every web host has drain = true: the balancers would have no "
                        "backend left; undrain at least one")


def _bad_setting(problems: list[str], hosts, name: str, bad, text) -> None:
    """Report each bad value of a setting once: `text(value)`, prefixed with the hosts that
    have it unless every host asked has that same value (a cluster-wide mistake)."""
    found: dict[str, tuple[object, list[str]]] = {}
    for h in hosts:
        v = value(h, name)
        found.setdefault(repr(v), (v, []))[1].append(h.name)
    for v, names in found.values():
        if bad(v):
            where = "" if len(found) == 1 else f"{', '.join(names)}: "
            problems.append(f"{where}{name} {v!r} {text}")


def _number(v, integer: bool) -> bool:
    kinds = (int,) if integer else (int, float)
    return isinstance(v, kinds) and not isinstance(v, bool)


def _check_numbers(problems: list[str]) -> None:
    """Settings that must be numbers in a range, or one of a few words."""
    ranges = {  # name: (lowest, highest, whole number?, roles it matters on)
        "mesh_delay": (1, 60, True, "web"), "mesh_inotify_watches": (8192, 2**31 - 1, True, "web"),
        "mesh_port": (1, 65535, True, "web"), "mesh_rescan": (60, 86400 * 7, True, "web"),
        "mesh_catch_up_timeout": (5, 86400, True, "web"),
        "page_cache_ttl": (0, 86400, True, "lb"), "lb_worker_connections": (512, 1048576, True, "lb"),
        "backup_keep": (1, 10000, True, "db"), "login_burst": (0, 100000, True, "lb"),
        "lb_max_fails": (0, 1000, True, "lb"), "lb_next_upstream_tries": (0, 100, True, "lb"),
        "lb_keepalive": (0, 100000, True, "lb"), "db_max_connections": (10, 100000, True, "db"),
        "opcache_memory": (8, 65536, True, "web"),
        "opcache_memory_per_site": (0, 65536, True, "web"),
    }
    for name, (low, high, integer, role) in ranges.items():
        _bad_setting(problems, _group(role), name,
                     lambda v, low=low, high=high, integer=integer:
                     not _number(v, integer) or not low <= v <= high,
                     f"is not {'a whole number' if integer else 'a number'} from {low} to {high}")
    # Optional: sized from the host's memory when not set.
    _bad_setting(problems, _group("web"), "php_max_children",
                 lambda v: v is not None and (not _number(v, True) or not 1 <= v <= 10000),
                 "is not a whole number from 1 to 10000 (or leave it out: sized from the "
                 "host's memory)")
    for key in ("wordpress_checksum", "auto_updates"):
        _bad_setting(problems, _group("web"), key, *SITE_VALUES[key])
    _bad_setting(problems, _group("lb"), "lb_method", lambda v: v not in balancer.METHODS,
                 f"is not one of {', '.join(balancer.METHODS)}")
    for key in ("login_rate", "xmlrpc_rate"):
        _bad_setting(problems, _group("lb"), key,
                     lambda v: not (isinstance(v, str)
                                    and re.fullmatch(r"[1-9][0-9]{0,5}r/[sm]", v)),
                     "is not a rate such as '10r/m' or '5r/s' (nginx limit_req)")
    _bad_setting(problems, _group("lb"), "lb_backends",
                 lambda v: v is not None and not (isinstance(v, (list, tuple)) and v),
                 "is not a list of 'address:port'")
    for h in _group("lb"):
        given = h.data.get("lb_backends")
        for backend in given if isinstance(given, (list, tuple)) else ():
            address, _, port = str(backend).rpartition(":")
            if not (address and port.isdigit() and 1 <= int(port) <= 65535
                    and (_is_ip(address.strip("[]")) or _HOSTNAME.match(address))):
                problems.append(f"{h.name}: lb_backends entry {backend!r} is not "
                                "'address:port'")
    _bad_setting(problems, _group("db"), "backup_schedule",
                 lambda v: not (isinstance(v, str) and v.strip()
                                and re.fullmatch(r"[A-Za-z0-9 ,:*/.~-]+", v)),
                 "is not a systemd calendar expression such as 'daily' or '*-*-* 03:00:00'")


def _bad_checksum(checksum) -> bool:
    try:
        parse_checksum(str(checksum))
    except OperationError:
        return True
    return False


def _bad_site_url(url) -> bool:
    if url is None:
        return False
    parts = urlsplit(str(url))
    try:
        port_ok = parts.port is None or 1 <= parts.port <= 65535
    except ValueError:
        port_ok = False
    return bool(parts.scheme not in ("http", "https") or not parts.hostname
                or not port_ok or parts.query or parts.fragment
                or not (_HOSTNAME.match(parts.hostname) or _is_ip(parts.hostname)))


# The site's settings, and the roles whose hosts read them: those hosts must agree (the
# plan has one site; each host used to read its own copy).
SITE_KEYS = {
    ("web",): ("site_title", "admin_user", "admin_email", "table_prefix", "docroot",
               "auto_updates", "wordpress_version", "wordpress_checksum", "wordpress_url",
               "keep_releases"),
    ("web", "db"): ("db_name", "db_user"),
    ("lb", "web"): ("tls",),
    ("lb", "web", "db"): ("site_url", "site_aliases", "sites"),
}


def _check_agreement(problems: list[str]) -> None:
    for roles, keys in SITE_KEYS.items():
        hosts = sorted({h for role in roles for h in _group(role)}, key=lambda h: h.name)
        for key in keys:
            seen: dict[str, list[str]] = {}
            for h in hosts:
                seen.setdefault(repr(value(h, key)), []).append(h.name)
            if len(seen) > 1:
                which = "; ".join(f"{', '.join(names)}: {v}" for v, names in seen.items())
                problems.append(f"{key} differs across hosts ({which}): it is the site's, "
                                "one value for the cluster; set it once (group_data/all.py, "
                                "or the same on every host)")


def _bad_aliases(aliases) -> bool:
    return not (isinstance(aliases, (list, tuple)) and all(
        isinstance(a, str) and (_HOSTNAME.match(a) or _is_ip(a)) for a in aliases)
        and len({a.lower() for a in aliases}) == len(aliases))


def _alias_problems(url, aliases) -> list[str]:
    """A site's aliases against its own host name (the rest: `_bad_aliases`)."""
    own = (urlsplit(str(url or "")).hostname or "").lower()
    return [f"site_aliases {a!r} is the host of site_url itself: list only other names"
            for a in aliases if isinstance(a, str) and a.lower() == own]


def _check_site(problems: list[str]) -> None:
    for key in ("site_url", "site_aliases"):
        _bad_setting(problems, _hosts(), key, *SITE_VALUES[key])
    if _hosts() and not _bad_aliases(value(_hosts()[0], "site_aliases")):
        problems.extend(_alias_problems(value(_hosts()[0], "site_url"),
                                        value(_hosts()[0], "site_aliases")))
    _bad_setting(problems, _hosts(), "admin_email", *SITE_VALUES["admin_email"])


# What a site's values must be: (is it bad?, what is wrong), for the one-site settings and
# for what an entry of `sites` sets.
SITE_VALUES = {
    "site_url": (_bad_site_url,
                 "is not a site address; use http(s)://<domain or IP>[:port][/path]"),
    "admin_email": (lambda v: not _EMAIL.match(str(v)), "is not an email address"),
    "site_aliases": (_bad_aliases, "is not a list of distinct host names (no scheme, no port)"),
    "wordpress_checksum": (_bad_checksum,
                           "is not 'sha1:<40 hex digits>' or 'sha256:<64 hex digits>'"),
    "auto_updates": (lambda v: v not in wordpress.AUTO_UPDATES,
                     f"is not one of {', '.join(wordpress.AUTO_UPDATES)}"),
    "keep_releases": (lambda v: not _number(v, True) or v < 1,
                      "is not a number of releases (1 or more: the served one counts)"),
    "docroot": (lambda v: not (isinstance(v, str) and v.startswith("/") and len(v) > 1
                               and ".." not in v.split("/")),
                "is not an absolute directory"),
    "wordpress_user": (lambda v: not (isinstance(v, str) and _UNIX_USER.match(v)),
                       "is not a Unix user name (lower-case letters, digits, `_`, `-`)"),
    "db_name": (lambda v: not (isinstance(v, str) and _SQL_NAME.match(v)),
                "is not a database name (letters, digits, `_`; at most 64)"),
    "db_user": (lambda v: not (isinstance(v, str) and _SQL_NAME.match(v) and len(v) <= 32),
                "is not a database account name (letters, digits, `_`; at most 32)"),
}


def _check_sites(problems: list[str]) -> None:
    """`sites`: a list of tables, each a valid name and valid values of its own, no two
    sharing a name, an address, files, a database, an account or a Unix user."""
    given = (_group("web") or _hosts())[0].data.get("sites") if _hosts() else None
    if given is None:
        return
    found: list[str] = []  # (the checks below stop at this list's own problems)
    _check_site_list(given, found)
    problems.extend(found)


LIFECYCLE = ("absent", "purge")  # an entry's keys that are no settings: removing it


def _check_site_list(given, problems: list[str]) -> None:
    if not isinstance(given, (list, tuple)) or not given or not all(
            hasattr(e, "items") for e in given):
        problems.append("sites is not a list of tables (one per site: `name`, `site_url`, ...)")
        return
    own = SITE_ENTRY_KEYS
    for index, entry in enumerate(given, 1):
        name = entry.get("name")
        label = f"sites entry {index}" + (f" ({name})" if isinstance(name, str) else "")
        if not (isinstance(name, str) and SITE_NAME.match(name)):
            problems.append(f"{label}: name {name!r} is not a site name (a lower-case letter, "
                            "then letters, digits or `-`; at most 24)")
        for flag in LIFECYCLE:
            if entry.get(flag) not in (None, True, False):
                problems.append(f"{label}: {flag} {entry[flag]!r} is not true or false")
        if entry.get("purge") is True and entry.get("absent") is not True:
            problems.append(f"{label}: purge = true without absent = true: purge says what "
                            "removing the site deletes; set absent = true to remove it")
        if entry.get("absent") is True and name == SHORTHAND:
            problems.append(f"{label}: the site `{SHORTHAND}` (the one-site settings') "
                            "cannot be removed")
        for key in entry:
            if key != "name" and key not in own and key not in LIFECYCLE:
                close = difflib.get_close_matches(key, list(own), n=1, cutoff=0.8)
                problems.append(f"{label}: unknown key {key!r}" + (
                    f": did you mean {close[0]!r}?" if close else
                    f"; a site takes name, {', '.join(own)} (README.md, Sites)"))
        if entry.get("site_url") is None and name != SHORTHAND:
            problems.append(f"{label}: site_url is missing (each site has its own address)")
    if given[0].get("absent") is True:
        problems.append("sites entry 1 is absent: the first site answers every name no other "
                        "site has; list another site first, then remove this one")
    if all(entry.get("absent") is True for entry in given):
        problems.append("every entry of sites is absent: a cluster serves one site at least")
    if problems:
        return
    overlays = site_entries({"sites": given})
    data = dict((_group("web") or _hosts())[0].data.dict())
    seen: dict[tuple[str, str], str] = {}
    shorthand_docroot = str(settings_of(data).docroot).rstrip("/")
    for entry, overlay in zip(given, overlays):
        name = overlay["name"]
        values = settings_of({**data, **overlay})
        set_here = {own[k] for k in entry if k in own}  # the rest: checked as one-site settings
        for setting, (bad, text) in SITE_VALUES.items():
            v = getattr(values, setting)
            if setting in set_here and bad(v):
                key = next(k for k, s in own.items() if s == setting)
                problems.append(f"sites entry {name}: {key} {v!r} {text}")
        problems.extend(f"sites entry {name}: {p}".replace("site_aliases", "aliases")
                        for p in _alias_problems(values.site_url, values.site_aliases))
        host = urlsplit(str(values.site_url or "")).netloc.lower()
        names = [urlsplit(str(values.site_url or "")).hostname or ""] + [
            str(a).lower() for a in values.site_aliases if isinstance(a, str)]
        for other_name in names:
            other = seen.setdefault(("host name", other_name), name)
            if other != name:
                problems.append(f"sites {other} and {name} both answer {other_name!r} (a "
                                "site_url's host or an alias): each name belongs to one site")
        if name != SHORTHAND and str(values.docroot).rstrip("/") == shorthand_docroot:
            problems.append(
                f"sites entry {name}: docroot {shorthand_docroot} is the one-site settings' "
                f"site's: list that site as `{SHORTHAND}` (it keeps its files, database and "
                "names), and give this one a docroot of its own")
        for what, v in (("name", name), ("site_url's host", host),
                        ("docroot", str(values.docroot).rstrip("/")),
                        ("db_name", values.db_name), ("db_user", values.db_user),
                        ("user", values.wordpress_user)):
            other = seen.setdefault((what, str(v)), name)
            if other != name:
                problems.append(f"sites {other} and {name} have the same {what} {v!r}: "
                                "each site has its own")


def _check_multisite(problems: list[str]) -> None:
    """`multisite`, for every site: a known kind, and an address a network can have
    (WordPress networks live at the root of a host name, without a port; a subdomain
    network needs a DNS name its sub-sites go under, and a certificate for `*.<host>`
    that ACME's http-01 cannot give)."""
    if not _hosts():
        return
    h = (_group("web") or _hosts())[0]
    data = h.data.dict()
    overlays = site_entries(data) if not _bad_site_list(data.get("sites")) else []
    for overlay in overlays:
        site = settings_of({**data, **overlay})
        label = "multisite" if not data.get("sites") else f"sites entry {overlay['name']}: multisite"
        kind = site.multisite
        if kind not in wordpress.MULTISITE:
            problems.append(f"{label} {kind!r} is not one of {', '.join(wordpress.MULTISITE)}")
            continue
        if kind == "off" or _bad_site_url(site.site_url):
            continue
        url = urlsplit(str(site_url(site, "localhost")))
        if url.path.strip("/"):
            problems.append(f"{label} = {kind!r}: a network lives at the root of its host; "
                            f"site_url {url.geturl()!r} has the path {url.path!r}")
        if url.port:
            problems.append(f"{label} = {kind!r}: WordPress networks take no port; "
                            f"site_url {url.geturl()!r} has :{url.port}")
        if kind == "subdomain":
            name = url.hostname or ""
            if _is_ip(name) or "." not in name:
                problems.append(f"{label} = \"subdomain\" needs a DNS name in site_url for "
                                f"its sites to go under, not {name!r} (or use \"subdirectory\")")
            if site.tls == "acme":
                problems.append(f"{label} = \"subdomain\" needs a certificate for *.{name}, "
                                "which ACME's http-01 cannot give: use tls = \"files\" (a "
                                "wildcard certificate) or \"self-signed\", or \"subdirectory\"")


def _bad_site_list(given) -> bool:
    return given is not None and not (isinstance(given, (list, tuple)) and given and all(
        hasattr(e, "items") and isinstance(e.get("name"), str) for e in given))


def _check_site_named(problems: list[str]) -> None:
    """`site` (restore.py): a site of this cluster."""
    if problems:
        return
    named = {value(h, "site") for h in _hosts()} - {None}
    sites = [s.name for s in cluster().sites]
    for name in sorted(map(str, named)):
        if name not in sites:
            problems.append(f"site {name!r} is not a site of this cluster (its sites: "
                            f"{', '.join(sites)}); nothing was changed")


def _check_departed_sites(problems: list[str]) -> None:
    """A site left out of `sites` is not removed (its entry with `absent = true` is):
    refused, so its pool, vhost, mesh and timers do not stay behind while the balancers
    answer its name with the first site."""
    if problems:
        return  # the plan needs a valid inventory
    for name, gone in sorted(cluster().departed_sites.items()):
        problems.append(
            f"{name}: serves the site{'s' if len(gone) > 1 else ''} {', '.join(gone)} that "
            "`sites` no longer lists: left out, its PHP pool, vhost, mesh and timers would "
            "stay, and the balancers would answer its name with the first site. List it "
            "again; to remove it, with absent = true (and purge = true to delete its files "
            "and database), until a run has removed it")


def _check_unclaimed(problems: list[str]) -> None:
    """With `sites`, a web host that serves a site no entry names (the one-site settings'
    site, left out of the list): going on would leave it unserved, its data orphaned."""
    if problems:
        return  # the plan needs a valid inventory
    for name, docroot in sorted(cluster().unclaimed.items()):
        problems.append(
            f"{name}: serves a site from {docroot} that no entry of `sites` names: to keep "
            f"it, list it as `{SHORTHAND}` (README.md, Sites); to stop serving it, move that "
            "directory away first")


def _check_ca_file(h, key: str, problem) -> None:
    path = value(h, key)
    if path and _read_pem(path, key, problem) is not None:
        if not _certificates(_read_pem(path, key, problem)):
            problem(f"{key} {path}: holds no PEM certificate")


def _check_tls(problems: list[str]) -> None:
    """The balancers' TLS settings: a known mode that agrees with site_url, and what
    each mode needs (checked on the controller, before any host is touched)."""
    seen: set[str] = set()

    def problem(text: str) -> None:
        if text not in seen:
            seen.add(text)
            problems.append(text)

    # Balancers and web hosts both trust tls_trust (web hosts ask the site over HTTPS).
    for h in sorted(set(_group("lb")) | set(_group("web")), key=lambda h: h.name):
        _check_ca_file(h, "tls_trust", problem)
    for h in _group("lb"):
        data = h.data.dict()
        overlays = site_entries(data)
        first = (_group("lb") or _group("web"))[0]
        plain = set()
        for overlay in overlays:
            site = settings_of({**data, **overlay})
            label = h.name if len(overlays) == 1 else f"{h.name} (site {overlay['name']})"
            mode = site.tls
            if mode not in TLS_MODES:
                problem(f"{label}: tls {mode!r} is not one of {', '.join(TLS_MODES)}")
                continue
            plain.add(mode == "off")
            _check_site_tls(h, label, site, str(first.data.get("ssh_hostname") or first.name),
                            problem)
        if len(plain) > 1:
            problem(f"{h.name}: some sites have tls = \"off\" and others not: the balancers "
                    "serve every site over HTTPS or every site over plain HTTP")


def _check_site_tls(h, label: str, site, first_name: str, problem) -> None:
    """One site's TLS on a balancer (`site`: the host's settings as that site sees them)."""
    mode = site.tls
    url = site_url(site, first_name)
    scheme, name = urlsplit(url).scheme, urlsplit(url).hostname or ""
    aliases = [] if _bad_aliases(site.site_aliases) else list(site.site_aliases)
    if scheme in ("http", "https") and (mode == "off") != (scheme == "http"):
        wanted = "http://" if mode == "off" else "https://"
        other = '"self-signed", "acme" or "files"' if scheme == "https" else '"off"'
        problem(f"{label}: site_url {url!r} does not match tls {mode!r}: use "
                f"{wanted}... or set tls = {other}")
    hsts = site.hsts_max_age
    if hsts is not None and (not isinstance(hsts, int) or isinstance(hsts, bool)
                             or hsts < 0):
        problem(f"{label}: hsts_max_age {hsts!r} is not a number of seconds (0: off)")
    _check_ca_file(h, "acme_server_ca", problem)
    if mode == "acme":
        email = value(h, "acme_email")
        if not email or not _EMAIL.match(str(email)):
            problem(f"{h.name}: tls = \"acme\" needs acme_email (the ACME account's "
                    f"contact address); got {email!r}")
        if _is_ip(name):
            problem(f"{label}: tls = \"acme\" needs a DNS name in site_url, not the "
                    f"address {name} (use tls = \"self-signed\" or \"files\")")
        for alias in aliases:
            if _is_ip(alias):
                problem(f"{label}: tls = \"acme\" needs DNS names in site_aliases, not "
                        f"the address {alias}")
        server = urlsplit(str(value(h, "acme_server")))
        if server.scheme != "https" or not server.hostname:
            problem(f"{h.name}: acme_server {value(h, 'acme_server')!r} is not an https URL")
    elif mode == "files":
        wildcard = [f"*.{name}"] if site.multisite == "subdomain" else []
        _check_files_mode(label, site, [name, *wildcard, *aliases], problem)


def _read_pem(path: str, key: str, problem) -> str | None:
    try:
        return Path(str(path)).expanduser().read_text()
    except OSError as exc:
        problem(f"{key} {path}: cannot be read on this machine ({exc.strerror})")
        return None


def _certificates(pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return []


def _covers(cert: x509.Certificate, name: str) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if _is_ip(name):
        return ipaddress.ip_address(name) in san.get_values_for_type(x509.IPAddress)
    name = name.lower().rstrip(".")
    for pattern in (n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)):
        if pattern == name or (pattern.startswith("*.") and "." in name
                               and name.split(".", 1)[1] == pattern[2:]):
            return True
    return False


def _check_files_mode(label: str, site, names: list[str], problem) -> None:
    cert_path, key_path = site.tls_certificate, site.tls_key
    if not cert_path or not key_path:
        problem(f"{label}: tls = \"files\" needs tls_certificate and tls_key (files on this "
                "machine)")
        return
    chain_pem, key_pem = (_read_pem(cert_path, "tls_certificate", problem),
                          _read_pem(key_path, "tls_key", problem))
    if chain_pem is None or key_pem is None:
        return
    chain = _certificates(chain_pem)
    if not chain:
        problem(f"tls_certificate {cert_path}: holds no PEM certificate")
        return
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        problem(f"tls_key {key_path}: is not an unencrypted PEM private key")
        return
    leaf = chain[0]
    if leaf.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo):
        problem(f"tls_key {key_path} does not match the certificate in {cert_path}")
    now = datetime.datetime.now(datetime.timezone.utc)
    if leaf.not_valid_after_utc <= now:
        problem(f"tls_certificate {cert_path} expired on "
                f"{leaf.not_valid_after_utc:%Y-%m-%d}; renew it")
    elif leaf.not_valid_before_utc > now:
        problem(f"tls_certificate {cert_path} is not valid before "
                f"{leaf.not_valid_before_utc:%Y-%m-%d}")
    for name in names:
        if not _covers(leaf, name):
            what = ("the host of site_url" if name == names[0] else
                    "the sites of a subdomain network" if name.startswith("*.")
                    else "an alias of the site")
            problem(f"tls_certificate {cert_path} does not cover {name} ({what})")


def _check_vip(problems: list[str]) -> None:
    """The shared address: two or more balancers, inside their subnet, nobody's own."""
    lbs = _group("lb")
    vips = {str(value(h, "lb_vip")) for h in lbs if value(h, "lb_vip")}
    _bad_setting(problems, lbs, "lb_failover", lambda v: v not in (None, "dns"),
                 'is not "dns" (or leave it out)')
    dns = any(value(h, "lb_failover") == "dns" for h in lbs)
    if dns and vips:
        problems.append('lb_failover = "dns" and lb_vip are both set: with a shared address '
                        "leave lb_failover out; with DNS round-robin leave lb_vip out")
    if not vips and not dns and len(lbs) > 1:
        problems.append(
            f"{len(lbs)} balancers ({', '.join(h.name for h in lbs)}) and no lb_vip: nothing "
            "moves traffic off a balancer that fails. Set lb_vip (a shared address in their "
            "private subnet; with a provider's floating IP, also lb_vip_notify), or "
            'lb_failover = "dns" if your DNS lists every balancer (README, Public DNS)')
    for h in lbs:
        notify = value(h, "lb_vip_notify")
        if notify and not vips:
            problems.append("lb_vip_notify is set but lb_vip is not: keepalived runs it "
                            "when the shared address moves")
            break
        if notify and not Path(str(notify)).expanduser().is_file():
            problems.append(f"lb_vip_notify {notify}: no such file on this machine")
            break
    if not vips:
        return
    if len(vips) > 1:
        problems.append(f"the balancers disagree on lb_vip ({', '.join(sorted(vips))}): set "
                        "one shared address for all of them")
        return
    vip = vips.pop()
    try:
        address = ipaddress.IPv4Address(vip)
    except ValueError:
        problems.append(f"lb_vip {vip!r} is not an IPv4 address")
        return
    if len(lbs) < 2:
        problems.append(f"lb_vip {vip} needs two or more hosts in group `lb` (there is "
                        f"{len(lbs)}): a shared address with one balancer fails over nowhere")
        return
    for h in _hosts():
        own = {str(h.data.get("private_address") or ""), str(h.data.get("ssh_hostname") or ""),
               h.name}
        if vip in own:
            problems.append(f"lb_vip {vip} is {h.name}'s own address; pick a free address in "
                            "the balancers' subnet")
    vrid = value(lbs[0], "lb_vrid")
    if not isinstance(vrid, int) or isinstance(vrid, bool) or not 1 <= vrid <= 255:
        problems.append(f"lb_vrid {vrid!r} is not a VRRP router id (1-255)")
    interval = value(lbs[0], "lb_vrrp_interval")
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) \
            or not 0.1 <= interval <= 10:
        problems.append(f"lb_vrrp_interval {interval!r} is not between 0.1 and 10 seconds")
    for h in lbs:
        if not reachable(h):
            continue
        try:
            _, network = interface_of(h, private_address(h))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if address not in network or address in (network.network_address,
                                                 network.broadcast_address):
            problems.append(f"lb_vip {vip} is outside {h.name}'s subnet {network}: the shared "
                            "address must be in the balancers' own network")


def _networks(h, key: str, problems: list[str]) -> list | None:
    raw = value(h, key)
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
        problems.append(f"{h.name}: {key} {raw!r} is not a list of addresses or networks "
                        "(e.g. [\"192.0.2.0/24\"])")
        return None
    parsed = []
    for item in raw:
        try:
            parsed.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            problems.append(f"{h.name}: {key} entry {item!r} is not an address or network")
    return parsed


def _check_firewall(problems: list[str]) -> None:
    """Networks that parse, and no lock-out: the address this deploy connects from (as
    each host sees it) stays allowed to reach SSH."""
    for h in _hosts():
        if not value(h, "firewall"):
            continue
        admin = _networks(h, "admin_networks", problems)
        trusted = _networks(h, "firewall_trusted", problems)
        if admin is None or trusted is None:
            continue
        if not admin:
            problems.append(f"{h.name}: admin_networks is empty: nobody could reach SSH "
                            "(set the networks you administer from)")
            continue
        client = host_fact(h, Client, _sudo=False)
        if not client:
            continue
        try:
            address = ipaddress.ip_address(client.split("%")[0])
        except ValueError:
            continue
        address = getattr(address, "ipv4_mapped", None) or address
        if not any(address in n for n in admin + trusted):
            problems.append(f"{h.name}: this deploy connects from {address}, which "
                            "admin_networks leaves out: the firewall would lock you out "
                            f"(add {address} to admin_networks)")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _check_keys(problems: list[str]) -> None:
    known = {s.name for _, s in all_settings()}
    pyinfra_keys = _pyinfra_keys()
    unknown: dict[tuple[str, str], list[str]] = {}
    everyone = [h.name for h in _hosts()]
    for h in _hosts():
        for key in h.data.dict():
            if (key in known or key in pyinfra_keys or key.startswith(_PYINFRA_PREFIXES)
                    or key.startswith(OWN_PREFIX)):
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
            unknown.setdefault((key, close[0] if close else ""), []).append(h.name)
    for (key, close), names in sorted(unknown.items()):
        where = "" if names == everyone else f" (on {', '.join(names)})"
        if close:
            problems.append(f"unknown setting {key!r}{where}: did you mean {close!r}? "
                            "See README.md, Settings")
        else:
            problems.append(f"unknown setting {key!r}{where}: not a setting of this deploy "
                            "nor of pyinfra (README.md, Settings); a key for your own "
                            f"deploys must start with {OWN_PREFIX!r}")


def _check_secrets(problems: list[str]) -> None:
    hosts = _hosts()
    paths = sorted({secrets.secrets_path(h) for h in hosts})
    for path in paths:
        try:
            secrets.check_file(path)
        except secrets.SecretsError as exc:
            problems.append(str(exc))
    # Secrets are the cluster's: the database and the web hosts must agree on each.
    if len(paths) > 1:
        problems.append(f"the hosts use {len(paths)} secrets files ({', '.join(map(str, paths))}): "
                        "secrets are cluster-wide; give every host the same `secrets_file`")
    overrides = {h.name: dict(h.data.get("secrets") or {}) for h in hosts}
    for name in sorted({n for given in overrides.values() for n in given}):
        values = {str(given.get(name)) if given.get(name) else None
                  for given in overrides.values()}
        if len(values) > 1:
            where = sorted(h for h, given in overrides.items() if given.get(name))
            problems.append(
                f"secret {name!r} is set differently across hosts (in the `secrets` table of "
                f"{', '.join(where)} only, or with other values): secrets are cluster-wide; "
                f"set it once for every host (group_data/all.py) or in the environment "
                f"(PWLB_SECRET_{name.upper()})")


def _check_reachable(problems: list[str]) -> None:
    """Hosts of this run that cannot be reached: listed with the other problems (a host
    left out with --exclude or --limit that cannot be reached is only left alone)."""
    for h in _hosts():
        if not state.is_host_in_limit(h):
            continue
        if not reachable(h):
            problems.append(f"{h.name}: cannot be reached over SSH ({unreachable()[h.name]}): "
                            "start it or fix its SSH settings; to deploy the other hosts "
                            f"meanwhile, leave it out (--exclude {h.name}): balancers in the "
                            "run then keep it out of their pool")


def _check_releases(problems: list[str]) -> None:
    for h in _hosts():
        if not reachable(h):
            continue
        distro = host_fact(h, LinuxDistribution)
        meta = distro.get("release_meta") or {}
        name = distro.get("name") or "an unknown system"
        major = distro.get("major")
        if meta.get("ID") != "debian" or major not in SUPPORTED_DEBIAN:
            running = f"{name} {meta.get('VERSION_ID') or major or ''}".strip()
            problems.append(
                f"{h.name}: runs {running}; only Debian 13 (trixie) and Debian 12 (bookworm) "
                "are supported: nothing was changed on it")


def _check_galera(problems: list[str]) -> None:
    """A Galera cluster whose start this run cannot decide safely (plan.galera_plan)."""
    if problems:
        return  # the plan needs a valid inventory
    galera = cluster().galera
    if galera and galera.problem:
        problems.append(f"the database cluster: {galera.problem}")
    if galera:
        ports = {repr(value(h, "db_check_port")) for h in _group("db") + _group("web")}
        if len(ports) > 1:
            problems.append("db_check_port differs among the db and web hosts: set it in "
                            "group data")


CHECKS = (_check_reachable, _check_roles, _check_addresses, _check_ports, _check_port_clash,
          _check_releases_and_pool,
          _check_numbers, _check_site, _check_sites, _check_agreement,
          _check_keys,
          _check_secrets, _check_releases, _check_tls, _check_vip, _check_firewall,
          _check_galera, _check_unclaimed, _check_departed_sites, _check_site_named,
          _check_multisite)


def problems() -> list[str]:
    """Every problem of this inventory and its settings (computed once per run: the
    deploy is loaded once per host, the answer is the same for all)."""
    with _CHECKING:  # hosts load the deploy side by side: the first checks, the rest read
        return _problems()


_CHECKING = Semaphore()


def _problems() -> list[str]:
    found = run().problems
    if found is None:
        found = []
        for check in CHECKS:
            try:
                check(found)
            except ValueError as exc:  # a host without an address: already listed
                if not any(str(exc).split(":")[0] in f and "private" in f for f in found):
                    found.append(str(exc))
        run().problems = found
    return found


def validate() -> Cluster:
    """Stop the deploy before any change if the inventory or settings are wrong; name
    any host that fails once the deploy runs. Returns the plan of the cluster, built
    once the checks pass (deploys then read it: `deploys.plan.cluster()`)."""
    report_failures(state)
    kept_facts.install()
    _speed.install()
    _speed.fix_layers(state.inventory)
    found = problems()
    if not found:
        for name, why in sorted(unreachable().items()):
            if name not in run().warned:
                run().warned.add(name)
                logger.warning(f"--> {name} (left out of this run) cannot be reached ({why}): "
                               "it is left as it is, and balancers in this run keep it out of "
                               "their pool")
    if found:
        lines = "\n".join(f"    - {p}" for p in found)
        raise InvalidDeploy(
            f"{len(found)} problem{'s' if len(found) > 1 else ''} with the inventory or "
            f"settings; nothing was changed:\n{lines}")
    return cluster()
