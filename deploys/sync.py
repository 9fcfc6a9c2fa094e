"""Sync mesh (group `web`): every web host pushes what WordPress writes at run time (the
shared `wp-content`: uploads, plugins, themes, languages) to every other, with lsyncd.
Core and wp-config.php never travel by the mesh: the deploy puts them on every host.

lsyncd runs as the `wordpress` user under systemd (restart on failure, starts at
boot, keeps going when a peer is down) and pushes with rsync over SSH using one mesh
key per cluster. On each peer that key may only run `rrsync` into the mesh's root, only
from the other web hosts' addresses, with no pty or forwarding; peers' host keys are
pinned from facts. The guards lsyncd's maintainers recommend for two-way use: deletes
propagate only while running, a newer file on the receiver is never overwritten,
partial files stay out of the synced tree, caches and upgrade temp dirs are excluded.

A web host new to the cluster gets the shared content from a peer (pushed by the first
web host that already serves) before any balancer sends it traffic; a web host that
left the inventory keeps its mesh access until the balancers no longer send to it.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, deploy
from pyinfra.operations import apt, files, server, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import backup, common, secrets, web
from pyinfra_wordpress_lb.deploys._util import (
    group_hosts, host_fact, newcomers, private_address, reachable, serving, ssh_options,
)
from pyinfra_wordpress_lb.deploys.settings import Setting, defaults
from pyinfra_wordpress_lb.facts.ssh import AuthorizedSources, HostKeys
from pyinfra_wordpress_lb.operations import ssh, sysctl, wordpress

UNIT = "lsyncd-wordpress.service"
CONFIG = "/etc/lsyncd/wordpress.conf.lua"
TEMP_DIR = ".mesh-tmp"  # relative to the mesh's root (rrsync wants it inside)

SETTINGS = (
    Setting("mesh_root", None,
            "the directory the mesh mirrors; default `<docroot>/shared/wp-content`"),
    Setting("mesh_delay", 0.25,
            "seconds lsyncd gathers events before it pushes (lsyncd's own default: 15)"),
    Setting("mesh_inotify_watches", 524288,
            "`fs.inotify.max_user_watches` at least (lsyncd watches every directory); a "
            "host that refuses (a container) is named in the output"),
    Setting("mesh_excludes",
            (f"/{TEMP_DIR}/", "/cache/", "/upgrade/", "/upgrade-temp-backup/", "*.swp", "*~"),
            "paths the mesh never syncs (lsyncd exclude patterns, `/` = the mesh's root)"),
)


def mesh_root(target=None) -> str:
    target = host if target is None else target
    root = target.data.get("mesh_root")
    if root:
        return str(root).rstrip("/")
    docroot = str(target.data.get("docroot") or "/var/www/wordpress").rstrip("/")
    return f"{docroot}/{wordpress.SHARED_CONTENT}"


def peers() -> list[str]:
    """Private addresses of the other web hosts."""
    me = private_address()
    return [a for a in (private_address(h) for h in group_hosts("web")) if a != me]


def departing(authorized: str) -> list[str]:
    """Addresses this host still admits to the mesh that are no web host any more."""
    me = private_address()
    # (The database host's backup is admitted by a line of its own.)
    current = {private_address(h) for h in group_hosts("web") + group_hosts("db")}
    return [a for a in host_fact(host, AuthorizedSources, path=authorized)
            if a not in current and a != me and a != "127.0.0.1"]


@deploy("Sync mesh", data_defaults=defaults(common.SETTINGS, web.SETTINGS, SETTINGS))
def sync() -> None:
    user = host.data.wordpress_user
    home = host.data.wordpress_home
    root = mesh_root()
    ssh_dir = f"{home}/.ssh"
    key_file = f"{ssh_dir}/mesh_ed25519"
    known_hosts = f"{ssh_dir}/known_hosts"
    authorized = f"{ssh_dir}/authorized_keys"
    others = peers()

    # rrsync (Debian's rsync) is a Python 3 script: the receiving side needs python3.
    apt.packages(name="Install lsyncd", packages=["lsyncd", "rsync", "openssh-client", "python3"],
                 no_recommends=True)
    # One inotify watch per directory: too few and lsyncd silently misses directories.
    sysctl.at_least(name="Let lsyncd watch every directory",
                    key="fs.inotify.max_user_watches", value=int(host.data.mesh_inotify_watches))
    files.directory(name="Create the mesh's SSH directory", path=ssh_dir, user=user,
                    group=user, mode="700")
    files.directory(name="Create the SSH connection-sharing directory",
                    path=f"{ssh_dir}/cm", user=user, group=user, mode="700")
    files.directory(name="Create the mesh's root", path=root, user=user, group=user,
                    mode="755")
    files.directory(name="Create the mesh's temp dir (never synced nor served)",
                    path=f"{root}/{TEMP_DIR}", user=user, group=user, mode="700")

    key = ssh.private_key(
        name="Install the cluster's mesh key",
        path=key_file,
        key=secrets.secret("mesh_ssh_key"),
        user=user,
    )
    # A web host that left the inventory keeps its access until the balancers no longer
    # send it requests (`prune_departed`, after them).
    admit(others + departing(authorized), root, authorized,
          "Let the mesh key rsync into the mesh's root, from the peers only")
    ssh.known_hosts(
        name="Pin the peers' host keys",
        path=known_hosts,
        hosts={private_address(h): host_fact(h, HostKeys) if reachable(h) else None
               for h in group_hosts("web") if private_address(h) in others},
        user=user,
    )

    config = files.template(
        name="Write the lsyncd mesh configuration",
        src=templates.path("lsyncd/wordpress.conf.lua.j2"),
        dest=CONFIG,
        mode="644",
        peers=others,
        peer_ssh={private_address(h): ssh_options(h) for h in group_hosts("web")},
        mesh_user=user,
        root=root,
        delay=host.data.mesh_delay,
        excludes=list(host.data.mesh_excludes),
        temp_dir=TEMP_DIR,
        key_file=key_file,
        known_hosts=known_hosts,
        control_dir=f"{ssh_dir}/cm",
        status_file=status_file(),
    )
    unit = files.template(
        name="Install the lsyncd mesh unit",
        src=templates.path("systemd/lsyncd-wordpress.service.j2"),
        dest=f"/etc/systemd/system/{UNIT}",
        mode="644",
        run_as=user,
        config=CONFIG,
    )
    systemd.daemon_reload(name="Reload systemd for the mesh unit", _if=unit.did_change)
    restart = lambda: config.did_change() or unit.did_change() or key.did_change()  # noqa: E731
    systemd.service(name="Restart the mesh for its new configuration", service=UNIT,
                    restarted=True, _if=lambda: bool(others) and restart())
    systemd.service(name="Keep the mesh running and enabled" if others
                    else "Stop the mesh: there is no other web host",
                    service=UNIT, running=bool(others), enabled=bool(others))


def admit(addresses: list[str], root: str, path: str, name: str):
    user = host.data.wordpress_user
    return files.template(
        name=name,
        src=templates.path("ssh/authorized_keys.j2"),
        dest=path,
        user=user,
        group=user,
        mode="600",
        peers=addresses or ["127.0.0.1"],
        root=root,
        public_key=secrets.public_key("mesh_ssh_key", "wordpress-lb-mesh"),
        reader=backup.reader_key(),
        jinja_env_kwargs={"trim_blocks": True, "lstrip_blocks": True},
    )


def status_file(target=None) -> str:
    """Where lsyncd writes its status (read by `status.py`)."""
    return f"{(host if target is None else target).data.wordpress_home}/lsyncd.status"


@deploy("Sync mesh", data_defaults=defaults(common.SETTINGS, web.SETTINGS, SETTINGS))
def seed() -> None:
    """The first web host that served before this run pushes the shared content to web
    hosts new to the cluster (once every host's mesh admits its peers), so a new host
    has every upload before any balancer sends it a request."""
    established = [h for h in group_hosts("web") if serving(h)]
    if not established or host != established[0]:
        return
    user = host.data.wordpress_user
    ssh_dir = f"{host.data.wordpress_home}/.ssh"
    for newcomer in newcomers():
        address = private_address(newcomer)
        server.shell(
            name=f"Give {newcomer.name} the shared content from this peer",
            commands=[StringCommand(
                "runuser", "-u", QuoteString(user), "--", "rsync", "-a", "--update",
                f"--temp-dir=/{TEMP_DIR}", f"--exclude=/{TEMP_DIR}/", "-e", QuoteString(
                    f"ssh -i {shlex.quote(ssh_dir + '/mesh_ed25519')} {ssh_options(newcomer)} "
                    "-o BatchMode=yes -o StrictHostKeyChecking=yes "
                    f"-o UserKnownHostsFile={shlex.quote(ssh_dir + '/known_hosts')}"),
                QuoteString(f"{mesh_root()}/"), QuoteString(f"{user}@{address}:/"),
            )],
        )


@deploy("Sync mesh", data_defaults=defaults(common.SETTINGS, web.SETTINGS, SETTINGS))
def prune_departed() -> None:
    """After the balancers stopped sending requests to a web host that left the
    inventory: the mesh admits it no more."""
    authorized = f"{host.data.wordpress_home}/.ssh/authorized_keys"
    if departing(authorized):
        admit(peers(), mesh_root(), authorized,
              "Admit only the current web hosts to the mesh")
