"""Small helpers the tier deploys share: cluster addresses, groups, nginx sites."""

from __future__ import annotations

import functools
import ipaddress
import warnings

from gevent.lock import Semaphore
from pyinfra import host, inventory, state
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host
from pyinfra.facts.hardware import NetworkDevices
from pyinfra.operations import systemd

from pyinfra_wordpress_lb import templates

from pyinfra_wordpress_lb.deploys._run import run
from pyinfra_wordpress_lb.facts.network import PrivateAddress
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


def host_facts(target: Host, fact_cls, asked: list[dict]) -> list:
    """`host_fact` for several arguments of one fact (a site's each), those not known yet
    asked in one round trip; what that does not answer is asked alone."""
    from pyinfra.api import facts as pyinfra_facts
    from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS

    from pyinfra_wordpress_lb.deploys._facts import ask_together

    cache = run().facts
    keys = [(target.name, fact_cls, tuple(sorted(kw.items()))) for kw in asked]
    missing = {k: kw for k, kw in zip(keys, asked) if k not in cache}
    if len(missing) > 1 and target.connected and target.name not in unreachable():
        with _ASKING.setdefault(target.name, Semaphore()):
            _, options = pyinfra_facts._handle_fact_kwargs(state, target, fact_cls, None, {})
            executor = {k: v for k, v in options.items() if k in CONNECTOR_ARGUMENT_KEYS}
            wanted = [k for k in missing if k not in cache]
            cache.update(ask_together(target, [(fact_cls, missing[k]) for k in wanted],
                                      executor, keys=wanted))
    return [host_fact(target, fact_cls, **kw) for kw in asked]


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


def ssh_options(node) -> str:
    """What the cluster's own SSH (backups) adds to reach a peer's sshd (a plan's node):
    its `ssh_port` when not 22, with the host key still looked up by its address."""
    return "" if node.ssh_port == 22 else f"-p {node.ssh_port} -o HostKeyAlias={node.address}"


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


def failed_names() -> frozenset[str]:
    """The names of the hosts that failed in this run so far (ask while it runs)."""
    return frozenset(h.name for h in state.failed_hosts)


def quiet() -> bool:
    """Whether no operation changed anything on any host in this run, and none failed.
    Asked from the verify tier only (once every step before it is done on every host);
    its first answer is kept for the run."""
    found = run().quiet
    if found is None:
        found = run().quiet = not state.failed_hosts and not any(
            data.operation_meta.is_complete() and data.operation_meta.did_change()
            for ops in state.ops.values() for data in ops.values())
    return found


def any_failed(group: str) -> bool:
    """Has any host of the group failed in this run so far?"""
    down = failed_names()
    return any(h.name in down for h in group_hosts(group))


def group_hosts(group: str) -> list[Host]:
    """The hosts of an inventory group, in a stable order (by name)."""
    return sorted(inventory.get_group(group, []), key=lambda h: h.name)


def nginx_site(site: str, template: str, what: str, serve: bool = True, **context) -> None:
    """Write an nginx site from a template and enable it (and not Debian's default
    site), only once nginx accepts it; then (`serve`; else the caller's `nginx_serving`
    once all its sites are written) make sure the running nginx serves what is on disk.
    A context value that is a function is called when the site is written (what depends
    on the run so far)."""
    nginx.site(name=f"Write the {what}", site=site,
               content=lambda: templates.render(
                   template, **{k: v() if callable(v) else v for k, v in context.items()}))
    if serve:
        nginx_serving()


def nginx_serving() -> None:
    """The running nginx serves what is on disk (a graceful reload when anything it reads
    changed: a site, nginx.conf, a certificate), and keeps running and enabled."""
    # One host at a time: Debian 12's nginx 1.22 cuts the FastCGI requests in flight on
    # a reload, and the balancers retry those on another backend, which must not be
    # reloading at the same instant (a 502 seen once in 8,190 GETs when both did).
    nginx.reloaded(name="Reload nginx when what it reads changed", _serial=True)
    systemd.service(name="Keep nginx running and enabled", service="nginx.service",
                    running=True, enabled=True)
