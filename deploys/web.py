"""Web tier (group `web`): nginx + PHP-FPM from Debian, a verified WordPress release.

PHP is the release's own (8.4 on Debian 13, 8.2 on Debian 12), found on the host. A
dedicated PHP-FPM pool runs as the `wordpress` user on a unix socket; the nginx backend
vhost serves WordPress with pretty permalinks, never runs PHP from uploads, denies
dotfiles and wp-config.php, and sends long cache headers for static assets.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import apt, files

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import common, database, secrets
from pyinfra_wordpress_lb.deploys._util import (
    backend_port, group_addresses, group_hosts, nginx_site, private_address, site_connect_to,
    site_url,
)
from pyinfra_wordpress_lb.deploys.settings import Setting, defaults
from pyinfra_wordpress_lb.operations import php, wordpress

WORDPRESS_VERSION = "7.1.0"
WORDPRESS_SHA1 = "e0ca593bc062f7a8c5a956ca44aff7375b0841e0"  # published by wordpress.org
FPM_SOCKET = "/run/php/wordpress-fpm.sock"
CACHE_DIR = "/var/cache/wordpress-lb"

SETTINGS = (
    Setting("docroot", "/var/www/wordpress", "the WordPress directory on every web host"),
    Setting("web_port", 80, "port of the nginx backend vhost on each web host"),
    Setting("colocated_web_port", 90,
            "backend port on a host that is also `lb` (the balancer keeps the public port)"),
    Setting("served_by_header", "X-Served-By",
            "response header naming the web host that served; empty turns it off"),
    Setting("server_name", "_", "nginx `server_name` of the backend vhost"),
    Setting("site_url", None,
            "the site's public URL; default `http://<first lb host>` (the test bed sets "
            "`http://127.0.0.1:<port>`)"),
    Setting("site_title", "WordPress on pyinfra", "site title, set by the unattended install"),
    Setting("admin_user", "admin", "the first WordPress administrator"),
    Setting("admin_email", "admin@example.com", "the administrator's email address"),
    Setting("wordpress_version", WORDPRESS_VERSION, "the WordPress release to install"),
    Setting("wordpress_checksum", f"sha1:{WORDPRESS_SHA1}",
            "checksum the release archive must have: `sha1:<hex>` or `sha256:<hex>`"),
    Setting("wordpress_url", None,
            "where web hosts download the archive; default "
            "`https://wordpress.org/wordpress-<version>.tar.gz`"),
    Setting("wordpress_archive", None,
            "a release archive on the controller to upload instead of downloading "
            "(air-gapped sites); wins over `wordpress_url`"),
    Setting("table_prefix", "wp_", "WordPress table prefix"),
    Setting("php_max_children", 8, "PHP-FPM `pm.max_children` of the pool"),
    Setting("php_memory_limit", "256M", "PHP `memory_limit` of the pool"),
    Setting("upload_max_size", "64M",
            "largest upload: PHP `upload_max_filesize`/`post_max_size` and nginx "
            "`client_max_body_size`"),
    Setting("opcache_memory", 128, "OPcache memory in MB"),
    Setting("opcache_revalidate_freq", 2,
            "seconds between OPcache checks of a file's timestamp (files arrive by sync)"),
    Setting("static_expires", "365d", "`expires` of static assets and uploads"),
    Setting("fastcgi_read_timeout", "60s", "nginx `fastcgi_read_timeout`"),
)

PACKAGES = [
    "nginx", "php-fpm", "php-cli", "php-mysql", "php-curl", "php-gd", "php-intl",
    "php-mbstring", "php-xml", "php-zip",
]


def db_host() -> str:
    dbs = group_hosts("db")
    if not dbs:
        raise ValueError("no host in group `db`: the web tier needs a database host")
    port = host.data.db_port
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
    ))


@deploy("Web", data_defaults=defaults(common.SETTINGS, database.SETTINGS, SETTINGS))
def web() -> None:
    apt.packages(name="Install nginx and PHP-FPM", packages=PACKAGES, no_recommends=True)
    user = host.data.wordpress_user
    docroot = host.data.docroot.rstrip("/")

    php.fpm(
        name=f"Run the {user} PHP-FPM pool with OPcache",
        pool="wordpress",
        pool_config=templates.render(
            "php/pool.conf.j2", pool="wordpress", user=user, socket=FPM_SOCKET,
            max_children=host.data.php_max_children, memory_limit=host.data.php_memory_limit,
            upload_max_size=host.data.upload_max_size,
        ),
        ini=templates.render(
            "php/wordpress.ini.j2", opcache_memory=host.data.opcache_memory,
            opcache_revalidate_freq=host.data.opcache_revalidate_freq,
        ),
    )

    # The release: downloaded (or uploaded), verified, then put into the docroot.
    files.directory(name="Create the archive cache", path=CACHE_DIR, mode="755")
    version = host.data.wordpress_version
    checksum = host.data.wordpress_checksum
    digest = checksum.partition(":")[2][:12]
    archive = f"{CACHE_DIR}/wordpress-{version}-{digest}.tar.gz"
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
    files.directory(name="Create the docroot", path=docroot, user=user, group=user, mode="755")
    wordpress.release(
        name=f"Put the verified WordPress {version} into the docroot",
        archive=archive, checksum=checksum, version=version, docroot=docroot, user=user,
    )
    wordpress.config(
        name="Write wp-config.php (secrets; never shown)",
        path=f"{docroot}/wp-config.php",
        content=wp_config(),
        user=user,
    )
    mu_plugins = f"{docroot}/wp-content/mu-plugins"
    files.directory(name="Create the must-use plugins directory", path=mu_plugins, user=user,
                    group=user, mode="755")
    files.template(name="Install the must-use plugin for WordPress behind the balancers",
                   src=templates.path("wordpress/wordpress-lb.php.j2"),
                   dest=f"{mu_plugins}/wordpress-lb.php", user=user, group=user, mode="644")

    nginx_site(
        "wordpress", "nginx/wordpress.conf.j2", "nginx backend vhost",
        port=backend_port(),
        served_by_header=host.data.served_by_header,
        server_name=host.data.server_name,
        site_host=urlsplit(site_url()).netloc,
        docroot=docroot,
        upload_max_size=host.data.upload_max_size,
        trusted_proxies=group_addresses("lb"),
        fpm_socket=FPM_SOCKET,
        static_expires=host.data.static_expires,
        fastcgi_read_timeout=host.data.fastcgi_read_timeout,
    )


@deploy("WordPress install", data_defaults=defaults(common.SETTINGS, database.SETTINGS, SETTINGS))
def install() -> None:
    """Install WordPress into the database, from the first web host only."""
    if host not in group_hosts("web")[:1]:
        return
    wordpress.install(
        name="Install WordPress unattended (once per database)",
        docroot=host.data.docroot.rstrip("/"),
        url=site_url(),
        title=host.data.site_title,
        admin_user=host.data.admin_user,
        admin_email=host.data.admin_email,
        admin_password=secrets.secret("admin_password"),
        user=host.data.wordpress_user,
    )
