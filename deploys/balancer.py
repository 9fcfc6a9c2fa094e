"""Load-balancer tier (group `lb`): nginx in front of every web host's backend vhost.

An upstream of every web host's private address and backend port (`least_conn` by
default), passive health checks, a short connect timeout, retries to the next backend
for requests that are safe to retry, keepalive connections to the backends. The
balancer is the edge: it replaces any X-Forwarded-* header a client sends, and the web
hosts trust those headers from the balancers' addresses only.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import apt, files, server

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import tls, wordpress
from pyinfra_wordpress_lb.deploys._util import TIDY, failed_names, host_fact, nginx_site, renamed
from pyinfra_wordpress_lb.deploys.plan import Site, cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting
from pyinfra_wordpress_lb.operations import http
from pyinfra_wordpress_lb.operations import nginx as nginx_ops

METHODS = ("least_conn", "round_robin", "ip_hash")
HEALTH_PATH = "/pwlb-health"  # local only: keepalived's check that this nginx serves
CACHE_DIR = "/var/cache/nginx/wordpress-lb"
SITE = "wordpress-lb"  # the balancer's nginx site (/etc/nginx/sites-available/wordpress-lb)
PURGE = "/usr/local/sbin/wordpress-lb-purge-cache"
PACKAGES = ["nginx"]

SETTINGS = (
    Setting("lb_port", 80, "the site's public port on the `lb` hosts"),
    Setting("lb_method", "least_conn", "how requests are spread: least_conn, round_robin, ip_hash"),
    Setting("lb_max_fails", 1, "failed attempts before a backend is rested (`max_fails`)"),
    Setting("lb_fail_timeout", "10s", "how long a failed backend rests (`fail_timeout`)"),
    Setting("lb_connect_timeout", "1s", "`proxy_connect_timeout` to a backend"),
    Setting("lb_read_timeout", "60s", "`proxy_read_timeout` from a backend"),
    Setting("lb_next_upstream", "error timeout http_502 http_503 http_504",
            "when a request goes to the next backend (`proxy_next_upstream`; never for a "
            "POST once sent); empty: never (the tutorial's behaviour)"),
    Setting("lb_next_upstream_tries", 3, "at most this many backends per request"),
    Setting("lb_next_upstream_timeout", "10s", "at most this long trying backends per request"),
    Setting("lb_keepalive", 16,
            "idle keepalive connections to the backends per worker; 0: none (the tutorial's)"),
    Setting("lb_server_name", "_", "nginx `server_name` of the balancer"),
    Setting("page_cache_ttl", 10,
            "seconds anonymous pages stay in the balancers' page cache (a new post reaches "
            "readers within it); 0 turns the cache off"),
    Setting("page_cache_max_size", "1g", "largest size of each balancer's page cache on disk"),
    Setting("lb_worker_connections", 4096,
            "nginx `worker_connections` on the balancers (open files: twice that)"),
    Setting("login_rate", "10r/m",
            "requests to wp-login.php each client address may make (nginx `limit_req` "
            "rate); more get 429"),
    Setting("login_burst", 10, "requests to wp-login.php a client may make at once beyond "
            "login_rate before the limit applies"),
    Setting("xmlrpc", False,
            "serve xmlrpc.php (the old remote-publishing API, a favourite of brute-force "
            "attacks); off: 403"),
    Setting("xmlrpc_rate", "10r/m", "requests to xmlrpc.php each client address may make "
            "(with `xmlrpc = true`; burst: login_burst)"),
    Setting("lb_show_backend", False,
            "pass the backends' `served_by_header` (the backend's host name) on to clients; "
            "off: it stays between balancer and backends"),
    Setting("lb_backends", None,
            "`address:port` of each backend; default: every `web` host's backend vhost "
            "(set it to put the balancer alone in front of servers you run yourself)"),
)


def http2_directive() -> bool:
    """nginx 1.25.1 replaced `listen ... http2` with `http2 on`: Debian 13 ships 1.26,
    Debian 12 ships 1.22 (the release is known before nginx is installed)."""
    return (host_fact(host, LinuxDistribution).get("major") or 13) >= 13


def cache_dir(site: Site) -> str:
    """A site's page cache on the balancers (the first site's: `CACHE_DIR`)."""
    return site.variant(CACHE_DIR)


def _zones(site: Site) -> str:
    return site.variant("", "_" + site.name.replace("-", "_"))


def _served(site: Site, first: bool) -> dict:
    """What the balancer's nginx site says of one site: its names, certificate, HSTS,
    its own page cache and login limits."""
    return {"name": site.name, "default": first, "netloc": site.netloc,
            "hostname": site.hostname, "aliases": list(site.aliases),
            "server_names": list(site.server_names),
            # A subdomain network's sub-sites move to HTTPS by their own names.
            "redirect_host": ("$host" + site.port_suffix) if site.subdomains
            else site.netloc,
            "subdirectory": site.multisite == "subdirectory",
            "cert": tls.cert_path(site), "key": tls.key_path(site),
            "hsts_max_age": site.tls.hsts_max_age,
            "cache_dir": cache_dir(site), "cache_zone": "wordpress_lb_pages" + _zones(site),
            "login_zone": "wordpress_lb_login" + _zones(site),
            "xmlrpc_zone": "wordpress_lb_xmlrpc" + _zones(site)}


def vhost(what: str, held_back: tuple[str, ...]) -> None:
    """The balancer's nginx site, with these web hosts held back (not sent new requests):
    one server per site (the first answers any other name), one upstream for all."""
    plan, me = cluster(), here()
    s, site = me.settings, plan.site
    acme = any(each.tls.mode == "acme" for each in plan.sites)
    nginx_site(
        SITE, "nginx/balancer.conf.j2", what,
        sites=[_served(each, each is plan.sites[0]) for each in plan.sites],
        tls=site.tls.on,  # (validate: every site or none)
        https_port=s.lb_https_port,
        http2_directive=http2_directive(),
        dh_params=tls.DH_PARAMS,
        acme=acme,
        acme_webroot=tls.ACME_WEBROOT,
        acme_peers=[f"{n.address}:{s.lb_port}" for n in plan.group("lb")
                    if n.address != me.address] if acme else [],
        health_path=HEALTH_PATH,
        cache_ttl=int(s.page_cache_ttl or 0),
        cache_max_size=s.page_cache_max_size,
        method=s.lb_method,  # one of METHODS (deploys/validate.py)
        # Asked when the vhost is written: web hosts that failed by then stay out.
        backends=lambda: list(plan.upstream(failed_names(), held_back)),
        max_fails=s.lb_max_fails,
        fail_timeout=s.lb_fail_timeout,
        keepalive=int(s.lb_keepalive),
        port=s.lb_port,
        server_name=s.lb_server_name,
        upload_max_size=s.upload_max_size,
        connect_timeout=s.lb_connect_timeout,
        read_timeout=s.lb_read_timeout,
        next_upstream=s.lb_next_upstream,
        next_upstream_tries=s.lb_next_upstream_tries,
        next_upstream_timeout=s.lb_next_upstream_timeout,
        login_rate=s.login_rate,
        login_burst=int(s.login_burst),
        xmlrpc=bool(s.xmlrpc),
        xmlrpc_rate=s.xmlrpc_rate,
        unlimited=[str(n) for n in s.firewall_trusted],
        hide_backend=None if s.lb_show_backend else s.served_by_header,
    )


@deploy("Balancer")
def backups_first() -> None:
    """Before anything changes: a balancer vhost written without never-rested backups (by
    a version before them) gets them. This run's reloads of the backends may each fail a
    request, and each failure rests a backend for `lb_fail_timeout`: two within that time
    and a balancer without backups has none left, "no live upstreams" for every request
    (seen moving a cluster of that version to release directories). The balancer's vhost
    is written in full later in the run."""
    added = nginx_ops.upstream_backups(
        name="Give the backends never-rested backups before they change", site=SITE)
    nginx_ops.reloaded(name="Reload nginx: the backends' backups", _if=added.did_change,
                       _serial=True)


@deploy("Balancer")
def balancer() -> None:
    s = here().settings
    apt.packages(name="Install nginx", packages=PACKAGES, no_recommends=True)
    tls.certificates()
    # Sized for a balancer: each proxied connection holds two file descriptors.
    connections = int(s.lb_worker_connections)
    files.line(name="Let nginx's workers open enough files",
               path="/etc/nginx/nginx.conf", line=r"^worker_rlimit_nofile .*",
               replace=f"worker_rlimit_nofile {2 * connections};")
    files.line(name="Let each nginx worker hold enough connections",
               path="/etc/nginx/nginx.conf", line=r"^\s*worker_connections .*",
               replace=f"    worker_connections {connections};")
    plan = cluster()
    for site in plan.sites:
        files.directory(name="Create the page cache's directory" + site.tag,
                        path=cache_dir(site), user="www-data", group="www-data", mode="700")
    files.template(name="Install the page cache's purge command", src=templates.path(
        "sbin/wordpress-lb-purge-cache.j2"), dest=PURGE, create_remote_dir=False, mode="755",
        ttl=int(s.page_cache_ttl or 0), cache_dir=CACHE_DIR,
        others={site.name: cache_dir(site) for site in plan.sites if cache_dir(site) != CACHE_DIR},
        jinja_env_kwargs=TIDY)
    # Web hosts new to a serving cluster get no request until verified (`admit_new_web_hosts`).
    vhost("balancer vhost", held_back=cluster().newcomers)
    # After every web host's tiers (deploy.py's first barrier): a release switch shows
    # at once, never a cached file of the release that was served before.
    for site in plan.sites:
        server.shell(name="Empty the page cache: the web hosts switched releases" + site.tag,
                     commands=[PURGE if len(plan.sites) == 1 else f"{PURGE} {site.name}"],
                     _if=lambda site=site: wordpress.switched(site))


@deploy("Balancer")
def admit_new_web_hosts() -> None:
    """Web hosts new to the cluster, once they have the shared content: each answers this
    balancer directly, then joins the pool."""
    plan = cluster()
    if not plan.newcomers or plan.lb_backends:
        return
    for name in plan.newcomers:
        newcomer = plan.node(name)
        http.responds(name=f"New web host {name} serves the site",
                      url=f"http://{newcomer.backend}/", host_header=plan.site.netloc,
                      title=plan.site.title,
                      what=f"the new web host {name} ({newcomer.backend})",
                      # A newcomer that failed stays out of the pool (see `Cluster.upstream`).
                      _if=lambda name=name: name not in failed_names())
    vhost("balancer vhost with the new web hosts in the pool", held_back=())


admit = renamed(admit_new_web_hosts, "admit")  # the name before 0.2
