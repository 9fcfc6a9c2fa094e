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
from pyinfra_wordpress_lb.deploys import secrets, web
from pyinfra_wordpress_lb.deploys._util import any_failed, renamed
from pyinfra_wordpress_lb.deploys.plan import Site, cluster, here, mine
from pyinfra_wordpress_lb.deploys.settings import Setting
from pyinfra_wordpress_lb.operations import cluster as cluster_ops, wordpress
from pyinfra_wordpress_lb.operations.wordpress import release_id

WORDPRESS_VERSION = "7.1.0"
WORDPRESS_SHA1 = "e0ca593bc062f7a8c5a956ca44aff7375b0841e0"  # published by wordpress.org
CACHE_DIR = "/var/cache/wordpress-lb"
MESH_UNIT = "lsyncd-wordpress.service"

SETTINGS = (
    Setting("sites", None,
            "the cluster's sites, a list of tables: each a `name` (lower-case letters, "
            "digits, `-`) and the keys of README's \"Sites\" section; its files, "
            "database, account and Unix user follow its name (`/var/www/<name>`, "
            "`wp_<name>`, `wp-<name>`; no aliases; `main` is the one-site settings' site), "
            "its other keys default to the one-site settings. "
            "Default: one site, `main`, the one-site settings below"),
    Setting("site_url", None,
            "the site's public URL; default `https://<lb_vip>`, else `https://<first lb host>` "
            "(`http://` with `tls = \"off\"`)"),
    Setting("site_aliases", (),
            "other host names of the site (`example.com` beside `www.example.com`): the "
            "balancers answer them with a permanent redirect to `site_url`'s host, same path, "
            "over HTTPS too (the certificate covers them)"),
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
    Setting("multisite", "off",
            "a WordPress network (multisite) instead of one site: `subdirectory` (sub-sites "
            "at `<site_url>/<name>/`) or `subdomain` (at `<name>.<host>`: wildcard DNS, and "
            "a certificate covering `*.<host>`: `self-signed` or `files`, not `acme`); the "
            "network is installed with the site (or added to an installed one), sub-sites "
            "are made in Network Admin. `off`: one site"),
)
AUTO_UPDATES = ("off", "translations", "chosen", "all")
MULTISITE = ("off", "subdirectory", "subdomain")

def switched_anywhere() -> bool:
    """Whether the web hosts switched releases in this run: the plan says which hosts
    serve another release than the wanted one, and they switch when no web host failed
    (ask once they all ran)."""
    plan = cluster()
    return any(plan.switch_of(site).hosts for site in plan.sites) and cluster_intact()


def switched(site: Site) -> bool:
    """Whether the web hosts switched this site's release in this run."""
    return bool(cluster().switch_of(site).hosts) and cluster_intact()


def cluster_intact() -> bool:
    """No web host has failed in this run so far. A release switch is the cluster's
    decision: every web host switches (each has the release unpacked and verified,
    having come this far) or none does; the database upgrade follows only when every
    web host switched. A web host that failed is left out of the balancers' pool."""
    return not any_failed("web")


def wp_config(site: Site) -> HiddenValue:
    """wp-config.php, rendered on the controller with the secrets in it."""
    plan = cluster()
    return HiddenValue(templates.render(
        "wordpress/wp-config.php.j2",
        user=site.user,
        db_name=site.db_name,
        db_user=site.db_user,
        db_password=secrets.raw(site.secret("db_password")),
        db_host=plan.db_endpoint,
        salts=[(name.removeprefix("wp_").upper(), secrets.raw(site.secret(name)))
               for name in secrets.WP_SALT_NAMES],
        table_prefix=site.table_prefix,
        trusted_proxies=list(plan.addresses("lb")),
        site_url=site.url,
        multisite=site.multisite,
        site_host=site.hostname,
        connect_to=dict(plan.connect_to),
        content_dir=site.content,
        base=site.docroot,
        auto_updates=site.auto_updates,
        ca_bundle=web.CA_BUNDLE,
    ))


@deploy("WordPress")
def serve_release() -> None:
    """The release each site serves on this web host, and its configuration; then the
    switches (each site's, every web host or none)."""
    plan = cluster()
    if here().legacy:
        # The old layout: the mesh mirrored the whole docroot. Stopped while the release
        # layout is made beside it (the sync tier starts it again, on the shared tree).
        systemd.service(name="Stop the mesh while the docroot moves to releases",
                        service=MESH_UNIT, running=False)
        wordpress.adopt_legacy(name="Copy the old docroot's wp-content to the shared tree",
                               base=plan.site.docroot, user=plan.site.user)
    fetched: set[str] = set()
    for site in plan.sites:
        _unpack(site, fetch=site.release.id not in fetched)  # each archive once
        fetched.add(site.release.id)
    # A web host that died since its last command would look alive (its answers are
    # kept until a command runs on it): each answers afresh before the cluster decides.
    cluster_ops.roll_call(name="Every web host answers before the switch",
                          reason="the release switch")
    switched = [_switch(site) for site in plan.sites]
    # OPcache never mixes releases: PHP-FPM's workers finish, then start on the new one.
    # (nginx needs no reload: it finds core through `current` on every request.)
    server.shell(name="Reload PHP-FPM gracefully for the new release",
                 commands=["units=$(systemctl list-units --type=service --state=active "
                           "--no-legend --plain 'php*-fpm.service' | awk '{print $1}'); "
                           '[ -z "$units" ] || systemctl reload $units'],
                 _if=lambda: any(op.did_change() for op in switched),
                 _serial=True)  # one web host at a time (see web.py)


