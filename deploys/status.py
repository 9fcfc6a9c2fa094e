"""The operator's view (`pyinfra -y inventory.py status.py`): is the cluster healthy, and
if not, why and what to do. Changes nothing on any host.

Each host is asked what its roles run (facts only, each asked once); the first host that
answered prints one table, a row per host and role with a verdict, then the cluster's
row and a summary. The exit status is 0 when all is well, 1 when something needs
attention (each such row says what and how to fix it), 2 when a host cannot be reached.
`--data status_format=json` prints the same rows as one JSON document instead.
"""

from __future__ import annotations

import datetime
import sys

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.context import state
from pyinfra.facts.systemd import SystemdStatus

from pyinfra_wordpress_lb.deploys import backup, balancer, cron as cron_tier, sync, tls
from pyinfra_wordpress_lb.deploys._run import run
from pyinfra_wordpress_lb.deploys.plan import cluster, here, mine
from pyinfra_wordpress_lb.facts.backup import Backups, Timer as BackupTimer
from pyinfra_wordpress_lb.facts.http import Response
from pyinfra_wordpress_lb.facts.syncthing import Status as MeshStatus
from pyinfra_wordpress_lb.facts.mariadb import Connections, GaleraNode, RiskyTables
from pyinfra_wordpress_lb.facts.network import Holds
from pyinfra_wordpress_lb.facts.nginx import Upstream
from pyinfra_wordpress_lb.facts.tls import Certificate
from pyinfra_wordpress_lb.facts.wordpress import Cron, Releases
from pyinfra_wordpress_lb.operations import nginx as nginx_ops, status as status_op

CERT_DAYS = 14  # a certificate this close to expiry needs attention
BACKUP_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 31 * 86400}


def _running(units: dict, pattern: str) -> bool:
    prefix, _, suffix = pattern.partition("*")
    return any(u.startswith(prefix) and u.endswith(suffix) and up for u, up in units.items())


def _days_left(not_after: str | None) -> int | None:
    if not not_after:
        return None
    expiry = datetime.datetime.fromisoformat(not_after)
    return (expiry - datetime.datetime.now(datetime.timezone.utc)).days


def _age(stamp: datetime.datetime) -> str:
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _row(role: str) -> dict:
    return {"host": host.name, "role": role, "checks": {}, "problems": []}


