"""WordPress tier (group `web`): verified releases side by side, the one served, its
configuration, the unattended install and the database upgrade a new release needs.

On every web host, under `docroot`:

    releases/<version>-<checksum>/   core, one directory per release (root-owned)
    current -> releases/...          what nginx and PHP serve; switched by one rename
    shared/wp-content/               what WordPress writes at run time (uploads, plugins,
                                     themes, languages), the only tree the mesh syncs
    wp-config.php                    rendered per host (secrets; never synced)

A new release is unpacked and verified beside the served one, then every web host
switches at once (one atomic rename each) and PHP-FPM reloads gracefully; the database
upgrade runs once, after every host serves the new code. Setting the previous version
back switches back at once (its directory is kept: `keep_releases`). A host with the
single-docroot layout of earlier versions moves to this one on its next run.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import files, server, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import common, database, secrets, web
from pyinfra_wordpress_lb.deploys._util import (
    any_failed, changed, group_addresses, group_hosts, host_fact, private_address, renamed,
    site_connect_to, site_url,
)
from pyinfra_wordpress_lb.deploys.settings import Setting, defaults, value
from pyinfra_wordpress_lb.facts.wordpress import Releases
from pyinfra_wordpress_lb.operations import wordpress

WORDPRESS_VERSION = "7.1.0"
WORDPRESS_SHA1 = "e0ca593bc062f7a8c5a956ca44aff7375b0841e0"  # published by wordpress.org
CACHE_DIR = "/var/cache/wordpress-lb"
MESH_UNIT = "lsyncd-wordpress.service"

SETTINGS = (
    Setting("site_url", None,
            "the site's public URL; default `https://<lb_vip>`, else `https://<first lb host>` "
            "(`http://` with `tls = \"off\"`)"),
    Setting("site_title", "WordPress on pyinfra", "site title, set by the unattended install"),
    Setting("admin_user", "admin", "the first WordPress administrator"),
    Setting("admin_email", "admin@example.com", "the administrator's email address"),
    Setting("wordpress_version", WORDPRESS_VERSION,
            "the WordPress release to serve; changing it (with its checksum) upgrades or rolls "
            "back the cluster"),
    Setting("wordpress_checksum", f"sha1:{WORDPRESS_SHA1}",
            "checksum the release archive must have: `sha1:<hex>` or `sha256:<hex>`"),
    Setting("wordpress_url", None,
            "where web hosts download the archive; default "
            "`https://wordpress.org/wordpress-<version>.tar.gz`"),
    Setting("wordpress_archive", None,
            "a release archive on the controller to upload instead of downloading "
            "(air-gapped sites); wins over `wordpress_url`"),
    Setting("keep_releases", 2,
            "releases kept on each web host, the served one included (the previous one for "
            "a rollback without download)"),
    Setting("table_prefix", "wp_", "WordPress table prefix"),
    Setting("auto_updates", "chosen",
            "what WordPress may update by itself (from WP-Cron, on one web host; the mesh "
            "carries the files to the others): `off` nothing; `translations`; `chosen` "
            "translations and the plugins and themes an administrator switched auto-updates "
            "on for (WordPress's own default: security fixes arrive for what was chosen); "
            "`all` translations and every plugin and theme. Core never: it is the deploy's"),
)
AUTO_UPDATES = ("off", "translations", "chosen", "all")

ALL_SETTINGS = (common.SETTINGS, database.SETTINGS, web.SETTINGS, SETTINGS)


# Each web host's release switch of this run: the balancers empty their page cache when
# any of them switched (cached copies of the other release's files go at once).
SWITCHES: dict = {}


def switched_anywhere() -> bool:
    """Whether a web host switched releases in this run (ask once they all ran; a host
    that failed before its switch did not switch)."""
    return any(changed(op) for op in SWITCHES.values())


def cluster_intact() -> bool:
    """No web host has failed in this run so far. A release switch is the cluster's
    decision: every web host switches (each has the release unpacked and verified,
    having come this far) or none does; the database upgrade follows only when every
    web host switched. A web host that failed is left out of the balancers' pool."""
    return not any_failed("web")


def base() -> str:
    return host.data.docroot.rstrip("/")


def db_host() -> str:
    dbs = group_hosts("db")
    if not dbs:
        raise ValueError("no host in group `db`: the web tier needs a database host")
    port = int(value(dbs[0], "db_port"))  # the db host's port, whatever this host's data says
    address = private_address(dbs[0])
    return address if port == 3306 else f"{address}:{port}"


def wp_config() -> HiddenValue:
    """wp-config.php, rendered on the controller with the secrets in it."""
    return HiddenValue(templates.render(
        "wordpress/wp-config.php.j2",
        user=host.data.wordpress_user,
        db_name=host.data.db_name,
        db_user=host.data.db_user,
        db_password=secrets.raw("db_password"),
        db_host=db_host(),
        salts=[(name.removeprefix("wp_").upper(), secrets.raw(name))
               for name in secrets.WP_SALT_NAMES],
        table_prefix=host.data.table_prefix,
        trusted_proxies=group_addresses("lb"),
        site_url=site_url(),
        connect_to=site_connect_to(),
        content_dir=f"{base()}/{wordpress.SHARED_CONTENT}",
        base=base(),
        auto_updates=host.data.auto_updates,
    ))


