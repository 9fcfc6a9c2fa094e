"""Backups (group `db`): the live database and the shared wp-content, on a schedule, into
`/var/backups/wordpress` on the database host, optionally copied off the cluster.

`wordpress-backup.service` takes one backup (start it to take one now);
`wordpress-backup.timer` starts it `backup_schedule`. The database is dumped in one
consistent snapshot without locking the site (InnoDB, `--single-transaction`); the
shared wp-content is fetched from the first web host that answers, with a key of its own
that may only read that tree (rrsync -ro), from the database host only. Each backup is
a directory named after its UTC time holding `database.sql.gz`, `wp-content.tar.gz`,
`backup.json` and `SHA256SUMS`; the newest `backup_keep` stay. With `backup_target`
(`user@host:path`) each one is copied there over SSH with another key of its own (its
public half is written beside the hosts file: `hosts.backup.pub`).

With a Galera cluster one node takes them (`plan.backup_host`, the last db host: the
least likely writer), and `backup.json` records the cluster's position (`uuid:seqno`)
read before the dump's snapshot: every transaction up to it is in the dump.
"""

from __future__ import annotations

import json
import shlex

from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import secrets
from pyinfra_wordpress_lb.deploys._util import group_hosts, host_fact, ssh_options
from pyinfra_wordpress_lb.deploys.plan import SHORTHAND, Site, cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting
from pyinfra_wordpress_lb.facts.ssh import HostKeys
from pyinfra_wordpress_lb.operations import ssh

BACKUP_DIR = "/var/backups/wordpress"
KEYS = "/etc/wordpress-lb/backup"
SCRIPT = "/usr/local/sbin/wordpress-backup"
UNIT = "wordpress-backup"
PACKAGES = ["rsync", "openssh-client", "gzip", "mariadb-client"]

SETTINGS = (
    Setting("backup_schedule", "daily",
            "when `wordpress-backup.timer` takes a backup (systemd `OnCalendar`, e.g. "
            "`daily`, `*-*-* 03:30`)"),
    Setting("backup_keep", 7, "backups kept in `/var/backups/wordpress`, the newest"),
    Setting("backup_target", None,
            "`user@host:path` to copy each backup to over SSH (a key of its own; its public "
            "half is written beside the hosts file as `hosts.backup.pub`)"),
    Setting("backup_target_host_key", None,
            "the target's SSH host key (`ssh-ed25519 AAAA...`) to pin; default: the key "
            "it shows the first time"),
    Setting("backup", None,
            "`restore.py` only: the backup to restore (its name, a UTC time such as "
            "`20261130T040000Z`); default: the newest"),
    Setting("site", None,
            "`restore.py` only: the site to restore, by its name (`main` without `sites`); "
            "default: the cluster's one site"),
)


def reader_key() -> dict | None:
    """The backup's read-only access to the web hosts' shared tree (an authorized_keys
    entry the sync tier writes): from the database host that takes the backups only."""
    plan = cluster()
    if not plan.backup_host:
        return None
    return {"source": plan.node(plan.backup_host).address,
            "key": secrets.public_key("backup_ssh_key", "wordpress-lb-backup")}


@deploy("Backups")
def backups() -> None:
    plan, me = cluster(), here()
    if me.name != plan.backup_host:
        return  # with a Galera cluster: one node takes them (plan.backup_host)
    s = me.settings
    target = s.backup_target
    apt.packages(name="Install the backup tools", no_recommends=True, packages=PACKAGES)
    files.directory(name="Create the backup keys' directory", path=KEYS, mode="700")
    files.directory(name="Create the backup directory", path=BACKUP_DIR, mode="700")
    ssh.private_key(name="Install the backup's key (it may only read wp-content)",
                    path=f"{KEYS}/backup_ed25519", key=secrets.secret("backup_ssh_key"))
    webs = plan.group("web")
    ssh.known_hosts(name="Pin the web hosts' host keys for the backup",
                    path=f"{KEYS}/known_hosts",
                    hosts={n.address: host_fact(h, HostKeys) if n.reachable else None
                           for n, h in zip(webs, group_hosts("web"))})
    if target:  # a setting: fixed for the run
        ssh.private_key(name="Install the key for the off-cluster copy",
                        path=f"{KEYS}/target_ed25519", key=secrets.secret("backup_target_ssh_key"))
        public = secrets.public_key("backup_target_ssh_key", "wordpress-lb-backup-target")
        secrets.write_beside(".backup.pub", public + "\n")
        pinned = s.backup_target_host_key
        if pinned:
            ssh.known_hosts(name="Pin the backup target's host key",
                            path=f"{KEYS}/target_known_hosts",
                            hosts={target.split("@")[-1].split(":")[0]: [pinned]})
    for each in plan.sites:  # each site its own backups, script and timer
        _site_backups(each, plan, s, target)


def directory(site: Site) -> str:
    """Where a site's backups are kept on the backup host (the first site's: BACKUP_DIR)."""
    return site.variant(BACKUP_DIR)


def unit(site: Site) -> str:
    """The name of a site's backup units (`wordpress-backup` for `main`)."""
    return site.variant(UNIT)


def script(site: Site) -> str:
    return site.variant(SCRIPT)


def _site_backups(site: Site, plan, s, target) -> None:
    webs = plan.group("web")
    tag, name = site.tag, unit(site)
    if target and site.name != SHORTHAND:  # beside the first site's, in a directory of its own
        target = f"{str(target).rstrip('/')}/{site.name}"
    if site.name != SHORTHAND:  # (the first site's: made with the keys' directory)
        files.directory(name="Create the backup directory" + tag, path=directory(site),
                        mode="700")
    files.template(
        name="Install the backup script" + tag, src=templates.path("sbin/wordpress-backup.j2"),
        dest=script(site),
        create_remote_dir=False, mode="700",
        jinja_env_kwargs={"trim_blocks": True, "lstrip_blocks": True},
        backup_dir=directory(site), keep=int(s.backup_keep),
        schedule=s.backup_schedule, db_name=site.db_name,
        web_addresses=[n.address for n in webs],
        web_ssh={n.address: ssh_options(n) for n in webs},
        web_user=site.user, key=f"{KEYS}/backup_ed25519",
        known_hosts=f"{KEYS}/known_hosts", site_url=site.url,
        site_url_json=shlex.quote(json.dumps(site.url)),
        db_name_json=shlex.quote(json.dumps(site.db_name)),
        db_name_sh=shlex.quote(site.db_name),
        table_prefix_json=shlex.quote(json.dumps(site.table_prefix)),
        target=target, target_sh=shlex.quote(str(target or "")),
        target_key=f"{KEYS}/target_ed25519", target_known_hosts=f"{KEYS}/target_known_hosts",
        target_pinned=bool(s.backup_target_host_key), galera=bool(plan.galera))
    service = files.template(
        name=f"Install {name}.service", mode="644",
        src=templates.path("systemd/wordpress-backup.service.j2"),
        dest=f"/etc/systemd/system/{name}.service",
        create_remote_dir=False, backup_dir=directory(site), script=script(site))
    timer = files.template(
        name=f"Install {name}.timer", mode="644",
        src=templates.path("systemd/wordpress-backup.timer.j2"),
        dest=f"/etc/systemd/system/{name}.timer",
        create_remote_dir=False, schedule=s.backup_schedule)
    systemd.daemon_reload(name="Reload systemd for the backup units" + tag,
                          _if=lambda: service.did_change() or timer.did_change())
    systemd.service(name=f"Take backups {s.backup_schedule}" + tag,
                    service=f"{name}.timer", running=True, enabled=True)
