"""Web server tier (group `web`): nginx + PHP-FPM from Debian serving WordPress.

PHP is the release's own (8.4 on Debian 13, 8.2 on Debian 12), found on the host. A
dedicated PHP-FPM pool runs as the `wordpress` user on a unix socket; the nginx backend
vhost serves `<docroot>/current` (the release the WordPress tier switched to, resolved
to its real path so PHP and OPcache never mix releases) and the shared `wp-content`,
with pretty permalinks; it never runs PHP from uploads, denies dotfiles and
wp-config.php, and sends long cache headers for static assets.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.hardware import Cpus, Memory
from pyinfra.operations import apt, files

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys._util import host_fact, nginx_serving, nginx_site
from pyinfra_wordpress_lb.deploys.plan import Site, cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting
from pyinfra_wordpress_lb.operations import php, wordpress

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # wp-config.php's PWLB_CA_BUNDLE
LOGROTATE = "/etc/logrotate.d/wordpress-lb"  # the first site's (logrotate)

# Raised at boot on a web host with peers, gone once its sync mesh caught up (sync.py).
MESH_FLAG = "/run/wordpress-lb-mesh/catching-up"

SETTINGS = (
    Setting("docroot", "/var/www/wordpress",
            "the WordPress directory on every web host (releases, `current`, shared content, "
            "wp-config.php)"),
    Setting("web_port", 80, "port of the nginx backend vhost on each web host"),
    Setting("colocated_web_port", 90,
            "backend port on a host that is also `lb` (the balancer keeps the public port)"),
    Setting("drain", False,
            "`true` on a web host: every balancer stops sending it new requests (those it "
            "serves finish); remove the key to put it back"),
    Setting("served_by_header", "X-Served-By",
            "response header naming the web host that served; empty turns it off"),
    Setting("server_name", "_", "nginx `server_name` of the backend vhost"),
    Setting("php_max_children", None,
            "PHP-FPM `pm.max_children` of the pool; default from the host: one per 64 MB "
            "of memory beyond 512 MB (and beyond 1 GB more on a db host, 256 MB on a "
            "balancer), at most 8 per CPU, at least 2"),
    Setting("php_memory_limit", "256M", "PHP `memory_limit` of the pool"),
    Setting("upload_max_size", "64M",
            "largest upload: PHP `upload_max_filesize`/`post_max_size` and nginx "
            "`client_max_body_size`"),
    Setting("opcache_memory", 128, "OPcache memory in MB (for the first site)"),
    Setting("opcache_memory_per_site", 48,
            "OPcache memory in MB added for each further site (each has its own copy of "
            "WordPress's code: OPcache full, the other sites' pages render uncached, ~4x "
            "slower)"),
    Setting("opcache_revalidate_freq", 2,
            "seconds between OPcache checks of a file's timestamp (plugins and themes "
            "arrive by the mesh)"),
    Setting("static_expires", "365d", "`expires` of static assets and uploads"),
    Setting("fastcgi_read_timeout", "60s", "nginx `fastcgi_read_timeout`"),
)

def opcache(s, sites: int) -> dict:
    """OPcache's memory and script slots for this many sites (one set of WordPress's
    files each)."""
    more = max(sites, 1) - 1
    return {"opcache_memory": int(s.opcache_memory) + more * int(s.opcache_memory_per_site),
            "opcache_files": 20000 + more * 4000}


PACKAGES = [
    "nginx", "php-fpm", "php-cli", "php-mysql", "php-curl", "php-gd", "php-intl",
    "php-mbstring", "php-xml", "php-zip", "logrotate",
]


def max_children() -> int:
    """`php_max_children`, else sized to the host: a WordPress worker holds about 64 MB;
    what the system (and MariaDB, or the balancer, on the same host) needs stays free;
    more than 8 workers per CPU only queue."""
    me = here()
    if me.settings.php_max_children:
        return int(me.settings.php_max_children)
    memory, cpus = host_fact(host, Memory), host_fact(host, Cpus)
    if not memory or not cpus:
        return 8
    reserve = 512 + (1024 if "db" in me.roles else 0) + (256 if "lb" in me.roles else 0)
    return max(2, min(int(memory - reserve) // 64, 8 * int(cpus)))


def open_basedir(docroot: str, content: str) -> list[str]:
    """What a site's PHP may open: its own directory (releases, shared content,
    wp-config.php) and the tree the mesh mirrors if elsewhere, temporary files (PHP-FPM
    has a private /tmp), the CA bundle WordPress's HTTPS requests trust, PHP's sessions.
    Another site's files, and the rest of the system, stay out of its reach."""
    allowed = [f"{docroot}/"]
    if not content.startswith(f"{docroot}/"):
        allowed.append(f"{content}/")
    return allowed + ["/tmp/", CA_BUNDLE, "/var/lib/php/sessions/"]


