"""Small helpers the tier deploys share: cluster addresses, groups, nginx sites."""

from __future__ import annotations

from pyinfra import host, inventory, state
from pyinfra.api.host import Host
from pyinfra.operations import files, server, systemd

from pyinfra_wordpress_lb import templates

from pyinfra_wordpress_lb.facts.network import PrivateAddress


def host_fact(target: Host, fact_cls):
    """A fact of another host that does not change while the deploy is loaded (its
    address, its host keys), asked once: pyinfra 3.10 asks again on every get_fact, and
    every host's deploy reads every peer's."""
    cache = getattr(state, "pwlb_facts", None)
    if cache is None:
        cache = state.pwlb_facts = {}
    key = (target.name, fact_cls)  # by name: `pyinfra.host` is a proxy, not the host
    if key not in cache:
        cache[key] = target.get_fact(fact_cls)
    return cache[key]


def private_address(target: Host | None = None) -> str:
    """A host's cluster address: its `private_address` data, else what it reports."""
    target = target or host
    address = target.data.get("private_address") or host_fact(target, PrivateAddress)
    if not address:
        raise ValueError(
            f"{target.name}: no private IPv4 address found; set `private_address` in its data"
        )
    return address


def group_hosts(group: str) -> list[Host]:
    """The hosts of an inventory group, in a stable order (by name)."""
    return sorted(inventory.get_group(group, []), key=lambda h: h.name)


def group_addresses(group: str) -> list[str]:
    return [private_address(h) for h in group_hosts(group)]


def backend_port(target: Host | None = None) -> int:
    """Port of a web host's backend vhost. A host that is also a load balancer keeps the
    public port for the balancer, so its backend moves to `colocated_web_port`."""
    from pyinfra_wordpress_lb.deploys.settings import value

    target = target or host
    port = int(value(target, "web_port"))
    if "lb" in target.groups and port == int(value(target, "lb_port")):
        return int(value(target, "colocated_web_port"))
    return port


def backends() -> list[str]:
    """`address:port` of every backend: the `lb_backends` setting when given (a balancer
    in front of servers this deploy does not manage), else every web host's vhost."""
    given = host.data.get("lb_backends")
    if given:
        return [str(b) for b in given]
    return [f"{private_address(h)}:{backend_port(h)}" for h in group_hosts("web")]


def nginx_site(site: str, template: str, what: str, **context) -> None:
    """Write an nginx site from a template, enable it (and not Debian's default site),
    check the configuration and reload nginx only when something changed."""
    available = f"/etc/nginx/sites-available/{site}"
    vhost = files.template(name=f"Write the {what}", src=templates.path(template),
                           dest=available, mode="644", **context)
    enabled = files.link(name=f"Enable the {what}", path=f"/etc/nginx/sites-enabled/{site}",
                         target=available)
    default = files.link(name="Disable nginx's default site",
                         path="/etc/nginx/sites-enabled/default", present=False)
    changed = lambda: vhost.did_change() or enabled.did_change() or default.did_change()  # noqa: E731
    server.shell(name="Check the nginx configuration", commands=["nginx -t -q"], _if=changed)
    systemd.service(name="Reload nginx", service="nginx.service", reloaded=True, _if=changed)
    systemd.service(name="Keep nginx running and enabled", service="nginx.service",
                    running=True, enabled=True)
