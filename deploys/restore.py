"""Restore (`pyinfra inventory.py restore.py`): the site as a backup has it, database and
shared wp-content, on every host; the newest backup, or `--data backup=<name>`.

The backup is checked through and through (checksums, whole archives, a finished
database dump) on the database host while the deploy is loaded: a missing, partial or
corrupt one stops everything before any change. Then what could save or spread a
half-restored site pauses (the backup timer and a backup in progress, the mesh, WP-Cron),
the web hosts show WordPress's maintenance page, the database is replaced, every web
host's shared wp-content is made exactly the backup's (its archive passes through this
machine, in a private temporary directory removed when the run ends), the maintenance
page goes, the balancers' page caches are emptied, what paused runs again, and the site
is checked. With a Galera cluster the backups are on one node (`plan.backup_host`): the
dump is loaded there and replicates, and the other nodes wait until they have applied
it before the maintenance page goes. A restore that fails leaves the paused units stopped on the host that failed
(no backup of a half-loaded database rotates a good one out); the next restore or deploy
starts them again.
"""

from __future__ import annotations

import atexit
import shlex
import shutil
import tempfile
from pathlib import Path

from gevent.lock import Semaphore
from pyinfra import host
from pyinfra.api import Host, StringCommand, deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import files, server

from pyinfra_wordpress_lb.deploys import backup, cron, sync
from pyinfra_wordpress_lb.deploys._run import run
from pyinfra_wordpress_lb.deploys._util import group_hosts, host_fact
from pyinfra_wordpress_lb.deploys.balancer import PURGE
from pyinfra_wordpress_lb.deploys.plan import Site, cluster, mine
from pyinfra_wordpress_lb.deploys.sync import mesh_root
from pyinfra_wordpress_lb.facts.backup import Backups, Verified
from pyinfra_wordpress_lb.operations import backup as backup_ops

STAGING = "/var/lib/wordpress-lb/restore"


class RestoreRefused(PyinfraError):
    """The backup cannot be restored; nothing was changed."""


def restored() -> Site:
    """The site to restore: `--data site=NAME` (validate: one of the cluster's), else
    the first."""
    plan, name = cluster(), mine().site
    return next((s for s in plan.sites if s.name == name), plan.site)


def chosen() -> str:
    """The backup to restore, checked (the same answer for every host)."""
    found = run().restore
    if found:
        return found
    db = _backup_host()
    name = mine().backup
    where = backup.directory(restored())
    if not name:
        complete = [b["name"] for b in host_fact(db, Backups, directory=where)
                    if b["complete"]]
        if not complete:
            raise RestoreRefused(f"{db.name} holds no complete backup in {where}; "
                                 "nothing was changed")
        name = complete[-1]
    check = host_fact(db, Verified, backup=str(name), directory=where)
    if not check.get("ok"):
        raise RestoreRefused(f"backup {name} on {db.name} cannot be restored: "
                             f"{check.get('problem')}; nothing was changed")
    run().restore = str(name)
    return run().restore


def local_archive(name: str) -> str:
    """The backup's wp-content archive, fetched from the database host to this machine
    once (a private temporary directory), to be put on every web host."""
    with _FETCHING:  # every web host's deploy asks at once; one fetch (pyinfra's own
        return _fetch(name)  # temporary file for it would clash)


_FETCHING = Semaphore()


def _backup_host() -> Host:
    """The db host holding the backups (with a Galera cluster, the node that takes
    them: the restore is loaded there and replicates to the others)."""
    name = cluster().backup_host
    return next(h for h in group_hosts("db") if h.name == name)


def _fetch(name: str) -> str:
    cached = run().restore_archive
    if cached:
        return cached
    db = _backup_host()
    folder = Path(tempfile.mkdtemp(prefix="pwlb-restore-"))
    atexit.register(shutil.rmtree, folder, True)  # once the run is over, uploaded or not
    local = folder / f"wp-content-{name}.tar.gz"
    remote = f"{backup.directory(restored())}/{name}/wp-content.tar.gz"
    if not db.get_file(remote, str(local), _sudo=bool(db.data.get("_sudo"))):
        raise RestoreRefused(f"could not fetch {remote} from {db.name}; nothing was changed")
    run().restore_archive = str(local)
    return run().restore_archive


# What must not run while the site is replaced: it would save a half-restored database
# as a good backup (and rotate a good one out), spread a half-restored wp-content over
# the mesh, or run WordPress's scheduled jobs against it. (unit, start it again after)
def paused(site: Site) -> dict[str, tuple[tuple[str, bool], ...]]:
    """The restored site's units of that kind, by group: (unit, start it again after)."""
    backups = backup.unit(site)
    return {"db": ((f"{backups}.timer", True), (f"{backups}.service", False)),
            "web": ((sync.Mesh.of(site).unit, True), (f"{cron.unit(site)}.timer", True))}


def _paused_units() -> list[tuple[str, bool]]:
    """This host's units of `paused` that were running when the restore was loaded."""
    units = [u for group, listed in paused(restored()).items() if group in host.groups
             for u in listed]
    if not units:
        return []
    running = host_fact(host, SystemdStatus, services=tuple(name for name, _ in units))
    return [(name, again) for name, again in units if running.get(name)]


@deploy("Restore")
def pause() -> None:
    units = [unit for unit, _ in _paused_units()]
    if units:
        server.shell(name="Pause backups, the mesh and WP-Cron while the site is restored",
                     commands=[StringCommand("systemctl", "stop", *units)])


@deploy("Restore")
def resume() -> None:
    units = [unit for unit, again in _paused_units() if again]
    if units:
        server.shell(name="Start what paused for the restore again",
                     commands=[StringCommand("systemctl", "start", *units)])


@deploy("Restore")
def maintenance(on: bool) -> None:
    """WordPress's own maintenance page on every web host while the site is replaced."""
    if "web" not in host.groups:
        return
    flag = f"{restored().docroot}/current/.maintenance"
    if on:
        server.shell(name="Show the maintenance page while the site is restored",
                     commands=[f"echo '<?php $upgrading = time();' > {shlex.quote(flag)}"])
    else:
        files.file(name="Remove the maintenance page", path=flag, present=False)


@deploy("Restore")
def replace() -> None:
    name, plan, site = chosen(), cluster(), restored()
    if host.name == plan.backup_host:
        backup_ops.restore_database(
            name=f"Replace the database with backup {name}",
            dump=f"{backup.directory(site)}/{name}/database.sql.gz", database=site.db_name)
    elif "db" in host.groups:  # another Galera node: the load reaches it by replication
        backup_ops.caught_up(name=f"Wait until this node has applied backup {name}'s load",
                             database=site.db_name)
    if "web" in host.groups:
        archive = f"{STAGING}/wp-content.tar.gz"
        files.directory(name="Create the restore's staging directory", path=STAGING, mode="700")
        files.put(name=f"Upload backup {name}'s wp-content", src=local_archive(name),
                  dest=archive, mode="600")
        backup_ops.restore_content(name=f"Make wp-content backup {name}'s", archive=archive,
                                   root=mesh_root(site=site), user=site.user)
        files.file(name="Remove the uploaded archive", path=archive, present=False)


@deploy("Restore")
def afterwards() -> None:
    if "lb" in host.groups:
        several = len(cluster().sites) > 1
        server.shell(name="Empty the page cache",
                     commands=[f"{PURGE} {restored().name}" if several else PURGE])
