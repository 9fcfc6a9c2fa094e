"""Common base for every host: fresh apt cache, base packages, the `wordpress` user."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt, files, server

from pyinfra_wordpress_lb import templates

from pyinfra_wordpress_lb.deploys.plan import Cluster, Node, cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting

SETTINGS = (
    Setting("private_address", None,
            "IPv4 address for cluster traffic (upstreams, DB grants, mesh); default: the "
            "host's first private address"),
    Setting("apt_cache_time", 86400,
            "seconds the apt cache counts as fresh; re-runs within it skip `apt-get update`"),
    Setting("base_packages", ("ca-certificates", "curl", "python3", "rsync"),
            "packages every host gets"),
    Setting("unattended_upgrades", True,
            "install Debian's security updates automatically every day "
            "(`unattended-upgrades`, Debian's own configuration: security updates only, no "
            "reboot)"),
    Setting("wordpress_user", "wordpress",
            "system user (and group) that owns the shared content, runs PHP-FPM and the sync mesh"),
    Setting("wordpress_home", "/var/lib/wordpress", "home of the wordpress user"),
    Setting("secrets_file", None,
            "the secrets store; default: beside the hosts file (`hosts.toml` -> "
            "`hosts.secrets.json`), else `./wordpress-lb.secrets.json`"),
    Setting("secrets", None,
            "secret values that override the store, e.g. `{db_password = \"...\"}` "
            "(environment `PWLB_SECRET_<NAME>` wins over both)"),
)


def first_packages(settings) -> list[str]:
    """What a host installs first, before its firewall and any service: the base
    packages, the updater and the firewall's own tool (the firewall tier installs it too,
    for a deploy that uses it alone)."""
    from pyinfra_wordpress_lb.deploys import firewall

    found = list(settings.base_packages)
    found += ["unattended-upgrades"] if settings.unattended_upgrades else []
    found += firewall.PACKAGES if settings.firewall else []
    return list(dict.fromkeys(found))


def role_packages(plan: Cluster, node: Node) -> list[str]:
    """What the tiers of a host's roles install (each tier installs its own too, for a
    deploy that uses it alone: then it finds them installed)."""
    from pyinfra_wordpress_lb.deploys import backup, balancer, database, ha, sync, tls, web

    found: list[str] = []
    if "db" in node.roles:
        found += database.PACKAGES + backup.PACKAGES
        found += database.GALERA_PACKAGES if plan.galera else []
    if "web" in node.roles:
        found += web.PACKAGES + sync.PACKAGES
        found += database.PROXY_PACKAGES if plan.galera else []
    if "lb" in node.roles:
        found += balancer.PACKAGES
        found += tls.ACME_PACKAGES if plan.site.tls.mode == "acme" else []
        found += ha.PACKAGES if plan.vip else []
    return list(dict.fromkeys(found))


@deploy("Packages")
def packages() -> None:
    """Every host installs what its roles need in one step, side by side: pyinfra runs a
    step on every host that has it and waits for all before the next, so a tier's own
    installation would keep the other hosts waiting (after the firewall: nothing
    listens before it)."""
    wanted = role_packages(cluster(), here())
    if wanted:
        apt.packages(name="Install what this host's roles need (every host at once)",
                     packages=wanted, no_recommends=True)


@deploy("Common base")
def common() -> None:
    s = here().settings
    apt.update(
        name="Refresh the apt cache when older than apt_cache_time",
        cache_time=s.apt_cache_time,
    )
    # One apt run for everything a host needs before any service runs (each apt run
    # costs seconds of dpkg bookkeeping): the base, the updater, the firewall's tool.
    apt.packages(
        name="Install the base packages",
        packages=first_packages(s),
        no_recommends=True,
    )
    if s.unattended_upgrades:
        files.put(name="Install Debian's security updates every day",
                  src=templates.path("apt/20auto-upgrades"),
                  dest="/etc/apt/apt.conf.d/20auto-upgrades", create_remote_dir=False, mode="644")
    else:
        files.file(name="Leave updates to the operator (unattended_upgrades = false)",
                   path="/etc/apt/apt.conf.d/20auto-upgrades", present=False)
    for site in cluster().sites:  # each site's PHP, files (and mesh) run as its own user
        user = site.user
        server.group(name=f"Add the {user} system group", group=user, system=True)
        server.user(
            name=f"Add the {user} system user",
            user=user,
            group=user,
            home=site.home,
            shell="/bin/sh",  # a shell is needed later for the mesh's forced rsync command
            system=True,
            create_home=True,
        )
