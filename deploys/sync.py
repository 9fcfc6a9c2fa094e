"""Sync mesh (group `web`): every web host pushes its docroot to every other, with lsyncd.

lsyncd runs as the `wordpress` user under systemd (restart on failure, starts at
boot, keeps going when a peer is down) and pushes with rsync over SSH using one mesh
key per cluster. On each peer that key may only run `rrsync` into the docroot, only
from the other web hosts' addresses, with no pty or forwarding; peers' host keys are
pinned from facts. The guards lsyncd's maintainers recommend for two-way use: deletes
propagate only while running, a newer file on the receiver is never overwritten,
partial files stay out of the synced tree, caches and upgrade temp dirs are excluded.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import common, secrets, web
from pyinfra_wordpress_lb.deploys._util import group_hosts, host_fact, private_address
from pyinfra_wordpress_lb.deploys.settings import Setting, defaults
from pyinfra_wordpress_lb.facts.ssh import HostKeys
from pyinfra_wordpress_lb.operations import ssh

UNIT = "lsyncd-wordpress.service"
CONFIG = "/etc/lsyncd/wordpress.conf.lua"
TEMP_DIR = ".mesh-tmp"  # relative to the docroot

SETTINGS = (
    Setting("mesh_delay", 1,
            "seconds lsyncd gathers events before it pushes (lsyncd's own default: 15)"),
    Setting("mesh_excludes",
            ("/wp-config.php", "/.pwlb-release", f"/{TEMP_DIR}/", "/wp-content/cache/",
             "/wp-content/upgrade/", "/wp-content/upgrade-temp-backup/", "*.swp", "*~"),
            "paths the mesh never syncs (lsyncd exclude patterns, `/` = the docroot)"),
)


def peers() -> list[str]:
    """Private addresses of the other web hosts."""
    me = private_address()
    return [a for a in (private_address(h) for h in group_hosts("web")) if a != me]


@deploy("Sync mesh", data_defaults=defaults(common.SETTINGS, web.SETTINGS, SETTINGS))
def sync() -> None:
    user = host.data.wordpress_user
    home = host.data.wordpress_home
    docroot = host.data.docroot.rstrip("/")
    ssh_dir = f"{home}/.ssh"
    key_file = f"{ssh_dir}/mesh_ed25519"
    known_hosts = f"{ssh_dir}/known_hosts"
    others = peers()

    # rrsync (Debian's rsync) is a Python 3 script: the receiving side needs python3.
    apt.packages(name="Install lsyncd", packages=["lsyncd", "rsync", "openssh-client", "python3"],
                 no_recommends=True)
    files.directory(name="Create the mesh's SSH directory", path=ssh_dir, user=user,
                    group=user, mode="700")
    files.directory(name="Create the SSH connection-sharing directory",
                    path=f"{ssh_dir}/cm", user=user, group=user, mode="700")
    files.directory(name="Create the mesh's temp dir (never synced nor served)",
                    path=f"{docroot}/{TEMP_DIR}", user=user, group=user, mode="700")

    key = ssh.private_key(
        name="Install the cluster's mesh key",
        path=key_file,
        key=secrets.secret("mesh_ssh_key"),
        user=user,
    )
    files.template(
        name="Let the mesh key rsync into the docroot, from the peers only",
        src=templates.path("ssh/authorized_keys.j2"),
        dest=f"{ssh_dir}/authorized_keys",
        user=user,
        group=user,
        mode="600",
        peers=others or ["127.0.0.1"],
        docroot=docroot,
        public_key=secrets.public_key("mesh_ssh_key", "wordpress-lb-mesh"),
    )
    ssh.known_hosts(
        name="Pin the peers' host keys",
        path=known_hosts,
        hosts={private_address(h): host_fact(h, HostKeys)
               for h in group_hosts("web") if private_address(h) in others},
        user=user,
    )

    config = files.template(
        name="Write the lsyncd mesh configuration",
        src=templates.path("lsyncd/wordpress.conf.lua.j2"),
        dest=CONFIG,
        mode="644",
        peers=others,
        mesh_user=user,
        docroot=docroot,
        delay=host.data.mesh_delay,
        excludes=list(host.data.mesh_excludes),
        temp_dir=TEMP_DIR,
        key_file=key_file,
        known_hosts=known_hosts,
        control_dir=f"{ssh_dir}/cm",
        status_file=f"{home}/lsyncd.status",
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
