"""Small helpers the tier deploys share: cluster addresses, groups, nginx sites."""

from __future__ import annotations

import functools
import ipaddress
import warnings
from urllib.parse import urlsplit

from gevent.lock import Semaphore
from pyinfra import host, inventory, state
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host
from pyinfra.facts.hardware import NetworkDevices
from pyinfra.operations import systemd

from pyinfra_wordpress_lb import templates

from pyinfra_wordpress_lb.deploys._run import run
from pyinfra_wordpress_lb.facts.network import PrivateAddress
from pyinfra_wordpress_lb.facts.wordpress import Releases
from pyinfra_wordpress_lb.operations import nginx


# Jinja options for configuration files a person reads: no blank lines left by tags.
TIDY = {"trim_blocks": True, "lstrip_blocks": True}


def renamed(new, old: str):
    """`new` under its old name, for deploy files written against an earlier version:
    it works, and says (once, as a DeprecationWarning) what it is called now."""
    @functools.wraps(new)
    def call(*args, **kwargs):
        warnings.warn(f"{new.__module__}.{old} is now {new.__name__}", DeprecationWarning,
                      stacklevel=2)
        return new(*args, **kwargs)
    call.__name__ = old
    return call


def host_fact(target: Host, fact_cls, **kwargs):
    """A fact of a host as it was when the deploy was loaded (its address, its host keys,
    its releases), asked once: pyinfra 3.10 asks again on every get_fact, and every
    host's deploy reads every peer's. A host that cannot be reached (see `unreachable`)
    is not asked: the fact's default stands in for it."""
    cache = run().facts
    # By name: `pyinfra.host` is a proxy, not the host.
    key = (target.name, fact_cls, tuple(sorted(kwargs.items())))
    if key in cache:
        return cache[key]
    # Hosts load the deploy side by side (greenlets): one asks a peer at a time, the
    # others then find the answer (two connections at once to a host outside --limit hung).
    with _ASKING.setdefault(target.name, Semaphore()):
        if key in cache:
            return cache[key]
        if target.name in unreachable():
            cache[key] = fact_cls().default()
        else:
            try:
                cache[key] = target.get_fact(fact_cls, **kwargs)
            except PyinfraError as exc:
                if target.connected or "connect" not in str(exc).lower():
                    raise
                unreachable()[target.name] = str(exc)
                cache[key] = fact_cls().default()
        return cache[key]


_ASKING: dict[str, Semaphore] = {}


def unreachable() -> dict[str, str]:
    """Hosts of the inventory that could not be reached in this run, and why: those that
    failed to connect when the run began, and those outside `--limit` whose facts were
    asked and that did not answer. Deploys leave them as they are; balancers keep a web
    host among them out of their pool."""
    found = run().unreachable
    if found is None:
        found = run().unreachable = {}
        for target in state.inventory:
            if target in state.failed_hosts and not target.connected:
                found[target.name] = "could not connect when the run began"
    return found


def reachable(target: Host) -> bool:
    """Can this host's facts be asked? (Asks one cheap fact of a host outside --limit.)"""
    if target.name not in unreachable() and not target.connected:
        host_fact(target, PrivateAddress)
    return target.name not in unreachable()


def private_address(target: Host | None = None) -> str:
    """A host's cluster address: its `private_address` data, else what it reports."""
    target = host if target is None else target
    address = target.data.get("private_address") or host_fact(target, PrivateAddress)
    if not address:
        raise ValueError(
            f"{target.name}: no private IPv4 address found; set `private_address` in its data"
        )
    return address


def ssh_options(target: Host) -> str:
    """What the cluster's own SSH (mesh, backups) adds to reach a peer's sshd: its
    `ssh_port` when not 22, with the host key still looked up by its address."""
    port = int(target.data.get("ssh_port") or 22)
    return "" if port == 22 else f"-p {port} -o HostKeyAlias={private_address(target)}"


def interface_of(target: Host, address: str) -> tuple[str, ipaddress.IPv4Network]:
    """The interface that carries `address` on a host, and its network (from pyinfra's
    NetworkDevices fact)."""
    for name, device in (host_fact(target, NetworkDevices) or {}).items():
        ipv4 = device.get("ipv4") or {}
        for entry in [ipv4, *(ipv4.get("additional_ips") or [])]:
            if entry.get("address") == address and entry.get("mask_bits") is not None:
                network = ipaddress.ip_interface(f"{address}/{entry['mask_bits']}").network
                return name, network
    raise ValueError(f"{target.name}: no interface carries {address}; set `lb_vip_interface` "
                     "and check `private_address`")


def failed(target: Host) -> bool:
    """Has this host failed in this run (a command's error, a lost connection)? pyinfra
    leaves a failed host out of the rest of the run; ask while the run goes on (in an
    `_if`, or from an operation's content function), never when the deploy is loaded."""
    return target in state.failed_hosts