def _balancer_row() -> dict:
    row = _row("lb")
    checks, problems = row["checks"], row["problems"]
    units = host.get_fact(SystemdStatus, services=["nginx.service", "keepalived.service",
                                                   "certbot.timer"])
    plan, s = cluster(), mine()
    port = s.lb_port
    health = host.get_fact(Response, url=f"http://127.0.0.1:{port}{balancer.HEALTH_PATH}")
    checks["nginx"] = "serving" if health.get("status") == 200 else "down"
    if checks["nginx"] != "serving":
        problems.append("nginx does not serve: `systemctl status nginx` and "
                        "`journalctl -u nginx` on this host, then `systemctl start nginx`")
    vip = plan.vip
    if vip:
        checks["address"] = vip if host.get_fact(Holds, address=vip) else "backup"
        if not units.get("keepalived.service"):
            problems.append("keepalived is not running: this balancer cannot take the shared "
                            "address; `systemctl start keepalived`")
    name = plan.site.netloc
    backends = {}
    for server in host.get_fact(Upstream, path=f"{nginx_ops.SITES}/{balancer.SITE}"):
        if server["backup"]:
            continue  # the same backend again, tried when every other one rests
        address = server["address"]
        if server["down"]:
            backends[address] = "drained"
            problems.append(f"backend {address} is drained (no new requests): remove `drain` "
                            "from its data and re-run the deploy to put it back")
            continue
        answer = host.get_fact(Response, url=f"http://{address}/", host_header=name)
        if answer.get("status") == 200:
            backends[address] = "up"
        else:
            why = f"HTTP {answer['status']}" if answer.get("status") else answer.get("error")
            backends[address] = f"failing ({why})"
            problems.append(f"backend {address} does not serve the site ({why}): look at its "
                            "nginx and PHP-FPM")
    checks["backends"] = backends
    mode = plan.site.tls.mode
    if mode != "off":
        certificate = host.get_fact(Certificate, path=tls.CERT) or {}
        days = _days_left(certificate.get("not_after"))
        checks["certificate"] = "missing" if days is None else f"{days} days left"
        row["cert_days"] = days  # for the site's row (report_rows)
        if days is None or days < CERT_DAYS:
            fix = ("`certbot renew` on this host (is certbot.timer running?)" if mode == "acme"
                   else "re-run the deploy (self-signed certificates are renewed then)"
                   if mode == "self-signed" else "put a new `tls_certificate` in place and "
                   "re-run the deploy")
            problems.append(f"the site's certificate {checks['certificate']}: {fix}")
        if mode == "acme":
            checks["renewal"] = "timer on" if units.get("certbot.timer") else "timer off"
            if not units.get("certbot.timer"):
                problems.append("certbot.timer is not active: certificates will not renew; "
                                "`systemctl enable --now certbot.timer`")
    for site in plan.sites[1:]:  # the other sites' certificates (their rows show them)
        if not site.tls.on:
            continue
        days = _days_left((host.get_fact(Certificate, path=tls.cert_path(site)) or {})
                          .get("not_after"))
        row.setdefault("site_cert_days", {})[site.name] = days
        if days is None or days < CERT_DAYS:
            problems.append(f"site {site.name}'s certificate "
                            f"{'missing' if days is None else f'{days} days left'}: "
                            "re-run the deploy (or renew it as the site's `tls` mode says)")
    ttl = int(s.page_cache_ttl or 0)
    checks["cache"] = f"on ({ttl} s)" if ttl else "off"
    return row


def _web_row() -> dict:
    row = _row("web")
    checks, problems = row["checks"], row["problems"]
    units = host.get_fact(SystemdStatus, services=["nginx.service", "php*-fpm.service",
                                                   sync.UNIT])
    for label, pattern, unit in (("nginx", "nginx.service", "nginx"),
                                 ("php-fpm", "php*-fpm.service", "php*-fpm")):
        checks[label] = "up" if _running(units, pattern) else "down"
        if checks[label] == "down":
            problems.append(f"{label} is not running: `systemctl start '{unit}'` and read "
                            f"`journalctl -u '{unit}'`")
    plan, s = cluster(), mine()
    base = plan.site.docroot
    checks["release"] = host.get_fact(Releases, base=base).get("current")
    if not checks["release"]:
        problems.append(f"no release is served ({base}/current): re-run the deploy")
    peers = [n.address for n in plan.group("web") if n.name != host.name]
    mesh = host.get_fact(MeshStatus, unit=sync.UNIT, tool=sync.TOOL, catch_up=sync.CATCH_UP_UNIT,
                         watch=sync.WATCH_UNIT)
    if peers:
        away = {name: p for name, p in (mesh.get("peers") or {}).items() if not p.get("connected")}
        connected = len(mesh.get("peers") or {}) - len(away)
        checks["mesh"] = (f"running, {connected} of {len(peers)} peers connected"
                          if mesh.get("active") else "stopped")
        lacking = sum(p.get("lacks") or 0 for p in (mesh.get("peers") or {}).values())
        checks["backlog"] = ("catching up" if mesh.get("catching_up") else
                             f"{mesh.get('needs')} items to receive" if mesh.get("needs") else
                             f"{lacking} changes not on every peer yet" if lacking else "in sync")
        if not mesh.get("active"):
            problems.append(f"the sync mesh ({sync.UNIT}) is stopped: uploads do not reach "
                            f"the other web hosts; `systemctl start {sync.UNIT}`")
        elif not mesh.get("watching") and s.mesh_watch is not False:
            problems.append(f"the mesh's watcher ({sync.WATCH_UNIT}) is stopped: changes wait "
                            f"1-2 s for syncthing's own; `systemctl start {sync.WATCH_UNIT}`")
        for name, peer in sorted(away.items()):
            if peer.get("lacks"):
                shown = ", ".join(peer.get("lacking") or [])
                problems.append(f"{name} is not connected and lacks {peer['lacks']} changes made "
                                f"here (delivered when it is back): {shown}")
        if mesh.get("catch_up_failed"):
            problems.append("this host did not catch up with its peers after its last boot "
                            "(it serves anyway): `journalctl -u wordpress-lb-mesh-catch-up`")
        if mesh.get("errors"):
            problems.append(f"the mesh reports {mesh['errors']} errors: "
                            f"`journalctl -u {sync.UNIT}`")
    cron = host.get_fact(Cron, docroot=f"{base}/current", user=cluster().site.user)
    checks["cron"] = ("timer on" if cron.get("timer") else "timer off") + (
        f", last run {_age(datetime.datetime.fromisoformat(cron['last_run']))} ago"
        if cron.get("last_run") else ", never ran")
    row["cron_last"] = cron.get("last_run")  # for the site's row (report_rows)
    if not cron.get("timer"):
        problems.append("wordpress-cron.timer is not active: scheduled posts and jobs wait; "
                        "`systemctl enable --now wordpress-cron.timer`")
    if cron.get("overdue"):
        checks["cron_overdue"] = cron["overdue"]
        problems.append(f"{cron['overdue']} scheduled events are overdue: "
                        "`journalctl -u wordpress-cron` on the web hosts")
    for site in plan.sites[1:]:
        _other_site(row, site, bool(peers))
    return row


