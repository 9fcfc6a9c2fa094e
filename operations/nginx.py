"""nginx sites that are checked before they go live, and a running nginx that always
serves what is on disk."""

from __future__ import annotations

import shlex
from collections.abc import Callable

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import FindInFile, Link, Sha256File

from pyinfra_wordpress_lb.facts.nginx import STAMP, Loaded, Upstream
from pyinfra_wordpress_lb.operations._content import put_content
from pyinfra_wordpress_lb.operations._fail import fail

SITES = "/etc/nginx/sites-available"
ENABLED = "/etc/nginx/sites-enabled"


@operation()
def site(site: str, content: str | Callable[[], str], disable_default: bool = True):
    """
    Ensure an nginx site holds this configuration and is enabled (and Debian's
    ``default`` site is not), but only if nginx accepts it: the new file is checked with
    ``nginx -t`` first, and when nginx refuses it the previous version is put back (or
    the site stays disabled) and the deploy stops with nginx's message. A broken site is
    never left in place for the next restart. Reloading is ``reloaded``'s job.

    + site: the file's name under ``/etc/nginx/sites-available``
    + content: the configuration, or a function that returns it, called when the
      operation runs (for a configuration that depends on the run so far)
    + disable_default: also disable Debian's ``default`` site

    **Example:**

    .. code:: python

        nginx.site(
            name="Write the balancer vhost",
            site="wordpress-lb",
            content="server { listen 80; return 204; }",
        )
    """
    import hashlib

    if callable(content):
        content = content()
    available, enabled = f"{SITES}/{site}", f"{ENABLED}/{site}"
    same = host.get_fact(Sha256File, path=available) == hashlib.sha256(content.encode()).hexdigest()
    link = host.get_fact(Link, path=enabled)
    linked = bool(link) and link.get("link_target") == available
    default_on = disable_default and host.get_fact(Link, path=f"{ENABLED}/default") is not None
    if same and linked and not default_on:
        host.noop(f"{site} is in place and enabled")
        return
    q_available, q_enabled = shlex.quote(available), shlex.quote(enabled)
    new, kept = shlex.quote(available + ".pwlb-candidate"), shlex.quote(available + ".pwlb-kept")
    yield from put_content(available + ".pwlb-candidate", content, mode=644, force=True)
    default = f"{ENABLED}/default"
    # Live only if nginx takes it (with Debian's default site off, whose default_server
    # would clash); else everything is put back as it was.
    yield (
        f"set -e; [ ! -e {q_available} ] || cp -p {q_available} {kept}; "
        f"had_link=$([ -L {q_enabled} ] && echo yes || echo no); "
        f"had_default=$([ -L {default} ] && echo yes || echo no); "
        f"mv -f {new} {q_available}; ln -sfn {q_available} {q_enabled}; "
        + (f"rm -f {default}; " if disable_default else "")
        + f"if out=$(nginx -t 2>&1); then rm -f {kept}; exit 0; fi; "
        f"if [ -e {kept} ]; then mv -f {kept} {q_available}; else rm -f {q_available}; fi; "
        f"[ \"$had_link\" = yes ] || rm -f {q_enabled}; "
        f"[ \"$had_default\" = no ] || ln -sfn {SITES}/default {default}; "
        f"echo \"nginx refuses the new {site}, the previous configuration stays: $out\" >&2; "
        "exit 1"
    )


@operation()
def reloaded():
    """
    Ensure the running nginx serves the configuration on disk: when its fingerprint
    (``nginx -T`` and the certificates it names) differs from the one recorded at the
    last reload, nginx is reloaded (gracefully: requests in flight finish) and the new
    fingerprint recorded; started if it was not running. A reload a failed deploy never
    reached is made up by the next run.

    **Example:**

    .. code:: python

        nginx.reloaded(name="nginx serves its new configuration")
    """
    state = host.get_fact(Loaded)
    on_disk = state.get("on_disk")
    if on_disk == "invalid":
        yield from fail("nginx -t fails: the configuration on disk is broken")
        return
    if on_disk and on_disk == state.get("loaded"):
        host.noop("nginx serves the configuration on disk")
        return
    yield (
        "mkdir -p /var/lib/wordpress-lb && "
        "if systemctl is-active --quiet nginx; then systemctl reload nginx; "
        "else systemctl start nginx; fi && "
        f"echo {on_disk or 'unknown'} > {STAMP}"
    )


# Balancing by a hash of the client's address (or a key): nginx takes no backup server.
HASHED = "^[[:space:]]*(ip_hash|hash[[:space:]])"


@operation()
def upstream_backups(site: str, block: str = "wordpress_backends"):
    """
    Ensure an ``upstream`` block that rests a failed server (``max_fails`` above 0) also
    lists each of its servers that is not ``down`` once more as a ``backup`` that is never
    rested (``max_fails=0``): nginx tries the backups only when every other server
    rests, so failures (a backend reloading, say) never leave it with none ("no live
    upstreams": a 502 for every request until a rest ends). For configurations written
    without them (by this project before its balancer had backups): the balancer's own
    vhost writes them on every run. A block that has a backup already, never rests its
    servers, or balances by a hash (nginx takes no backup there) is left as it is. The
    new file is checked with ``nginx -t`` and put back when refused. Reloading is
    ``reloaded``'s job.

    + site: the file's name under ``/etc/nginx/sites-available``
    + block: the ``upstream`` block's name

    **Example:**

    .. code:: python

        nginx.upstream_backups(name="Backups in the balancer's upstream", site="wordpress-lb")
    """
    path = f"{SITES}/{site}"
    servers = host.get_fact(Upstream, path=path, block=block)
    rested = [s for s in servers if not s["down"] and not s["backup"] and s["max_fails"]]
    if not rested or any(s["backup"] for s in servers):
        host.noop(f"upstream {block} never runs out of servers")
        return
    if host.get_fact(FindInFile, path=path, pattern=HASHED, extended_regex=True):
        host.noop(f"upstream {block} balances by a hash: nginx takes no backup server")
        return
    added = "".join(f"    server {s['address']} max_fails=0 backup;\\n" for s in rested)
    q_path, new = shlex.quote(path), shlex.quote(path + ".pwlb-candidate")
    # Inserted before the block's closing brace (sed's own line-start anchors, as Upstream).
    yield (
        f"set -e; awk -v add='{added}' '"
        f"/^upstream {block} [{{]/ {{ inside = 1 }} "
        "inside && /^[}]/ { printf \"%s\", add; inside = 0 } { print }' "
        f"{q_path} > {new}; chown --reference={q_path} {new}; chmod --reference={q_path} {new}; "
        # One rename: a host that dies here has the old file or the new one, never half.
        f"cp -p {q_path} {q_path}.pwlb-kept; mv -f {new} {q_path}; "
        f"if out=$(nginx -t 2>&1); then rm -f {q_path}.pwlb-kept; exit 0; fi; "
        f"mv -f {q_path}.pwlb-kept {q_path}; "
        f"echo \"nginx refuses backups in upstream {block} of {site}, it stays as it was: "
        "$out\" >&2; exit 1"
    )
