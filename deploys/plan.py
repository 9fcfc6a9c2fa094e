"""The plan of the cluster: everything the deploys need to know, decided once per run.

`validate()` builds it once its checks pass, from the inventory, a few facts and the
settings; every deploy then reads it (`cluster()`, `here()`), never another host's data.
It is immutable: hosts load the deploy side by side and all read the same plan.

Planning is pure: `build()` takes plain values (`HostInput`, one per host) and returns a
`Cluster`; `gather()` is the only part that asks pyinfra (host data, the facts a plan
needs: a host's private address when its data has none, the releases a web host holds).
Tests call `build()` directly (tests/test_plan.py).

The site (its URL, database, docroot, release, TLS, Unix user) is a value of the plan,
`Site`. `sites` in the data lists them (`site_entries`); without it the one-site settings
describe the one site (the shorthand). The tiers serve one site today: validate refuses a
second until they serve several.
"""

from __future__ import annotations

import dataclasses

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
from urllib.parse import urlsplit

from gevent.lock import Semaphore

from pyinfra_wordpress_lb.deploys.secrets import store_of
from pyinfra_wordpress_lb.deploys.settings import Settings, settings_of
from pyinfra_wordpress_lb.operations.wordpress import SHARED_CONTENT, release_id

ROLES = ("lb", "web", "db")
HSTS_DEFAULT = 365 * 86400  # a year, with a certificate browsers trust
SHORTHAND = "main"  # the name of the one site the one-site settings describe
SITE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")

# What an entry of `sites` may set (besides `name`), and the one-site setting each key
# stands for: that setting's value is the default for every site, except for a site's
# identity (its files, database, account, Unix user and other names), which follows its
# name (`identity`): two sites never share them by default.
SITE_ENTRY_KEYS = {
    "site_url": "site_url", "aliases": "site_aliases", "site_title": "site_title",
    "admin_user": "admin_user", "admin_email": "admin_email", "db_name": "db_name",
    "db_user": "db_user",
    "table_prefix": "table_prefix", "docroot": "docroot", "user": "wordpress_user",
    "auto_updates": "auto_updates", "wordpress_version": "wordpress_version",
    "wordpress_checksum": "wordpress_checksum", "wordpress_url": "wordpress_url",
    "wordpress_archive": "wordpress_archive",
    "keep_releases": "keep_releases", "tls": "tls", "tls_certificate": "tls_certificate",
    "tls_key": "tls_key", "hsts_max_age": "hsts_max_age", "multisite": "multisite",
}


@dataclass(frozen=True)
class HostInput:
    """What planning knows of one host: its name, roles, data (ours and pyinfra's) and
    the facts a plan needs. A host that cannot be reached has `reachable` False and
    no facts."""
    name: str
    groups: frozenset[str]
    data: Mapping[str, Any]
    address: str | None = None  # what it reports (facts.network.PrivateAddress)
    releases: Mapping[str, Any] | None = None  # facts.wordpress.Releases (web hosts)
    site_releases: Mapping[str, Any] | None = None  # site name -> its Releases (web hosts)
    galera: Mapping[str, Any] | None = None  # facts.mariadb.GaleraNode (db hosts, Galera)
    reachable: bool = True
    unclaimed: str | None = None  # a docroot serving a site `sites` does not list
    served_sites: tuple[str, ...] = ()  # facts.wordpress.ServedSites (web hosts)


@dataclass(frozen=True)
class Release:
    """The WordPress release every web host serves."""
    version: str
    checksum: str  # "sha1:<hex>" or "sha256:<hex>"
    url: str  # where web hosts download it (a host's `wordpress_archive`: uploaded instead)
    keep: int  # releases kept on each web host, the served one included
    archive: str | None = None  # a site's own `wordpress_archive` (its entry's), to upload

    @property
    def id(self) -> str:
        """The directory name of the release: its version and the start of its checksum."""
        return release_id(self.version, self.checksum)


@dataclass(frozen=True)
class Tls:
    """Where the site's certificate comes from, and what it covers."""
    mode: str  # self-signed, acme, files, off
    hsts_max_age: int  # 0: no Strict-Transport-Security
    names: tuple[str, ...]  # what the certificate covers
    acme_server: str
    acme_email: str | None
    acme_server_ca: str | None
    certificate: str | None  # `files` mode, on the controller
    key: str | None
    trust: str | None  # a private CA balancers and web hosts trust

    @property
    def on(self) -> bool:
        return self.mode != "off"


