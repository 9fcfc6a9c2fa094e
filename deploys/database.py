"""Database tier (group `db`): Debian's MariaDB for WordPress.

Bound to the host's private address only; root only through the unix socket; no
anonymous accounts or test database; one account per web host, scoped to that host's
private address, with privileges on the WordPress database only. The password comes
from the secrets store and a changed one is applied.
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt, files, mysql, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import secrets
from pyinfra_wordpress_lb.deploys._util import renamed
from pyinfra_wordpress_lb.deploys.plan import cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting
from pyinfra_wordpress_lb.operations import mariadb

CONFIG = "/etc/mysql/mariadb.conf.d/70-wordpress-lb.cnf"
PACKAGES = ["mariadb-server"]

SETTINGS = (
    Setting("db_name", "wordpress", "the WordPress database"),
    Setting("db_user", "wordpress",
            "database account name; one account per web host, `db_user`@<its private address>"),
    Setting("db_port", 3306, "MariaDB's TCP port on the db host's private address"),
    Setting("db_max_connections", 200, "MariaDB `max_connections`"),
)


@deploy("Database")
def database() -> None:
    plan, me = cluster(), here()
    site = plan.site
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
    mariadb.secure_installation(name="No anonymous accounts, remote root or test database")
    mysql.database(
        name=f"Create the {site.db_name} database",
        database=site.db_name,
        charset="utf8mb4",
        collate="utf8mb4_unicode_ci",
    )

    user = site.db_user
    password = secrets.secret("db_password")
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


@deploy("Database")
def drop_departed_accounts() -> None:
    """After the balancers stopped sending requests to a web host that left the
    inventory (the requests it was serving have finished): its account goes."""
    plan = cluster()
    mariadb.accounts_absent(
        name="Drop database accounts of web hosts no longer in the inventory",
        user=plan.site.db_user,
        keep_hosts=list(plan.addresses("web")),
    )


prune_departed = renamed(drop_departed_accounts, "prune_departed")  # the name before 0.2