@deploy("Web")
def web() -> None:
    """nginx and PHP-FPM serving `<docroot>/current` (after the WordPress tier put a
    release there); one PHP-FPM pool and vhost per site."""
    apt.packages(name="Install nginx and PHP-FPM", packages=PACKAGES, no_recommends=True)
    plan, me = cluster(), here()
    for site in plan.sites:
        _serve(site, plan, me, ini=site is plan.sites[0])
    nginx_serving()  # once every site's vhost is written
    if me.legacy:
        # nginx now serves <docroot>/current: the old single docroot goes (what it held
        # besides WordPress is kept in <docroot>/legacy-docroot).
        site = plan.site
        wordpress.retire_legacy(name="Retire the old single docroot", base=site.docroot,
                                user=site.user)


def fpm_socket(site: Site) -> str:
    """The unix socket of the site's own PHP-FPM pool."""
    return f"/run/php/{site.key}-fpm.sock"


def php_log(site: Site) -> str:
    """The site's PHP errors (rotated weekly)."""
    return f"/var/log/php-fpm-{site.key}.log"


def _serve(site: Site, plan, me, ini: bool) -> None:
    """One site on this web host: its PHP-FPM pool, running as its own user, and its
    nginx backend vhost (the one-site names for `main`)."""
    from pyinfra_wordpress_lb.deploys.sync import mesh_root  # (sync builds on this tier)

    s, user = me.settings, site.user
    main = site is plan.sites[0]
    php.fpm(
        name=f"Run the {user} PHP-FPM pool with OPcache",
        pool=site.key,
        pool_config=templates.render(
            "php/pool.conf.j2", pool=site.key, user=user, socket=fpm_socket(site),
            error_log=php_log(site),
            open_basedir=open_basedir(site.docroot, mesh_root(site=site)),
            max_children=max_children(), memory_limit=s.php_memory_limit,
            upload_max_size=s.upload_max_size,
        ),
        ini=templates.render(
            "php/wordpress.ini.j2", **opcache(s, len(plan.sites)),
            opcache_revalidate_freq=s.opcache_revalidate_freq,
        ) if ini else None,
        # A reload, one web host at a time: the balancers retry a request cut on one
        # backend on another, which must not be reloading at the same instant (as nginx).
        _serial=True,
    )

    files.template(name="Rotate the pool's PHP error log" + site.tag, src=templates.path(
        "logrotate/wordpress-lb.j2"), dest=logrotate(site), create_remote_dir=False,
        mode="644", php_log=php_log(site), keep=8, log_owner=user)

    nginx_site(
        site.key, "nginx/wordpress.conf.j2", "nginx backend vhost" + site.tag, serve=False,
        port=me.backend_port,
        # The first site answers whatever name the balancers send (as one site always
        # did); the others their own name only.
        default=main,
        served_by_header=s.served_by_header,
        server_name=s.server_name if main else " ".join(site.server_names),
        site_host=site.netloc,
        # A network's sub-sites (README, Sites): their paths, or their names.
        subdirectory=site.multisite == "subdirectory",
        subdomains=site.subdomains,
        hostname=site.hostname,
        port_suffix=site.port_suffix,
        base=site.docroot,
        content=site.content,
        upload_max_size=s.upload_max_size,
        trusted_proxies=list(plan.addresses("lb")),
        fpm_socket=fpm_socket(site),
        static_expires=s.static_expires,
        fastcgi_read_timeout=s.fastcgi_read_timeout,
        # (deploys/sync.py: raised at boot, gone once the mesh caught up.)
        catching_up_flag=mesh_flag(site) if len(plan.web) > 1 else None,
    )


def mesh_flag(site: Site) -> str:
    """Raised at boot on a web host with peers, gone once the site's mesh caught up: the
    site's backend vhost answers 503 meanwhile (deploys/sync.py). Each site's in a
    directory of its own, owned by its user (who removes the flag): in one shared
    directory, the boot gave it to one site's user and the others could not."""
    return site.variant(MESH_FLAG, MESH_FLAG.replace("/wordpress-lb-mesh/",
                                                     f"/wordpress-lb-mesh-{site.name}/"))


def logrotate(site: Site) -> str:
    """The logrotate file of the site's PHP log."""
    return site.variant(LOGROTATE)