def _other_site(row: dict, site, peers: bool) -> None:
    """What a web host says of a site beside the first (its row shows it): the release it
    serves, its WP-Cron, its mesh."""
    problems, name = row["problems"], site.name
    release = host.get_fact(Releases, base=site.docroot).get("current")
    row.setdefault("site_release", {})[name] = release
    if not release:
        problems.append(f"site {name}: no release is served ({site.docroot}/current): "
                        "re-run the deploy")
    unit = cron_tier.unit(site)
    state_ = host.get_fact(Cron, docroot=f"{site.docroot}/current", user=site.user, unit=unit)
    row.setdefault("site_cron", {})[name] = state_.get("last_run")
    if not state_.get("timer"):
        problems.append(f"site {name}: {unit}.timer is not active: its scheduled posts and "
                        f"jobs wait; `systemctl enable --now {unit}.timer`")
    if peers:
        mesh = sync.Mesh.of(site)
        found = host.get_fact(MeshStatus, unit=mesh.unit, tool=mesh.tool,
                              catch_up=mesh.catch_up_unit, watch=mesh.watch_unit)
        if not found.get("active"):
            problems.append(f"site {name}: its sync mesh ({mesh.unit}) is stopped: its uploads "
                            f"do not reach the other web hosts; `systemctl start {mesh.unit}`")


def _db_row() -> dict:
    row = _row("db")
    checks, problems = row["checks"], row["problems"]
    units = host.get_fact(SystemdStatus, services=["mariadb.service", "wordpress-backup.timer"])
    checks["mariadb"] = "up" if units.get("mariadb.service") else "down"
    if checks["mariadb"] == "down":
        problems.append("MariaDB is not running: `systemctl start mariadb`, "
                        "`journalctl -u mariadb`")
    plan = cluster()
    if plan.galera:
        _galera_checks(row)
    connections = host.get_fact(Connections)
    if connections:
        checks["connections"] = f"{connections.get('connected')}/{connections.get('max')}"
        if connections.get("connected", 0) > 0.8 * connections.get("max", 1):
            problems.append(f"{checks['connections']} database connections in use: raise "
                            "max_connections or look for stuck PHP workers")
    s = mine()
    if host.name != plan.backup_host:
        checks["backup"] = f"taken on {plan.backup_host}"
        return row
    first, *others = plan.sites
    for site in plan.sites:
        text, offsite, found = _backups(site, s)
        if site is first:
            checks["backup"] = text
            if offsite is not None:
                checks["offsite"] = offsite
            problems.extend(found)
        else:
            row.setdefault("site_backup", {})[site.name] = text
            problems.extend(f"site {site.name}: {p}" for p in found)
    return row