def any_failed(group: str) -> bool:
    """Has any host of the group failed in this run so far?"""
    return any(failed(h) for h in group_hosts(group))


def changed(op) -> bool:
    """Did an operation (of any host) change something? False when it has not run: its
    host failed before reaching it (pyinfra raises when asked about such an operation)."""
    return op.is_complete() and op.did_change()


def group_hosts(group: str) -> list[Host]:
    """The hosts of an inventory group, in a stable order (by name)."""
    return sorted(inventory.get_group(group, []), key=lambda h: h.name)


def group_addresses(group: str) -> list[str]:
    return [private_address(h) for h in group_hosts(group)]


def site_url(target: Host | None = None) -> str:
    """The site's public URL, without a trailing slash: the `site_url` setting, else
    https (http with `tls = "off"`) on the balancers' shared address, else on the first
    balancer (or web host)."""
    from pyinfra_wordpress_lb.deploys.settings import value

    target = host if target is None else target
    if target.data.get("site_url"):
        return str(target.data.site_url).rstrip("/")
    scheme = "http" if value(target, "tls") == "off" else "https"
    if value(target, "lb_vip"):
        return f"{scheme}://{value(target, 'lb_vip')}"
    first = (group_hosts("lb") or group_hosts("web"))[0]
    return f"{scheme}://{first.data.get('ssh_hostname') or first.name}"


def site_connect_to(target: Host | None = None) -> dict[str, str]:
    """Where the web hosts' requests to the site's own URL should go: `host:port` of the
    URL -> `address:port` of the balancers (their shared address, else the first one's
    private address), over the private network."""
    from pyinfra_wordpress_lb.deploys.settings import value

    target = host if target is None else target
    lbs = group_hosts("lb")
    if not lbs:
        return {}
    parts = urlsplit(site_url(target))
    https = parts.scheme == "https"
    address = value(target, "lb_vip") or private_address(lbs[0])
    port = value(lbs[0], "lb_https_port") if https else value(lbs[0], "lb_port")
    own = f"{(parts.hostname or '').lower()}:{parts.port or (443 if https else 80)}"
    return {own: f"{address}:{port}"}


def site_host(target: Host | None = None) -> str:
    """The host name (or address) in the site's URL, without the port."""
    return urlsplit(site_url(target)).hostname or ""


def backend_port(target: Host | None = None) -> int:
    """Port of a web host's backend vhost. A host that is also a load balancer keeps the
    public port for the balancer, so its backend moves to `colocated_web_port`."""
    from pyinfra_wordpress_lb.deploys.settings import value

    target = host if target is None else target
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


def serving(target) -> bool:
    """Did this web host serve a release when the deploy was loaded?"""
    docroot = str(target.data.get("docroot") or "/var/www/wordpress").rstrip("/")
    found = host_fact(target, Releases, base=docroot)
    return bool(found["current"] or found["legacy"])


def newcomers() -> list:
    """Web hosts that join a cluster already serving: they get the shared content from
    a peer, and traffic only once verified. (On a first deploy nobody is new.)"""
    web = [h for h in group_hosts("web") if reachable(h)]  # one that is down joins later
    if not any(serving(h) for h in web):
        return []
    return [h for h in web if not serving(h)]


def upstream(held_back: list[Host] = ()) -> list[dict]:
    """The balancer's backends: `address` (`address:port`), and `down` with the reason
    when a balancer must not send it new requests: the web host is drained (`drain`
    in its data), failed in this run (it stays out until a run succeeds on it), or is
    new to the cluster and not verified yet (`held_back`). Asked again when the
    balancer's vhost is written, so that a web host failing meanwhile is left out."""
    from pyinfra_wordpress_lb.deploys.settings import value

    if host.data.get("lb_backends"):
        return [{"address": b, "down": None} for b in backends()]
    held = {h.name for h in held_back}
    entries = []
    for h in group_hosts("web"):
        reason = ("drained" if value(h, "drain") else
                  "failed during the last deploy" if failed(h) else
                  "unreachable during the last deploy" if h.name in unreachable() else
                  "new, not verified yet" if h.name in held else None)
        entries.append({"address": f"{private_address(h)}:{backend_port(h)}", "down": reason})
    return entries


def nginx_site(site: str, template: str, what: str, **context) -> None:
    """Write an nginx site from a template and enable it (and not Debian's default
    site), only once nginx accepts it; then make sure the running nginx serves what is
    on disk (a graceful reload when anything it reads changed: this site, nginx.conf,
    a certificate), and keeps running and enabled. A context value that is a function
    is called when the site is written (what depends on the run so far)."""
    nginx.site(name=f"Write the {what}", site=site,
               content=lambda: templates.render(
                   template, **{k: v() if callable(v) else v for k, v in context.items()}))
    nginx.reloaded(name="Reload nginx when what it reads changed")
    systemd.service(name="Keep nginx running and enabled", service="nginx.service",
                    running=True, enabled=True)
