"""Removing a site (an entry of `sites` with `absent = true`), once the balancers no
longer send its requests anywhere (deploy.py: after every balancer serves the new plan).

On the host that takes the backups, one final backup of the site (its database and
shared wp-content, in its backup directory), then its backup units go. On the web hosts,
its mesh, WP-Cron, PHP-FPM pool and backend vhost stop and their files go. On the
balancers, its certificate and page cache go. Its files, database, account, Unix user and
backups stay, unless the entry also says `purge = true`: then they go too, and no final
backup is taken. Once a run has removed it, the entry may leave the list.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File, Link
from pyinfra.operations import files, mysql, server

from pyinfra_wordpress_lb.deploys import backup, balancer, cron, sync, tls, web
from pyinfra_wordpress_lb.deploys._util import host_fact
from pyinfra_wordpress_lb.deploys.plan import Site, cluster
from pyinfra_wordpress_lb.facts import nginx as nginx_facts
from pyinfra_wordpress_lb.facts.php import FpmVersion
from pyinfra_wordpress_lb.operations import mariadb


@deploy("Remove sites")
def retire_sites() -> None:
    for site in cluster().retired:
        if "db" in host.groups:
            _database(site)
        if "web" in host.groups:
            _web(site)
        if "lb" in host.groups:
            _balancer(site)


def _gone(name: str, paths: list[str], _if=None) -> None:
    """These files go (one command when any is there)."""
    present = [p for p in paths if host_fact(host, File, path=p)]
    if present:
        server.shell(name=name, commands=["rm -f " + " ".join(map(shlex.quote, present))],
                     _if=_if)


def _units_gone(site: Site, units: list[str], what: str) -> None:
    """Units stopped and disabled, their files removed, systemd reloaded."""
    paths = [f"/etc/systemd/system/{u}" for u in units]
    present = [u for u, p in zip(units, paths) if host_fact(host, File, path=p)]
    if not present:
        return
    server.shell(name=f"Stop the site's {what} ({site.name})",
                 commands=["systemctl disable --now " + " ".join(present) + " || true",
                           "rm -f " + " ".join(f"/etc/systemd/system/{u}" for u in present),
                           "systemctl daemon-reload"])


def _database(site: Site) -> None:
    plan = cluster()
    unit = backup.unit(site)
    if host.name == plan.backup_host:
        timer = f"/etc/systemd/system/{unit}.timer"
        if not site.purge and host_fact(host, File, path=timer):
            # The site's last state, beside its earlier backups (kept: README, Sites).
            server.shell(name=f"Take a final backup of the site ({site.name})",
                         commands=[f"systemctl start {unit}.service"])
        _units_gone(site, [f"{unit}.timer", f"{unit}.service"], "backups")
        _gone(f"Remove the site's backup script ({site.name})", [backup.script(site)])
        if site.purge:
            files.directory(name=f"Remove the site's backups (purge: {site.name})",
                            path=backup.directory(site), present=False)
    if not site.purge or (plan.galera and host.name != plan.galera.applier):
        return  # kept; or replicated from the applier
    mysql.database(name=f"Drop the site's database (purge: {site.name})",
                   database=site.db_name, present=False)
    mariadb.accounts_absent(name=f"Drop the site's database accounts (purge: {site.name})",
                            user=site.db_user, keep_hosts=[])


def _web(site: Site) -> None:
    mesh = sync.Mesh.of(site)
    _units_gone(site, [mesh.watch_unit, mesh.catch_up_unit, mesh.unit,
                       f"{cron.unit(site)}.timer", f"{cron.unit(site)}.service"],
                "mesh and WP-Cron")
    _gone(f"Remove the site's mesh and WP-Cron files ({site.name})",
          [mesh.config, mesh.tool, mesh.tmpfiles, cron.runner(site), web.logrotate(site)])
    enabled = f"/etc/nginx/sites-enabled/{site.key}"
    vhost = f"/etc/nginx/sites-available/{site.key}"
    if host_fact(host, File, path=vhost) or host_fact(host, Link, path=enabled):
        # (one web host at a time, as every nginx reload: see _util.nginx_site)
        # nginx reloads and records what it serves, as nginx.reloaded does.
        # (one shell: each command of an operation runs in a shell of its own)
        server.shell(name=f"Remove the site's backend vhost ({site.name})",
                     commands=[f"rm -f {enabled} {vhost} && nginx -t -q && "
                               f"fingerprint=$({nginx_facts.FINGERPRINT}) && "
                               "systemctl reload nginx && "
                               f'echo "$fingerprint" > {nginx_facts.STAMP}'], _serial=True)
    version = host_fact(host, FpmVersion)
    pool = f"/etc/php/{version}/fpm/pool.d/{site.key}.conf"
    if version and host_fact(host, File, path=pool):
        server.shell(name=f"Remove the site's PHP-FPM pool ({site.name})",
                     commands=[f"rm -f {pool}", f"systemctl reload php{version}-fpm"],
                     _serial=True)
    if site.purge:
        files.directory(name=f"Remove the site's files (purge: {site.name})",
                        path=site.docroot, present=False)
        server.user(name=f"Remove the site's Unix user (purge: {site.name})",
                    user=site.user, present=False)
        files.directory(name=f"Remove the site's home (purge: {site.name})",
                        path=site.home, present=False)
        server.group(name=f"Remove the site's group (purge: {site.name})",
                     group=site.user, present=False)


def _balancer(site: Site) -> None:
    _gone(f"Remove the site's certificate ({site.name})",
          [tls.cert_path(site), tls.key_path(site)])
    files.directory(name=f"Remove the site's page cache ({site.name})",
                    path=balancer.cache_dir(site), present=False)