def _unpack(site: Site, fetch: bool = True) -> None:
    """A site's release downloaded (or uploaded), verified and unpacked beside the ones
    it has; its wp-config.php and shared content."""
    user, root, release = site.user, site.docroot, site.release
    version, checksum, tag = release.version, release.checksum, site.tag
    archive = f"{CACHE_DIR}/wordpress-{release.id}.tar.gz"
    source = archive_of(site)
    if fetch:
        files.directory(name="Create the archive cache", path=CACHE_DIR, mode="755")
        if source:
            files.put(name=f"Upload the WordPress {version} archive" + tag, src=source,
                      dest=archive, mode="644")
        else:
            files.download(name=f"Download the WordPress {version} archive" + tag,
                           src=release.url, dest=archive, mode="644")
    files.directory(name="Create the WordPress directory" + tag, path=root, mode="755")
    files.directory(name="Create the releases directory" + tag, path=f"{root}/releases",
                    mode="755")
    wordpress.release(
        name=f"Unpack the verified WordPress {version} beside the served release" + tag,
        archive=archive, checksum=checksum, version=version, base=root, user=user,
    )
    wordpress.config(
        name="Write wp-config.php (secrets; never shown)" + tag,
        path=f"{root}/wp-config.php",
        content=wp_config(site),
        user=user,
    )
    files.directory(name="Create the uploads directory" + tag,
                    path=f"{site.content}/uploads", user=user, group=user,
                    mode="755")
    mu_plugins = f"{site.content}/mu-plugins"
    files.directory(name="Create the must-use plugins directory" + tag, path=mu_plugins,
                    user=user, group=user, mode="755")
    files.template(name="Install the must-use plugin for WordPress behind the balancers" + tag,
                   src=templates.path("wordpress/wordpress-lb.php.j2"),
                   dest=f"{mu_plugins}/wordpress-lb.php", create_remote_dir=False,
                   user=user, group=user, mode="644")


def archive_of(site: Site) -> str | None:
    """The archive on the controller this host uploads for a site's release: the site's
    own (its entry's `wordpress_archive`), else this host's `wordpress_archive` when the
    site's release is the one this host's settings name; else none (downloaded)."""
    if site.release.archive:
        return site.release.archive
    s = mine()
    own = release_id(str(s.wordpress_version), str(s.wordpress_checksum))
    return s.wordpress_archive if site.release.id == own else None


def _switch(site: Site):
    """The site's switch to its release: only when every web host got this far (see
    cluster_intact)."""
    release = site.release
    return wordpress.current(
        name=f"Serve WordPress {release.version} (one atomic switch)" + site.tag,
        base=site.docroot, version=release.version, checksum=release.checksum,
        keep=release.keep, _if=cluster_intact,
    )


@deploy("WordPress install")
def install_site() -> None:
    """Install WordPress into the database, from the first web host only."""
    plan = cluster()
    if host.name != plan.web[0]:
        return
    for site in plan.sites:
        _install(site)


def _install(site: Site) -> None:
    user, tag, docroot = site.user, site.tag, f"{site.docroot}/current"
    password = secrets.secret(site.secret("admin_password"))
    wordpress.stamp_ahead(password, docroot)  # (its digest, ready when compared)
    wordpress.install(
        name="Install WordPress unattended (once per database)" + tag,
        docroot=docroot,
        url=site.url,
        title=site.title,
        admin_user=site.admin_user,
        admin_email=site.admin_email,
        admin_password=password,
        user=user,
    )
    wordpress.upgrade_database(
        name="Upgrade the database when the served release needs it (once per database)" + tag,
        docroot=docroot,
        url=site.url,
        user=user,
        _if=cluster_intact,  # every web host serves the new code
    )
    wordpress.admin_password(
        name="Apply a changed admin_password secret" + tag,
        docroot=docroot,
        url=site.url,
        admin_user=site.admin_user,
        password=password,
        user=user,
    )


release = renamed(serve_release, "release")  # the names before 0.2
install = renamed(install_site, "install")