def _backups(site, s) -> tuple[str, str | None, list[str]]:
    """A site's backups on this host: what the row says, the off-cluster copy's state,
    the problems."""
    problems = []
    unit = backup.unit(site)
    period = BACKUP_PERIODS.get(str(s.backup_schedule), 86400)
    now = datetime.datetime.now(datetime.timezone.utc)
    timer = host.get_fact(BackupTimer, unit=f"{unit}.timer")
    if not timer.get("active"):
        problems.append(f"{unit}.timer is not active: no backups are taken; "
                        f"`systemctl enable --now {unit}.timer`")
    complete = [b for b in host.get_fact(Backups, directory=backup.directory(site))
                if b["complete"]]
    offsite_state = None
    if not complete:
        since = timer.get("since")
        young = since and (now - datetime.datetime.fromisoformat(since)).total_seconds() \
            <= 2 * period
        text = (f"none yet (first at {timer.get('next')})" if young else "none")
        if not young:
            problems.append("no backup in the last 2 schedule periods: "
                            f"`journalctl -u {unit}` on this host")
    else:
        newest = complete[-1]
        taken = datetime.datetime.strptime(newest["name"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
        size = newest.get("bytes") or 0
        text = f"{_age(taken)} old, {size / 1e6:.1f} MB"
        if (datetime.datetime.now(datetime.timezone.utc) - taken).total_seconds() > 2 * period:
            problems.append(f"the last backup is {_age(taken)} old (schedule "
                            f"{s.backup_schedule}): is {unit}.timer active? "
                            f"`journalctl -u {unit}`")
        offsite = newest.get("offsite")
        offsite_state = ("not configured" if not s.backup_target
                         else (offsite or "none").split(" ")[0])
        if s.backup_target and not (offsite or "").startswith("ok"):
            problems.append(f"the off-cluster copy of the last backup did not succeed "
                            f"({offsite or 'no record'}): `journalctl -u {unit}`")
    return text, offsite_state, problems


GALERA_STATES = {"1": "joining", "2": "donor", "3": "joined", "4": "synced"}


def _galera_checks(row: dict) -> None:
    """A Galera node: its state, the cluster's size as it sees it, whether it may take
    writes (the web hosts' proxies write to the first node that may: see report_rows),
    tables Galera replicates badly."""
    from pyinfra_wordpress_lb.deploys.database import GALERA_CONFIG

    plan = cluster()
    checks, problems = row["checks"], row["problems"]
    node = host.get_fact(GaleraNode, database=plan.site.db_name, config=GALERA_CONFIG)
    primary = node.get("wsrep_cluster_status") == "Primary"
    state_name = GALERA_STATES.get(str(node.get("wsrep_local_state")), "not in the cluster")
    checks["galera"] = state_name if primary else (
        f"{state_name}, cut off from the majority" if node.get("active") else "stopped")
    size, expected = node.get("wsrep_cluster_size"), len(plan.galera.nodes)
    checks["cluster size"] = f"{size or 0} of {expected}"
    row["may_write"] = bool(primary and node.get("wsrep_ready") == "ON"
                            and state_name in ("synced", "donor"))
    if not node.get("active"):
        problems.append("MariaDB is stopped: deploy again (it rejoins the cluster), or "
                        "`systemctl start mariadb` on this host")
    elif not primary:
        problems.append("this node is cut off from the majority of the cluster and takes no "
                        "queries: check the network between the db hosts (ports 4567, 4568, "
                        "4444)")
    elif str(size) != str(expected):
        problems.append(f"the cluster has {size} of its {expected} nodes: deploy again, or "
                        "start MariaDB on the missing ones")
    risky = host.get_fact(RiskyTables, database=plan.site.db_name) if primary else {}
    for kind, label in (("not_innodb", "not InnoDB (Galera replicates InnoDB only)"),
                        ("no_primary_key", "without a primary key (Galera cannot replicate "
                                           "their deletes safely)")):
        if risky.get(kind):
            listed = ", ".join(risky[kind][:5]) + (" ..." if len(risky[kind]) > 5 else "")
            problems.append(f"tables {label}: {listed}; a plugin made them: convert them "
                            "(ALTER TABLE ... ENGINE=InnoDB, add a primary key) or remove "
                            "the plugin")


def _cluster_row(site) -> dict:
    """From the first balancer (or web host): a site as a visitor asks for it."""
    row = _row("cluster")
    plan = cluster()
    row["host"] = "(site)" if len(plan.sites) == 1 else f"(site {site.name})"
    row["site_name"] = site.name  # for its summary (report_rows)
    url = site.url
    lbs = plan.group("lb")
    https = site.tls.on
    vip = plan.vip
    port = ((lbs[0].settings.lb_https_port if https else lbs[0].settings.lb_port) if lbs
            else here().backend_port)
    target = f"{vip or '127.0.0.1'}:{port}"
    answer = host.get_fact(Response, url=f"{url}/", connect_to=target)
    row["checks"]["site"] = url
    row["checks"]["answer"] = (f"HTTP {answer['status']} in {answer.get('seconds') or 0:.2f} s"
                               if answer.get("status") else answer.get("error") or "no answer")
    row["checks"]["admin"] = f"{url}/wp-admin/"
    if answer.get("status") != 200:
        row["problems"].append(f"the site does not answer at {target} "
                               f"({row['checks']['answer']}): see the rows above")
    return row


@deploy("Status")
def status() -> None:
    rows = []
    if "lb" in host.groups:
        rows.append(_balancer_row())
    if "web" in host.groups:
        rows.append(_web_row())
    if "db" in host.groups:
        rows.append(_db_row())
    plan = cluster()
    first = (plan.lb or plan.web)[:1]
    if first and first[0] == host.name:
        rows.extend(_cluster_row(site) for site in plan.sites)
    run().status[host.name] = rows
    reporter = min(state.activated_hosts, key=lambda h: h.name)
    if reporter.name == host.name:
        status_op.report(name="Report the cluster's health", collect=lambda: report_rows(),
                         as_json=str(host.data.get("status_format") or "") == "json",
                         on_verdict=_exit_with)


def report_rows() -> list[dict]:
    """Every row, unreachable hosts and cluster-wide problems included, in host order."""
    collected = run().status
    rows: list[dict] = []
    for target in sorted(state.inventory, key=lambda h: h.name):
        if target.name in collected:
            rows += collected[target.name]
        else:
            rows.append({"host": target.name, "role": ",".join(sorted(
                set(target.groups) & {"lb", "web", "db"})), "checks": {},
                "problems": ["cannot be reached over SSH: is it up? is sshd running?"],
                "unreachable": True})
    rows.sort(key=lambda r: r["role"] == "cluster")  # the site's row last
    web_releases = {r["host"]: r["checks"].get("release") for r in rows
                    if r["role"] == "web" and not r.get("unreachable")}
    if len(set(web_releases.values())) > 1:
        listed = ", ".join(f"{h} {v}" for h, v in sorted(web_releases.items()))
        for r in rows:
            if r["role"] == "web" and r["host"] in web_releases:
                r["problems"].append(f"web hosts serve different releases ({listed}): "
                                     "re-run the deploy")
    holders = [r["host"] for r in rows if r["role"] == "lb"
               and r["checks"].get("address") not in (None, "backup")]
    balancers = [r for r in rows if r["role"] == "lb" and "address" in r["checks"]]
    if balancers and len(holders) != 1:
        for r in rows:
            if r["role"] == "cluster":
                r["problems"].append(
                    "no balancer holds the shared address: `systemctl status keepalived` on "
                    "the balancers" if not holders else
                    f"several balancers hold the shared address ({', '.join(holders)}): "
                    "check that VRRP passes between them")
    writers = [r for r in rows if "may_write" in r]
    if writers:
        writer = next((r["host"] for r in writers if r.pop("may_write")), None)
        for r in writers:
            r.pop("may_write", None)
            r["checks"]["writes"] = "here" if r["host"] == writer else (
                f"to {writer}" if writer else "nowhere")
            if not writer:
                r["problems"].append("no database node may take writes: the site cannot "
                                     "save anything; see the Galera rows")
    first = cluster().site.name
    for r in rows:
        if r["role"] == "cluster":
            name = r.pop("site_name", first)
            if name == first:
                _site_summary(r, rows)
            else:
                _other_summary(r, name, rows)
    for r in rows:
        for hidden in ("cron_last", "cert_days", "site_release", "site_cron", "site_backup",
                       "site_cert_days"):
            r.pop(hidden, None)
        r["verdict"] = ("unreachable" if r.get("unreachable")
                        else "attention" if r["problems"] else "ok")
    return rows


def _site_summary(site: dict, rows: list[dict]) -> None:
    """The site's row also says what the host rows say of it: the release its web hosts
    serve, when WP-Cron last ran (on any web host), its last backup, and how long the
    balancers' certificate lasts (the shortest)."""
    checks = site["checks"]
    webs = [r for r in rows if r["role"] == "web" and not r.get("unreachable")]
    releases = sorted({r["checks"].get("release") or "none" for r in webs})
    if releases:
        checks["release"] = releases[0] if len(releases) == 1 else \
            f"mixed ({', '.join(releases)})"
    runs = [(r["cron_last"], r["host"]) for r in webs if r.get("cron_last")]
    if webs:
        last = max(runs) if runs else None
        checks["cron"] = (f"last run {_age(datetime.datetime.fromisoformat(last[0]))} ago "
                          f"on {last[1]}" if last else "never ran")
    backups = [r["checks"]["backup"] for r in rows if r["role"] == "db"
               and "backup" in r["checks"] and not r["checks"]["backup"].startswith("taken on")]
    if backups:
        checks["backup"] = backups[0]
    days = [r["cert_days"] for r in rows if r["role"] == "lb" and "cert_days" in r]
    if days:
        checks["certificate"] = "missing" if None in days else f"{min(days)} days left"


def _other_summary(site: dict, name: str, rows: list[dict]) -> None:
    """The row of a site beside the first, from what the host rows say of it."""
    checks = site["checks"]
    webs = [r for r in rows if r["role"] == "web" and not r.get("unreachable")]
    releases = sorted({(r.get("site_release") or {}).get(name) or "none" for r in webs})
    if releases:
        checks["release"] = releases[0] if len(releases) == 1 else \
            f"mixed ({', '.join(releases)})"
    runs = [(r["site_cron"][name], r["host"]) for r in webs
            if (r.get("site_cron") or {}).get(name)]
    if webs:
        last = max(runs) if runs else None
        checks["cron"] = (f"last run {_age(datetime.datetime.fromisoformat(last[0]))} ago "
                          f"on {last[1]}" if last else "never ran")
    backups = [r["site_backup"][name] for r in rows if name in (r.get("site_backup") or {})]
    if backups:
        checks["backup"] = backups[0]
    days = [r["site_cert_days"][name] for r in rows
            if name in (r.get("site_cert_days") or {})]
    if days:
        checks["certificate"] = "missing" if None in days else f"{min(days)} days left"


def _exit_with(code: int) -> None:
    """The exit status pyinfra cannot express (1 attention, 2 a host cannot be reached),
    given once pyinfra has printed its results: its CLI ends through `_exit()`, which
    knows only 0 and 1; that one call exits with the verdict instead (every other exit
    handler still runs)."""
    try:
        import pyinfra_cli.cli as cli
    except ImportError:  # used through pyinfra's API: the caller reads the rows
        return
    original = getattr(cli, "_exit", None)
    if original is None:
        return

    def _exit() -> None:
        cli._exit = original
        sys.exit(code)

    cli._exit = _exit
