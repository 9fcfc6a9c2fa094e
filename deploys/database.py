"""Database tier (group `db`): Debian's MariaDB for WordPress.

One db host is a MariaDB server as it always was. Three or more (or two and an
arbitrator, `db_arbitrator`) are a Galera cluster: every node holds all the data, a
write commits on all of them, and the cluster survives losing a minority of its
nodes. The web hosts write to one node at a time, the first synced one in inventory
order, through a local HAProxy (`proxy()`), which asks each node over HTTP whether it
is synced (a check answered by systemd on `db_check_port`). Which node starts a new
cluster (the first deploy, or after every node stopped: the most advanced one) is
decided by the plan (`plan.galera_plan`) from what every node reports before the run.

Bound to the host's private address only; root only through the unix socket; no
anonymous accounts or test database; one account per web host, scoped to that host's
private address, with privileges on the WordPress database only. The password comes
from the secrets store and a changed one is applied.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, mysql, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import secrets
from pyinfra_wordpress_lb.deploys._util import TIDY, renamed
from pyinfra_wordpress_lb.deploys.plan import cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting
from pyinfra_wordpress_lb.operations import mariadb

CONFIG = "/etc/mysql/mariadb.conf.d/70-wordpress-lb.cnf"
GALERA_CONFIG = "/etc/mysql/mariadb.conf.d/71-wordpress-lb-galera.cnf"
PACKAGES = ["mariadb-server"]
GALERA_PACKAGES = ["galera-4", "mariadb-backup", "socat"]  # socat: the SST stream
PROXY_PACKAGES = ["haproxy"]  # web hosts, with a Galera cluster
ARBITRATOR_PACKAGES = ["galera-arbitrator-4"]
ARBITRATOR_CONFIG = "/etc/default/garb"  # what garb-systemd (garb.service) reads
ARBITRATOR_UNIT = "garb.service"  # (garbd.service is its alias: systemctl will not enable it)
ARBITRATOR_DIR = "/var/lib/wordpress-lb-garbd"  # (systemd's StateDirectory)
CHECK_SCRIPT = "/usr/local/sbin/wordpress-lb-db-check"
CHECK_UNIT = "wordpress-lb-db-check"
CLUSTER_NAME = "wordpress-lb"
# How soon the others agree that a silent node is gone (commits wait until then).
EVS_TIMEOUTS = {"keepalive": "PT0.5S", "suspect": "PT2S", "inactive": "PT4S",
                "install": "PT4S"}
GALERA_PORTS = {"tcp": (4567, 4568, 4444), "udp": (4567,)}  # replication, IST, SST

SETTINGS = (
    Setting("db_name", "wordpress", "the WordPress database"),
    Setting("db_user", "wordpress",
            "database account name; one account per web host, `db_user`@<its private address>"),
    Setting("db_port", 3306, "MariaDB's TCP port on the db host's private address"),
    Setting("db_max_connections", 200, "MariaDB `max_connections`"),
    Setting("db_arbitrator", None,
            "with two db hosts: the host (of another role) that runs Galera's arbitrator "
            "`garbd`, a vote without data, so one db host stopping leaves a majority; "
            "three or more db hosts need none"),
    Setting("db_proxy_port", 3307,
            "with a Galera cluster: the port of each web host's local database proxy "
            "(HAProxy on 127.0.0.1) that WordPress connects to"),
    Setting("db_check_port", 9200,
            "with a Galera cluster: the port on each db host's private address that "
            "answers the web hosts' proxies whether the node is synced (HTTP 200/503)"),
    Setting("db_gcache_size", "256M",
            "with a Galera cluster: the write-set cache a node that was away catches up "
            "from (IST) instead of copying every table (SST)"),
)


@deploy("Database")
def database() -> None:
    plan, me = cluster(), here()
    apt.packages(name="Install MariaDB", packages=PACKAGES, no_recommends=True)
    config = files.template(
        name="Bind MariaDB to the private address",
        src=templates.path("mariadb/70-wordpress-lb.cnf.j2"),
        dest=CONFIG,
        mode="644",
        bind_address=me.address,
        port=me.settings.db_port,
        max_connections=me.settings.db_max_connections,
    )
    if plan.galera:
        _galera(config)
    else:
        systemd.service(
            name="Restart MariaDB for its new configuration",
            service="mariadb.service",
            restarted=True,
            _if=config.did_change,
        )
    systemd.service(
        name="Keep MariaDB running and enabled",
        service="mariadb.service",
        running=True,
        enabled=True,
    )
    if plan.galera and host.name != plan.galera.applier:
        return  # the site's schema and accounts replicate from the applier
    mariadb.secure_installation(name="No anonymous accounts, remote root or test database")
    for site in plan.sites:  # each its own database and account, granted on it alone
        mysql.database(
            name=f"Create the {site.db_name} database",
            database=site.db_name,
            charset="utf8mb4",
            collate="utf8mb4_unicode_ci",
        )
        user = site.db_user
        password = secrets.secret(site.secret("db_password"))
        for address in plan.addresses("web"):
            mariadb.account(
                name=f"Add database account {user}@{address}",
                user=user,
                hostname=address,
                password=password,  # never on a command line, never shown
            )
            mariadb.grant_all(
                name=f"Grant {user}@{address} all on {site.db_name} only",
                user=user,
                hostname=address,
                database=site.db_name,
            )


def _galera(config) -> None:
    """This node in the cluster: its configuration, then the one step of this run that
    brings it in (start a new cluster, join, or a restart one node at a time)."""
    plan, me = cluster(), here()
    g = plan.galera
    s = me.settings
    apt.packages(name="Install Galera and mariadb-backup", packages=GALERA_PACKAGES,
                 no_recommends=True)
    members = [n.address for n in plan.group("db")]
    galera_config = files.template(
        name="Make MariaDB a node of the Galera cluster",
        src=templates.path("mariadb/71-wordpress-lb-galera.cnf.j2"), dest=GALERA_CONFIG,
        mode="644", cluster_name=CLUSTER_NAME, members=members, address=me.address,
        node_name=host.name, gcache_size=s.db_gcache_size, **EVS_TIMEOUTS)
    state = g.states.get(host.name)
    if host.name == g.bootstrap:
        mariadb.galera_new_cluster(
            name="Start the Galera cluster on this node (the most advanced)")
    elif host.name in g.joining:
        # One at a time: a node joining while another receives its copy from the same
        # donor changes the cluster's membership under that copy, which then fails.
        mariadb.galera_join(name="Join the Galera cluster (catching up from a member)",
                            _serial=True)
    elif state == "member":
        mariadb.galera_restart(
            name="Restart MariaDB for its new configuration, one node at a time",
            _serial=True, _if=lambda: config.did_change() or galera_config.did_change())
    files.template(
        name="Install the check that tells the web hosts' proxies this node is synced",
        src=templates.path("sbin/wordpress-lb-db-check.j2"), dest=CHECK_SCRIPT, mode="755",
        create_remote_dir=False, port=s.db_check_port)
    socket = files.template(
        name="Answer the proxies' checks on the private address",
        src=templates.path("systemd/wordpress-lb-db-check.socket.j2"),
        dest=f"/etc/systemd/system/{CHECK_UNIT}.socket", mode="644",
        address=me.address, port=s.db_check_port)
    service = files.template(
        name="Answer each check with the script",
        src=templates.path("systemd/wordpress-lb-db-check@.service.j2"),
        dest=f"/etc/systemd/system/{CHECK_UNIT}@.service", mode="644", script=CHECK_SCRIPT)
    systemd.daemon_reload(name="Reload systemd for the check's units",
                          _if=lambda: socket.did_change() or service.did_change())
    # Restarted (or started) first when its unit changed: the next step then finds it
    # running (a first run starts it once, not twice).
    systemd.service(name="Listen on the check's new address", service=f"{CHECK_UNIT}.socket",
                    restarted=True, _if=socket.did_change)
    systemd.service(name="Listen for the proxies' checks", service=f"{CHECK_UNIT}.socket",
                    running=True, enabled=True)


@deploy("Database proxy")
def proxy() -> None:
    """A web host's way to the Galera cluster: HAProxy on 127.0.0.1:`db_proxy_port`,
    every connection to the first synced node (see templates/haproxy/haproxy.cfg.j2)."""
    plan, me = cluster(), here()
    if not plan.galera:
        return
    s = me.settings
    apt.packages(name="Install HAProxy", packages=PROXY_PACKAGES, no_recommends=True)
    dbs = plan.group("db")
    config = files.template(
        name="Send the database connections to the first synced node",
        src=templates.path("haproxy/haproxy.cfg.j2"), dest="/etc/haproxy/haproxy.cfg",
        mode="644", jinja_env_kwargs=TIDY, listen=plan.db_endpoint,
        check_port=dbs[0].settings.db_check_port, db_port=dbs[0].settings.db_port,
        maxconn=4 * int(dbs[0].settings.db_max_connections),
        servers=[(n.name, n.address) for n in dbs])
    systemd.service(name="Keep HAProxy running and enabled", service="haproxy.service",
                    running=True, enabled=True)
    systemd.service(name="Reload HAProxy for its new configuration",
                    service="haproxy.service", reloaded=True, _if=config.did_change)


@deploy("Database arbitrator")
def arbitrator() -> None:
    """Galera's arbitrator (`garbd`) on `db_arbitrator`: a vote in the cluster, no data,
    so that with two db hosts the one left when the other stops still has a majority."""
    plan = cluster()
    if not plan.galera or plan.galera.arbitrator != host.name:
        return
    apt.packages(name="Install Galera's arbitrator", packages=ARBITRATOR_PACKAGES,
                 no_recommends=True)
    # Its state (the last primary component it saw) in a directory of its own, which
    # systemd makes for the package's user (its home does not exist).
    dropin = files.template(
        name="Give the arbitrator a working directory",
        src=templates.path("systemd/garb.service.d/wordpress-lb.conf.j2"),
        dest=f"/etc/systemd/system/{ARBITRATOR_UNIT}.d/wordpress-lb.conf", mode="644",
        state_directory=ARBITRATOR_DIR.removeprefix("/var/lib/"))
    systemd.daemon_reload(name="Reload systemd for the arbitrator's drop-in",
                          _if=dropin.did_change)
    config = files.template(
        name="Point the arbitrator at the database hosts",
        src=templates.path("default/garb.j2"), dest=ARBITRATOR_CONFIG, mode="644",
        nodes=[f"{a}:4567" for a in plan.addresses("db")], cluster_name=CLUSTER_NAME,
        address=here().address, work_dir=ARBITRATOR_DIR, **EVS_TIMEOUTS)
    # Restarted (or started) first when its configuration changed: the next step then
    # finds it running.
    systemd.service(name="Restart the arbitrator for its new configuration",
                    service=ARBITRATOR_UNIT, restarted=True,
                    _if=lambda: config.did_change() or dropin.did_change())
    systemd.service(name="Keep the arbitrator running and enabled", service=ARBITRATOR_UNIT,
                    running=True, enabled=True)


@deploy("Database")
def drop_departed_accounts() -> None:
    """After the balancers stopped sending requests to a web host that left the
    inventory (the requests it was serving have finished): its account goes."""
    plan = cluster()
    if plan.galera and host.name != plan.galera.applier:
        return  # replicated from the applier
    for site in plan.sites:
        mariadb.accounts_absent(
            name="Drop database accounts of web hosts no longer in the inventory" + site.tag,
            user=site.db_user,
            keep_hosts=list(plan.addresses("web")),
        )


prune_departed = renamed(drop_departed_accounts, "prune_departed")  # the name before 0.2