@dataclass(frozen=True)
class Site:
    """One WordPress site served by the cluster."""
    name: str
    url: str  # without a trailing slash
    title: str
    admin_user: str
    admin_email: str
    db_name: str
    db_user: str
    table_prefix: str
    docroot: str  # without a trailing slash
    auto_updates: str
    release: Release
    tls: Tls
    user: str = "wordpress"  # the Unix user its PHP, files and mesh run as
    home: str = "/var/lib/wordpress"  # that user's home (the mesh's state, SSH keys)
    aliases: tuple[str, ...] = ()  # other host names, redirected to `hostname`
    purge: bool = False  # a retired site (`absent`): its files and database go too
    multisite: str = "off"  # a WordPress network: off, subdirectory, subdomain

    @property
    def key(self) -> str:
        """The stem of the names of what this site has on a host (its PHP-FPM pool and
        socket, nginx site, PHP log, WP-Cron units): `wordpress` for the one-site
        settings' site (`main`), the names one site always had; `wp-<name>` for others."""
        return "wordpress" if self.name == SHORTHAND else f"wp-{self.name}"

    @property
    def tag(self) -> str:
        """What the names of this site's operations end with: nothing for `main` (the
        names one site always had), ` (<name>)` for others."""
        return "" if self.name == SHORTHAND else f" ({self.name})"

    def variant(self, one: str, other: str | None = None) -> str:
        """The name of something of this site's on a host: `one` for `main` (the names
        one site always had), else `other` (default `<one>-<site name>`)."""
        if self.name == SHORTHAND:
            return one
        return f"{one}-{self.name}" if other is None else other

    def secret(self, name: str) -> str:
        """The name of this site's secret `name` in the store: the one-site names for
        `main`, `<name>@<site>` for others (their own database password, salts, admin
        password)."""
        return name if self.name == SHORTHAND else f"{name}@{self.name}"

    @property
    def hostname(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def https(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    @property
    def port_suffix(self) -> str:
        """`:<port>` when the site's URL names one, else nothing."""
        return self.netloc[len(self.hostname):]

    @property
    def subdomains(self) -> bool:
        """A network whose sub-sites have names of their own (`<name>.<host>`)."""
        return self.multisite == "subdomain"

    @property
    def server_names(self) -> tuple[str, ...]:
        """The names nginx answers for this site (its aliases aside): its host, and any
        name under it for a subdomain network."""
        return (self.hostname, f"*.{self.hostname}") if self.subdomains else (self.hostname,)

    @property
    def content(self) -> str:
        """The shared wp-content (the tree the mesh syncs)."""
        return f"{self.docroot}/{SHARED_CONTENT}"


@dataclass(frozen=True)
class Node:
    """One host of the cluster."""
    name: str
    roles: frozenset[str]
    address: str | None  # private (cluster) address; None only if unknown and unreachable
    settings: Settings
    ssh_port: int
    ssh_hostname: str
    backend_port: int  # the web host's backend vhost (also set, unused, on others)
    serving: bool  # a web host that served a release when the run began
    current: str | None  # the release id it served then (the first site's)
    legacy: bool  # it still had the single-docroot layout of earlier versions
    reachable: bool
    currents: Mapping[str, str | None] = field(default_factory=dict)  # site -> release id

    @property
    def backend(self) -> str:
        return f"{self.address}:{self.backend_port}"


@dataclass(frozen=True)
class Galera:
    """The database as a Galera cluster (three or more db hosts, or two and an
    arbitrator), and what this run does to bring every node into it."""
    nodes: tuple[str, ...]  # the db hosts; the web hosts write to the first healthy one
    arbitrator: str | None  # a host of another role running garbd (a vote, no data)
    states: Mapping[str, str]  # per node when the run began: member, standalone, stopped,
    #                            fresh, starting, cut-off, unknown (unreachable)
    bootstrap: str | None  # the node that starts a new cluster in this run
    joining: tuple[str, ...]  # nodes that (re)start in this run to join it
    problem: str | None  # why this run cannot decide safely (validate reports it)

    @property
    def applier(self) -> str | None:
        """The node that applies the site's schema and accounts (they replicate)."""
        if self.bootstrap:
            return self.bootstrap
        return next((n for n in self.nodes if self.states.get(n) == "member"), None)


def galera_state(fact: Mapping[str, Any] | None) -> str:
    """A node's state from its `GaleraNode` fact (None: not reachable)."""
    from pyinfra_wordpress_lb.facts.mariadb import NO_HISTORY

    if fact is None:
        return "unknown"
    history = str(fact.get("uuid") or NO_HISTORY) != NO_HISTORY
    if fact.get("active"):
        status = fact.get("wsrep_cluster_status")
        if status == "Primary":
            return "member"
        if status in (None, "", "Disconnected"):  # Galera not on (yet)
            return "standalone"
        return "cut-off"
    if fact.get("activating"):
        return "starting"
    return "stopped" if history else "fresh"


def galera_plan(nodes: tuple[str, ...], facts: Mapping[str, Mapping[str, Any] | None],
                arbitrator: str | None = None) -> Galera:
    """Which node starts the cluster in this run, which join it, or why that cannot be
    decided safely. Pure: `facts` is each node's `GaleraNode` fact (None when it cannot
    be reached)."""
    from pyinfra_wordpress_lb.facts.mariadb import NO_HISTORY

    states = {n: galera_state(facts.get(n)) for n in nodes}
    fact = {n: facts.get(n) or {} for n in nodes}

    def result(bootstrap=None, problem=None):
        joining = () if problem else tuple(
            n for n in nodes if n != bootstrap
            and states[n] in ("standalone", "stopped", "fresh", "cut-off"))
        return Galera(nodes=nodes, arbitrator=arbitrator, states=_freeze(states),
                      bootstrap=None if problem else bootstrap, joining=joining,
                      problem=problem)

    members = [n for n in nodes if states[n] == "member"]
    unknown = [n for n in nodes if states[n] == "unknown"]
    starting = [n for n in nodes if states[n] == "starting"]
    holders = [n for n in nodes if fact[n].get("has_database")
               and str(fact[n].get("uuid") or NO_HISTORY) == NO_HISTORY]
    if members:
        outside = [n for n in holders if states[n] == "standalone"]
        if outside:
            return result(problem=(
                f"{', '.join(outside)}: holds its own copy of the site's database outside "
                f"the running Galera cluster ({', '.join(members)}); joining would replace "
                "it with the cluster's: move its data away (or drop it) first"))
        return result()
    history = [n for n in nodes if str(fact[n].get("uuid") or NO_HISTORY) != NO_HISTORY]
    if unknown:
        return result(problem=(
            f"no database host takes writes and {', '.join(unknown)} cannot be reached: "
            "which one holds the newest data cannot be told. Bring it back and deploy "
            "again (or, knowing it holds nothing newer, remove it from group `db`)"))
    if starting:
        return result(problem=(
            f"no database host takes writes and {', '.join(starting)} is still starting "
            "(waiting for its peers): run `systemctl stop mariadb` there and deploy again"))
    if not history:  # never a cluster: the host that has the site's data keeps it
        if len(holders) > 1:
            return result(problem=(
                f"{', '.join(holders)} each hold a database of the site and none is in a "
                "Galera cluster: keep one (the others' data would be replaced)"))
        return result(bootstrap=holders[0] if holders else nodes[0])
    uuids = sorted({str(fact[n]["uuid"]) for n in history})
    if len(uuids) > 1:
        return result(problem=(
            f"the database hosts were in different Galera clusters ({', '.join(uuids)}): "
            "start the one to keep with `galera_new_cluster`, then deploy"))
    safe = [n for n in history if fact[n].get("safe_to_bootstrap") == 1]
    if safe:
        return result(bootstrap=safe[0])
    positions = {}
    for n in history:
        seqno = fact[n].get("seqno")
        positions[n] = seqno if isinstance(seqno, int) and seqno >= 0 \
            else fact[n].get("recovered")
    unread = [n for n, p in positions.items() if p is None]
    if unread:
        return result(problem=(
            f"the Galera cluster is down and the position of {', '.join(unread)} cannot be "
            "read: run `galera_recovery` there, then start the node with the highest "
            "position with `galera_new_cluster` and deploy"))
    best = max(positions.values())
    return result(bootstrap=next(n for n in history if positions[n] == best))


@dataclass(frozen=True)
class Switch:
    """What the release switch of this run does: the web hosts that serve another
    release than the wanted one switch to it (all or none, see deploys/wordpress.py)."""
    release: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Cluster:
    """The whole plan: the hosts, the site, and what this run decides."""
    nodes: Mapping[str, Node]
    site: Site
    lb: tuple[str, ...]  # names, sorted
    web: tuple[str, ...]
    db: tuple[str, ...]
    vip: str | None  # the balancers' shared address
    newcomers: tuple[str, ...]  # web hosts joining a cluster that serves already
    switch: Switch
    unreachable: Mapping[str, str]  # host -> why
    connect_to: Mapping[str, str]  # the site's host:port -> the balancers' address:port
    db_endpoint: str  # what WordPress connects to: address[:port]
    galera: Galera | None  # the database as a Galera cluster (None: one db host)
    backup_host: str | None  # the db host that takes the backups
    lb_backends: tuple[str, ...] | None  # servers this deploy does not manage
    secrets_file: Path  # the cluster's secrets store (deploys/secrets.py)
    secret_overrides: Mapping[str, str]  # `secrets` in the data (validate: the same for all)
    sites: tuple[Site, ...] = field(default=())  # the first is `site`
    # web host -> a docroot holding releases that no site names (with `sites`: the
    # one-site settings' site, left out of the list; validate refuses to go on)
    unclaimed: Mapping[str, str] = field(default_factory=dict)
    # web host -> sites it serves (beside `main`) that `sites` no longer lists
    departed_sites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    retired: tuple[Site, ...] = ()  # sites listed `absent`: this run removes them
    slots: Mapping[str, int] = field(default_factory=dict)  # site -> its mesh's port offset

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def switch_of(self, site: Site) -> Switch:
        """The release switch of one site (`switch` is the first site's)."""
        if site.name == self.site.name:
            return self.switch
        return Switch(release=site.release.id, hosts=tuple(
            n.name for n in self.group("web")
            if n.name not in self.unreachable and n.currents.get(site.name) != site.release.id))

    def group(self, role: str) -> tuple[Node, ...]:
        return tuple(self.nodes[n] for n in getattr(self, role))

    def addresses(self, role: str) -> tuple[str, ...]:
        return tuple(n.address for n in self.group(role))

    def backends(self) -> tuple[str, ...]:
        """`address:port` of every backend the balancers send to."""
        if self.lb_backends:
            return self.lb_backends
        return tuple(n.backend for n in self.group("web"))

    def upstream(self, failed: frozenset[str] = frozenset(),
                 held_back: tuple[str, ...] = ()) -> tuple[dict, ...]:
        """The balancers' backends: `address`, and `down` with the reason a balancer
        must not send it new requests: drained, failed in this run (`failed`: host
        names), unreachable, or new and not verified yet (`held_back`). Never every
        backend for a failure: the site would have none left."""
        if self.lb_backends:
            return tuple({"address": b, "down": None} for b in self.lb_backends)
        entries = []
        for node in self.group("web"):
            reason = ("drained" if node.settings.drain else
                      FAILED if node.name in failed else
                      UNREACHABLE if node.name in self.unreachable
                      else "new, not verified yet" if node.name in held_back else None)
            entries.append({"address": node.backend, "down": reason})
        if all(e["down"] for e in entries):
            # Every backend out would leave the site with none ("no live upstreams": a
            # 502 for each uncached page). A host that failed or could not be reached
            # still serves what it served before the run (a failed run changes no
            # release), so those stay in; drained or unverified hosts stay out.
            kept = (FAILED, UNREACHABLE)
            entries = [{**e, "down": None} if e["down"] in kept else e for e in entries]
        return tuple(entries)


FAILED, UNREACHABLE = "failed during the last deploy", "unreachable during the last deploy"


def _freeze(data: Mapping) -> Mapping:
    return MappingProxyType(dict(data))


def _backend_port(groups: frozenset[str], s: Settings) -> int:
    """A host that is also a balancer keeps the public port for it: its backend moves to
    `colocated_web_port`."""
    if "lb" in groups and int(s.web_port) == int(s.lb_port):
        return int(s.colocated_web_port)
    return int(s.web_port)


def site_url(s: Settings, first: str) -> str:
    """The site's public URL, without a trailing slash: `site_url`, else https (http
    with `tls = "off"`) on the balancers' shared address, else on `first` (the first
    balancer's, else web host's, SSH host name)."""
    if s.site_url:
        return str(s.site_url).rstrip("/")
    scheme = "http" if s.tls == "off" else "https"
    if s.lb_vip:
        return f"{scheme}://{s.lb_vip}"
    return f"{scheme}://{first}"


def _tls(s: Settings, url: str, aliases: tuple[str, ...]) -> Tls:
    mode = str(s.tls)
    hsts = s.hsts_max_age
    host = urlsplit(url).hostname or ""
    # A subdomain network's sub-sites are `<name>.<host>`: the certificate covers them.
    names = [host] + ([f"*.{host}"] if s.multisite == "subdomain" else []) + list(aliases)
    if mode == "self-signed" and s.lb_vip and str(s.lb_vip) not in names:
        names.append(str(s.lb_vip))
    return Tls(mode=mode,
               hsts_max_age=int(hsts) if hsts is not None
               else HSTS_DEFAULT if mode in ("acme", "files") else 0,
               names=tuple(names), acme_server=str(s.acme_server), acme_email=s.acme_email,
               acme_server_ca=s.acme_server_ca, certificate=s.tls_certificate, key=s.tls_key,
               trust=s.tls_trust)


def identity(name: str) -> dict[str, Any]:
    """A listed site's own files, database, account, Unix user and other names (the
    one-site settings' values of these belong to the shorthand site alone: a listed
    site named `main` is that site, its identity the one-site settings')."""
    if name == SHORTHAND:
        return {}
    db = "wp_" + name.replace("-", "_")
    return {"docroot": f"/var/www/{name}", "db_name": db, "db_user": db,
            "wordpress_user": f"wp-{name}", "site_aliases": ()}


def site_entries(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each site as an overlay of a host's data: `name`, and the one-site settings its
    entry of `sites` sets (its identity following its name unless it sets it). Without
    `sites`: the shorthand, one site the one-site settings describe. Entries are
    assumed valid (validate checks them first)."""
    listed = data.get("sites")
    if not listed:
        return [{"name": SHORTHAND}]
    found = []
    for entry in listed:
        name = str(entry["name"])
        overlay: dict[str, Any] = {"name": name, **identity(name)}
        for key, given in entry.items():
            if key in SITE_ENTRY_KEYS and given is not None:
                overlay[SITE_ENTRY_KEYS[key]] = given
        if name != SHORTHAND:
            overlay["wordpress_home"] = f"/var/lib/{overlay['wordpress_user']}"  # its own
        overlay["absent"] = entry.get("absent") is True  # (not settings: ignored by them)
        overlay["purge"] = entry.get("purge") is True
        found.append(overlay)
    return found


def first_site(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A host's data as the first site sees it (its entry's keys over the host's)."""
    overlay = site_entries(data)[0]
    return {**data, **{k: v for k, v in overlay.items() if k != "name"}}


def _site(name: str, web: Settings, edge: Settings, first_lb, first_web,
          archive: str | None = None) -> Site:
    """A site: WordPress's settings as the web hosts have them, TLS as the balancers
    do (validate checks that hosts of a role agree)."""
    first = first_lb or first_web
    url = site_url(edge, str(first.data.get("ssh_hostname") or first.name))
    aliases = tuple(str(a).lower() for a in edge.site_aliases)
    version = str(web.wordpress_version)
    release = Release(version=version, checksum=str(web.wordpress_checksum),
                      url=str(web.wordpress_url
                              or f"https://wordpress.org/wordpress-{version}.tar.gz"),
                      keep=int(web.keep_releases), archive=archive)
    return Site(name=name, url=url, title=str(web.site_title),
                admin_user=str(web.admin_user), admin_email=str(web.admin_email),
                db_name=str(web.db_name), db_user=str(web.db_user),
                table_prefix=str(web.table_prefix), docroot=str(web.docroot).rstrip("/"),
                auto_updates=str(web.auto_updates), release=release, tls=_tls(edge, url, aliases),
                user=str(web.wordpress_user), home=str(web.wordpress_home),
                aliases=aliases, multisite=str(web.multisite))


def build(hosts: list[HostInput], unreachable: Mapping[str, str] | None = None) -> Cluster:
    """The plan of a cluster, from what is known of its hosts (pure: no host is asked)."""
    hosts = sorted(hosts, key=lambda h: h.name)
    unreachable = dict(unreachable or {})
    for h in hosts:
        if not h.reachable:
            unreachable.setdefault(h.name, "cannot be reached")
    settings = {h.name: settings_of(h.data) for h in hosts}
    by_role = {role: tuple(h.name for h in hosts if role in h.groups) for role in ROLES}
    first = {role: next((h for h in hosts if role in h.groups), None) for role in ROLES}
    if not hosts:
        raise ValueError("no hosts")
    # The site's settings as its web hosts have them (a balancer alone in front of
    # backends it does not manage, `lb_backends`, has none: its own then).
    web_host = first["web"] or first["lb"] or hosts[0]
    edge_host = first["lb"] or first["web"] or hosts[0]
    web_settings, edge = settings[web_host.name], settings[edge_host.name]
    overlays = site_entries(web_host.data)
    listed = tuple(
        dataclasses.replace(
            _site(overlay["name"], settings_of({**web_host.data, **overlay}),
                  settings_of({**edge_host.data, **overlay}), first["lb"],
                  first["web"] or hosts[0], overlay.get("wordpress_archive")),
            purge=overlay.get("purge", False))
        for overlay in overlays)
    sites = tuple(s for s, o in zip(listed, overlays) if not o.get("absent"))
    retired = tuple(s for s, o in zip(listed, overlays) if o.get("absent"))
    others = [s.name for s in listed if s.name != SHORTHAND]
    slots = {s.name: 0 if s.name == SHORTHAND else 1 + others.index(s.name) for s in listed}
    site = sites[0]

    nodes = {}
    for h in hosts:
        s = settings[h.name]
        releases = h.releases or {}
        nodes[h.name] = Node(
            name=h.name, roles=frozenset(h.groups) & frozenset(ROLES),
            address=str(s.private_address or h.address) if (s.private_address or h.address)
            else None,
            settings=s, ssh_port=int(h.data.get("ssh_port") or 22),
            ssh_hostname=str(h.data.get("ssh_hostname") or h.name),
            backend_port=_backend_port(h.groups, s),
            serving=bool(releases.get("current") or releases.get("legacy")),
            current=releases.get("current"), legacy=bool(releases.get("legacy")),
            reachable=h.reachable,
            currents=_freeze({name: (r or {}).get("current")
                              for name, r in (h.site_releases or {sites[0].name: releases})
                              .items()}))

    web = [nodes[n] for n in by_role["web"]]
    present = [n for n in web if n.name not in unreachable]  # one that is down joins later
    newcomers = tuple(n.name for n in present if not n.serving) \
        if any(n.serving for n in present) else ()
    switch = Switch(release=site.release.id,
                    hosts=tuple(n.name for n in present if n.current != site.release.id))

    lbs = [nodes[n] for n in by_role["lb"]]
    vip = str(edge.lb_vip) if edge.lb_vip else None
    connect_to = {}
    if lbs:
        for each in sites:  # every site's own name (its loopback requests, WP-Cron's)
            port = lbs[0].settings.lb_https_port if each.https else lbs[0].settings.lb_port
            at = urlsplit(each.url).port or (443 if each.https else 80)
            for name in each.server_names:  # (a subdomain network's `*.<host>` too)
                connect_to.setdefault(f"{name.lower()}:{at}", f"{vip or lbs[0].address}:{port}")
    db_endpoint = ""
    galera = None
    backup_host = by_role["db"][0] if by_role["db"] else None
    arbitrator = web_settings.db_arbitrator
    if is_galera(len(by_role["db"]), arbitrator):
        galera = galera_plan(by_role["db"], {h.name: h.galera if h.reachable else None
                                             for h in hosts if h.name in by_role["db"]},
                             str(arbitrator) if arbitrator else None)
        # Web hosts reach the writer through their local proxy; backups come from the
        # node least likely to take writes (the last one).
        db_endpoint = f"127.0.0.1:{int(web_settings.db_proxy_port)}"
        backup_host = by_role["db"][-1]
    elif by_role["db"]:
        db = nodes[by_role["db"][0]]
        port = int(db.settings.db_port)  # the db host's own port setting
        db_endpoint = db.address if port == 3306 else f"{db.address}:{port}"
    given = edge.lb_backends
    return Cluster(
        nodes=_freeze(nodes), site=site, lb=by_role["lb"], web=by_role["web"],
        db=by_role["db"], vip=vip, newcomers=newcomers, switch=switch,
        unreachable=_freeze(unreachable), connect_to=_freeze(connect_to),
        db_endpoint=db_endpoint, galera=galera, backup_host=backup_host, lb_backends=tuple(str(b) for b in given) if given else None,
        secrets_file=store_of(web_settings.secrets_file),
        secret_overrides=_freeze({k: str(v) for k, v in (web_settings.secrets or {}).items()
                                  if v}),
        sites=sites,
        unclaimed=_freeze({h.name: h.unclaimed for h in hosts if h.unclaimed}),
        departed_sites=_freeze({h.name: gone for h in hosts if (gone := tuple(
            n for n in h.served_sites if n not in {s.name for s in listed}))}),
        retired=retired, slots=_freeze(slots))


# The pyinfra side: what the plan is built from, and where deploys find it.

def gather(inventory) -> list[HostInput]:
    """Each host's data and the facts a plan needs (asked once per run)."""
    from pyinfra_wordpress_lb.deploys._util import host_fact, host_facts, reachable
    from pyinfra_wordpress_lb.deploys.database import GALERA_CONFIG
    from pyinfra_wordpress_lb.facts.mariadb import GaleraNode
    from pyinfra_wordpress_lb.facts.network import PrivateAddress
    from pyinfra_wordpress_lb.facts.wordpress import Releases, ServedSites

    found = []
    for h in sorted(inventory, key=lambda h: h.name):
        data = h.data.dict()
        site = settings_of(first_site(data))
        up = reachable(h)
        address = releases = galera = unclaimed = site_releases = None
        served = ()
        if up and not data.get("private_address"):
            address = host_fact(h, PrivateAddress)
        if up and "db" in h.groups and _galera_wanted(inventory):
            galera = host_fact(h, GaleraNode, database=str(site.db_name), config=GALERA_CONFIG)
        if up and "web" in h.groups:
            overlays = site_entries(data)
            # Every site's releases in one round trip (then each read from what it brought).
            host_facts(h, Releases, [{"base": str(settings_of({**data, **o}).docroot)
                                      .rstrip("/")} for o in overlays]
                       + [{"base": str(site.docroot).rstrip("/")}])
            releases = host_fact(h, Releases, base=str(site.docroot).rstrip("/"))
            served = tuple(host_fact(h, ServedSites))
            site_releases = {overlays[0]["name"]: releases}
            for overlay in overlays[1:]:  # each further site's own releases
                site_releases[overlay["name"]] = host_fact(
                    h, Releases, base=str(settings_of({**data, **overlay}).docroot).rstrip("/"))
            if data.get("sites"):  # the one-site settings' site, when no entry names it
                shorthand = str(settings_of(data).docroot).rstrip("/")
                claimed = {str(settings_of({**data, **o}).docroot).rstrip("/")
                           for o in site_entries(data)}
                if shorthand not in claimed:
                    held = host_fact(h, Releases, base=shorthand)
                    if held and (held.get("current") or held.get("legacy")):
                        unclaimed = shorthand
        found.append(HostInput(name=h.name, groups=frozenset(h.groups), data=_freeze(data),
                               address=address, releases=releases, galera=galera,
                               reachable=up, unclaimed=unclaimed, served_sites=served,
                               site_releases=_freeze(site_releases) if site_releases
                               else None))
    return found


def is_galera(db_hosts: int, arbitrator) -> bool:
    """Whether the database is a Galera cluster: three or more db hosts, or two and an
    arbitrator."""
    return db_hosts >= 3 or (db_hosts == 2 and bool(arbitrator))


def _galera_wanted(inventory) -> bool:
    return is_galera(len(inventory.get_group("db", [])),
                     any(h.data.get("db_arbitrator") for h in inventory))


def cluster() -> Cluster:
    """This run's plan (built once: by validate(), or here by a deploy that does not
    validate, such as status.py)."""
    from pyinfra import state

    from pyinfra_wordpress_lb.deploys._run import run
    from pyinfra_wordpress_lb.deploys._util import unreachable

    record = run()
    if record.plan is None:
        with _PLANNING:
            if record.plan is None:
                hosts = gather(state.inventory)
                record.plan = build(hosts, unreachable())
    return record.plan


_PLANNING = Semaphore()  # hosts load the deploy side by side: the first plans


def here() -> Node:
    """The node of the host whose deploy is being loaded."""
    from pyinfra import host

    return cluster().node(host.name)


def mine() -> Settings:
    """The settings of the host whose deploy is being loaded."""
    return here().settings
