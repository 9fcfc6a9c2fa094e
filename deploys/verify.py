"""Verify (on `lb` hosts, else on web hosts): the site answers through each balancer, on
the shared address, and from each backend directly; HTTP moves to HTTPS. Certificates
are checked against what the host trusts. Changes nothing; fails the deploy with a
clear message.

A run that changed nothing on any host (a re-run, a no-op) checks the first site as
any run does, and each further site once, through one balancer in turn, past its page
cache, at `/?pwlb-verify`: the site's must-use plugin answers its title once WordPress
has loaded its configuration, database and options, before plugins and the theme (TLS
with the site's certificate, the balancer's way to a backend, the site's PHP pool and
database, in a few ms), and HTTP's move to HTTPS there. Without balancers, each
further site is asked of one backend in turn. Each page a backend renders costs ~50 ms
of its CPU: with 20 sites, checking each on every backend, balancer and the shared
address was ~80 renders, most of a no-op's time."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from pyinfra_wordpress_lb.deploys import secrets
from pyinfra_wordpress_lb.deploys._util import failed_names, quiet
from pyinfra_wordpress_lb.deploys.plan import Site, cluster, here as this_node
from pyinfra_wordpress_lb.operations import http


@deploy("Verify")
def verify() -> None:
    plan, node = cluster(), this_node()
    s = node.settings
    # From the balancers; from the web hosts when there is no balancer.
    if "lb" not in node.roles and (plan.lb or "web" not in node.roles):
        return
    for index, one in enumerate(plan.sites):
        _site(one, plan, node, s, backends=checks_backends(plan, index, node), index=index)


def checks_backends(plan, index: int, node) -> bool:
    """Whether this host asks each backend directly for the site at `index` of the plan:
    the first site from every balancer (each one's way to each backend), each further
    site from one balancer in turn (a page rendered per backend, not per balancer)."""
    return index == 0 or "lb" not in node.roles or plan.lb[index % len(plan.lb)] == node.name


def _site(one: Site, plan, node, s, backends: bool = True, index: int = 0) -> None:
    """One site answers from each backend (if `backends`), through this balancer, on
    the shared address (a further site in a quiet run: see the module's note)."""
    site, name, title, tag = one.url, one.netloc, one.title, one.tag
    web_hosts = {} if plan.lb_backends else {n.backend: n.name for n in plan.group("web")}
    checked = [b for b in plan.backends()
               # out of the pool (see `Cluster.upstream`): nothing to check
               if not (b in web_hosts and web_hosts[b] in plan.unreachable)]
    for turn, backend in enumerate(checked):
        # Quiet, with no balancer to check through: a further site from one backend.
        alone = "lb" not in node.roles and turn == index % len(checked)
        http.responds(
            name=f"Backend {backend} serves the site" + tag,
            url=f"http://{backend}/", host_header=name, title=title,
            what=f"the backend {backend}",
            # A web host that failed in this run is out of the pool: nothing to check.
            # (Asked on every balancer, skipped where another checks it: pyinfra orders
            # operations by where they are called, the same on every host.)
            _if=lambda web=web_hosts.get(backend), alone=alone: (
                backends and (web is None or web not in failed_names())
                and (index == 0 or alone or not quiet())),
        )
    if "lb" not in node.roles:
        return

    def mine() -> bool:  # this balancer checks this site in this run: its turn, or not quiet
        return index == 0 or backends or not quiet()

    tls_on = one.tls.on
    here = (f"127.0.0.1:{s.lb_https_port}" if tls_on
            else f"127.0.0.1:{s.lb_port}")
    first = host.name == plan.lb[0]
    vip = plan.vip
    summary = (
        f"The site answers: {site} (admin: {site}/wp-admin/, user {one.admin_user!r}; "
        f"password: `admin_password` in {secrets.secrets_path()})"
        + (f"; its certificate's CA, for clients to trust: {secrets.beside('.ca.crt')}"
           if one.tls.mode == "self-signed" else "")
    )
    http.responds(
        name="The site answers through this balancer" + tag,
        # A further site past the balancer's cache (a query string), answered by its
        # must-use plugin (templates/wordpress/wordpress-lb.php.j2): a cached copy that
        # expired would be renewed behind the check's back, a page rendered unseen.
        url=f"{site}/" + ("" if index == 0 else "?pwlb-verify"), connect_to=here,
        title=title, what=f"the balancer {host.name}",
        success_message=summary if first and not vip else None,
        _if=mine,
    )
    if tls_on:
        http.responds(
            name="Plain HTTP moves to HTTPS" + tag,
            url=f"http://{one.hostname}/", connect_to=f"127.0.0.1:{s.lb_port}",
            status=301, location=f"{site}/", what=f"HTTP on the balancer {host.name}",
            _if=mine,
        )
    if vip and first:
        port = s.lb_https_port if tls_on else s.lb_port
        http.responds(
            name="The site answers on the shared address" + tag,
            url=f"{site}/", connect_to=f"{vip}:{port}", title=title,
            what=f"the shared address {vip}", success_message=summary,
            # Just started, the balancers take a moment to agree who holds it.
            wait=30,
            _if=lambda: index == 0 or not quiet(),
        )