def layout(target=None) -> dict:
    """What a web host has under its docroot when the deploy is loaded (its releases, the
    one served, whether it still has the old single-docroot layout)."""
    target = host if target is None else target
    docroot = str(target.data.get("docroot") or "/var/www/wordpress").rstrip("/")
    return host_fact(target, Releases, base=docroot)


@deploy("WordPress", data_defaults=defaults(*ALL_SETTINGS))
def serve_release() -> None:
    """The release served by this web host, and its configuration."""
    user = host.data.wordpress_user
    root = base()
    version = host.data.wordpress_version
    checksum = host.data.wordpress_checksum
    if layout()["legacy"]:
        # The old layout: the mesh mirrored the whole docroot. Stopped while the release
        # layout is made beside it (the sync tier starts it again, on the shared tree).
        systemd.service(name="Stop the mesh while the docroot moves to releases",
                        service=MESH_UNIT, running=False)
        wordpress.adopt_legacy(name="Copy the old docroot's wp-content to the shared tree",
                               base=root, user=user)

    # The release: downloaded (or uploaded), verified, unpacked beside the others.
    files.directory(name="Create the archive cache", path=CACHE_DIR, mode="755")
    archive = f"{CACHE_DIR}/wordpress-{wordpress.release_id(version, checksum)}.tar.gz"
    if host.data.get("wordpress_archive"):
        files.put(name=f"Upload the WordPress {version} archive", src=host.data.wordpress_archive,
                  dest=archive, mode="644")
    else:
        files.download(
            name=f"Download the WordPress {version} archive",
            src=host.data.get("wordpress_url")
            or f"https://wordpress.org/wordpress-{version}.tar.gz",
            dest=archive,
            mode="644",
        )
    files.directory(name="Create the WordPress directory", path=root, mode="755")
    files.directory(name="Create the releases directory", path=f"{root}/releases", mode="755")
    wordpress.release(
        name=f"Unpack the verified WordPress {version} beside the served release",
        archive=archive, checksum=checksum, version=version, base=root, user=user,
    )
    wordpress.config(
        name="Write wp-config.php (secrets; never shown)",
        path=f"{root}/wp-config.php",
        content=wp_config(),
        user=user,
    )
    files.directory(name="Create the uploads directory",
                    path=f"{root}/{wordpress.SHARED_CONTENT}/uploads", user=user, group=user,
                    mode="755")
    mu_plugins = f"{root}/{wordpress.SHARED_CONTENT}/mu-plugins"
    files.directory(name="Create the must-use plugins directory", path=mu_plugins, user=user,
                    group=user, mode="755")
    files.template(name="Install the must-use plugin for WordPress behind the balancers",
                   src=templates.path("wordpress/wordpress-lb.php.j2"),
                   dest=f"{mu_plugins}/wordpress-lb.php", create_remote_dir=False,
                   user=user, group=user, mode="644")
    # Only when every web host got this far (see cluster_intact).
    switched = wordpress.current(
        name=f"Serve WordPress {version} (one atomic switch)",
        base=root, version=version, checksum=checksum, keep=int(host.data.keep_releases),
        _if=cluster_intact,
    )
    SWITCHES[host.name] = switched
    # OPcache never mixes releases: PHP-FPM's workers finish, then start on the new one.
    # (nginx needs no reload: it finds core through `current` on every request.)
    server.shell(name="Reload PHP-FPM gracefully for the new release",
                 commands=["units=$(systemctl list-units --type=service --state=active "
                           "--no-legend --plain 'php*-fpm.service' | awk '{print $1}'); "
                           '[ -z "$units" ] || systemctl reload $units'],
                 _if=switched.did_change)


@deploy("WordPress install", data_defaults=defaults(*ALL_SETTINGS))
def install_site() -> None:
    """Install WordPress into the database, from the first web host only."""
    if host not in group_hosts("web")[:1]:
        return
    wordpress.install(
        name="Install WordPress unattended (once per database)",
        docroot=f"{base()}/current",
        url=site_url(),
        title=host.data.site_title,
        admin_user=host.data.admin_user,
        admin_email=host.data.admin_email,
        admin_password=secrets.secret("admin_password"),
        user=host.data.wordpress_user,
    )
    wordpress.upgrade_database(
        name="Upgrade the database when the served release needs it (once per database)",
        docroot=f"{base()}/current",
        url=site_url(),
        user=host.data.wordpress_user,
        _if=cluster_intact,  # every web host serves the new code
    )
    wordpress.admin_password(
        name="Apply a changed admin_password secret",
        docroot=f"{base()}/current",
        url=site_url(),
        admin_user=host.data.admin_user,
        password=secrets.secret("admin_password"),
        user=host.data.wordpress_user,
    )


release = renamed(serve_release, "release")  # the names before 0.2
install = renamed(install_site, "install")
