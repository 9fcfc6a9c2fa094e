"""WordPress on a web host: verified releases side by side and the one served, its
configuration, an unattended install, the database upgrade a new release needs."""

from __future__ import annotations

import functools
import hashlib
import shlex

import gevent

from pyinfra import host
from pyinfra.api import HiddenValue, OperationError, QuoteString, StringCommand, operation
from pyinfra.context import state
from pyinfra.facts.files import FileContents, Sha1File, Sha256File

from pyinfra_wordpress_lb.templates import php_string, render
from pyinfra_wordpress_lb.facts.wordpress import DatabaseVersion, Installed, Releases
from pyinfra_wordpress_lb.operations._content import (
    MAKE_PRIVATE_DIR, PRIVATE_DIR, put_content, unmasked, upload_secret,
)
from pyinfra_wordpress_lb.operations._fail import fail

CHECKSUM_FACTS = {"sha1": Sha1File, "sha256": Sha256File}
SHARED_CONTENT = "shared/wp-content"  # under the base: what WordPress writes at run time


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha1:<hex>"`` or ``"sha256:<hex>"`` -> (algorithm, lower-case hex digest)."""
    algorithm, _, digest = checksum.partition(":")
    lengths = {"sha1": 40, "sha256": 64}
    digest = digest.strip().lower()
    if algorithm not in lengths or len(digest) != lengths[algorithm] or not all(
        c in "0123456789abcdef" for c in digest
    ):
        raise OperationError(
            f"checksum {checksum!r} is not 'sha1:<40 hex digits>' or 'sha256:<64 hex digits>'"
        )
    return algorithm, digest


def release_id(version: str, checksum: str) -> str:
    """The directory name of a release: its version and the start of its checksum."""
    return f"{version}-{parse_checksum(checksum)[1][:12]}"


@operation()
def release(archive: str, checksum: str, version: str, base: str, user: str = "wordpress"):
    """
    Ensure a WordPress release is unpacked in a directory of its own,
    ``<base>/releases/<version>-<checksum prefix>``, beside the others and never over
    the one being served; only after its checksum matched: a wrong checksum stops the
    deploy with an error naming both checksums, and nothing under ``base`` is touched.
    The release's ``wp-content`` and ``wp-config.php`` are links to the host's shared
    ``<base>/shared/wp-content`` and ``<base>/wp-config.php``; the themes and plugins it
    bundles are added to the shared tree where missing (never over what is there). Core
    files belong to root: PHP cannot change them. Switching to it is ``current``'s job.

    + archive: path of the ``.tar.gz`` on the host (top directory ``wordpress/``)
    + checksum: ``sha1:<hex>`` or ``sha256:<hex>`` the archive must have
    + version: the release's version, recorded in the release's ``.pwlb-release``
    + base: the WordPress directory (releases, shared content, ``current``)
    + user: owner of the shared content (the PHP-FPM pool and mesh user)

    **Example:**

    .. code:: python

        wordpress.release(
            name="Unpack WordPress 6.8.3",
            archive="/var/cache/wordpress-lb/wordpress-6.8.3.tar.gz",
            checksum="sha1:e0ca593bc062f7a8c5a956ca44aff7375b0841e0",
            version="6.8.3",
            base="/var/www/wordpress",
        )
    """
    algorithm, digest = parse_checksum(checksum)
    wanted = f"{version} {algorithm}:{digest}"
    name = release_id(version, checksum)
    if host.get_fact(Releases, base=base)["releases"].get(name) == wanted:
        host.noop(f"{base}/releases/{name} holds WordPress {version}")
        return

    actual = host.get_fact(CHECKSUM_FACTS[algorithm], path=archive)
    # Before execution (a dry run) the archive may simply not be downloaded yet.
    if actual != digest and (actual is not None or state.is_executing):
        yield from fail(
            f"{archive} has {algorithm} {actual or '(no file)'}, expected {digest} "
            f"(wordpress_checksum {algorithm}:{digest}); {base} was left as it was"
        )
        return

    q_archive = shlex.quote(archive)
    target = shlex.quote(f"{base}/releases/{name}")
    staging = shlex.quote(f"{base}/releases/{name}.tmp")
    shared = shlex.quote(f"{base}/{SHARED_CONTENT}")
    # Verified again on the host, right before use.
    yield (
        f"echo {shlex.quote(f'{digest}  {archive}')} | {algorithm}sum --check --quiet "
        f"|| {{ echo {shlex.quote(f'{archive}: {algorithm} mismatch, expected {digest}')} >&2;"
        " exit 1; }"
    )
    yield (
        f"rm -rf {staging} && mkdir -p {staging} && "
        f"tar -xzf {q_archive} -C {staging} --strip-components=1 --no-same-owner"
    )
    yield (
        f"mkdir -p {shared} && chown {user}:{user} {shared} && "
        f"rsync -rlt --ignore-existing --chown={user}:{user} {staging}/wp-content/ {shared}/"
    )
    yield (
        f"rm -rf {staging}/wp-content {staging}/wp-config.php && "
        f"ln -s ../../{SHARED_CONTENT} {staging}/wp-content && "
        f"ln -s ../../wp-config.php {staging}/wp-config.php && "
        f"echo {shlex.quote(wanted)} > {staging}/.pwlb-release && "
        f"chown -R root:root {staging} && chmod -R u=rwX,go=rX {staging}"
    )
    yield f"rm -rf {target} && mv -T {staging} {target}"


@operation()
def current(base: str, version: str, checksum: str, keep: int = 2):
    """
    Ensure ``<base>/current`` points at this release (already unpacked by ``release``):
    one atomic rename of the link, so every request runs one release or the other,
    never a mix. Releases beyond the ``keep`` most recently served are removed (never
    the current one); the one served before stays for a rollback.

    + base: the WordPress directory
    + version, checksum: the release (as given to ``release``)
    + keep: how many releases to keep, the current one included

    **Example:**

    .. code:: python

        wordpress.current(
            name="Serve WordPress 6.8.3",
            base="/var/www/wordpress",
            version="6.8.3",
            checksum="sha1:e0ca593bc062f7a8c5a956ca44aff7375b0841e0",
        )
    """
    if keep < 1:
        raise OperationError(f"keep_releases {keep}: at least the current release is kept")
    name = release_id(version, checksum)
    releases = host.get_fact(Releases, base=base)
    commands = []
    if releases["current"] != name:
        link = shlex.quote(f"{base}/current")
        new = shlex.quote(f"{base}/current.new")
        # mtime = last served: the newest others are the ones a rollback wants.
        commands.append(f"touch {shlex.quote(f'{base}/releases/{name}')} && "
                        f"ln -sfn releases/{name} {new} && mv -T {new} {link}")
    others = [r for r in releases["order"] if r != name]
    if releases["current"] and releases["current"] != name:
        # The one served until now is the newest of the others from now on.
        others = [releases["current"]] + [r for r in others if r != releases["current"]]
    for old in others[keep - 1:]:
        commands.append(f"rm -rf {shlex.quote(f'{base}/releases/{old}')}")
    if not commands:
        host.noop(f"{base}/current is {name}")
        return
    yield from commands


@operation()
def adopt_legacy(base: str, user: str = "wordpress"):
    """
    When ``base`` still has the single-docroot layout of earlier versions (core files
    and ``wp-content`` right in it), copy its ``wp-content`` into the shared tree
    (``<base>/shared/wp-content``) so that a release can be served from it. Nothing is
    removed here: the old docroot keeps serving until ``retire_legacy``.

    + base: the WordPress directory
    + user: owner of the shared content

    **Example:**

    .. code:: python

        wordpress.adopt_legacy(name="Copy the old docroot's wp-content", base="/var/www/wordpress")
    """
    if not host.get_fact(Releases, base=base)["legacy"]:
        host.noop(f"{base} has the release layout")
        return
    shared = shlex.quote(f"{base}/{SHARED_CONTENT}")
    yield (f"mkdir -p {shared} && chown {user}:{user} {shared} && "
           f"rsync -a {shlex.quote(base + '/wp-content/')} {shared}/")


# What earlier versions put at the top of the docroot besides WordPress's own files.
_LEGACY_OWN = (".pwlb-release", ".mesh-tmp")
_KEEP = ("releases", "shared", "current", "wp-config.php", "legacy-docroot")


@operation()
def retire_legacy(base: str, user: str = "wordpress"):
    """
    Finish moving from the single-docroot layout, once nginx serves ``<base>/current``:
    wait (at most a minute) until no nginx worker still serves a request from the old
    docroot, copy uploads that arrived meanwhile into the shared tree, remove the old
    core files and ``wp-content``, and move anything else found at the top of the old
    docroot into ``<base>/legacy-docroot/`` (kept, not served, not synced).

    + base: the WordPress directory
    + user: owner of the shared content

    **Example:**

    .. code:: python

        wordpress.retire_legacy(name="Remove the old docroot", base="/var/www/wordpress")
    """
    if not host.get_fact(Releases, base=base)["legacy"]:
        host.noop(f"{base} has no old docroot left")
        return
    root = shlex.quote(base)
    shared = shlex.quote(f"{base}/{SHARED_CONTENT}")
    yield ("for i in $(seq 1 120); do pgrep -f 'nginx: worker process is shutting down' "
           ">/dev/null || break; sleep 0.5; done")
    yield (f"rsync -a --update --chown={user}:{user} {shlex.quote(base + '/wp-content/')} "
           f"{shared}/")
    core = " ".join(["wp-admin", "wp-includes", "wp-content", "index.php", "xmlrpc.php",
                     "license.txt", "readme.html", *_LEGACY_OWN])
    keep = " ".join(f"-e {shlex.quote(k)}" for k in _KEEP)
    yield (
        f"cd {root} && rm -rf {core} && "
        "find . -maxdepth 1 -name 'wp-*.php' ! -name wp-config.php -delete && "
        f"for entry in $(ls -A | grep -vxF {keep}); do "
        "mkdir -p legacy-docroot && mv -- \"$entry\" legacy-docroot/; done"
    )


@operation()
def upgrade_database(docroot: str, url: str, user: str = "wordpress"):
    """
    Run WordPress's own database upgrade (``wp_upgrade()``, what ``wp-admin/upgrade.php``
    does) when the code in ``docroot`` expects a newer schema than the database has; do
    nothing otherwise. Run it once per database, from one web host, after every web
    host serves the new release.

    + docroot: the served release (``<base>/current``)
    + url: the site's URL (WordPress needs a host name)
    + user: the PHP-FPM pool user

    **Example:**

    .. code:: python

        wordpress.upgrade_database(
            name="Upgrade the WordPress database",
            docroot="/var/www/wordpress/current",
            url="https://www.example.com",
        )
    """
    versions = host.get_fact(DatabaseVersion, docroot=docroot, user=user)
    if versions and versions["db"] >= versions["core"]:
        host.noop(f"the database is at {versions['db']}, as the code expects")
        return
    if versions is None and state.is_executing:
        yield from fail(f"cannot tell the database version WordPress in {docroot} expects: "
                        "is PHP there and the database reachable?")
        return
    script = render("wordpress/upgrade.php.j2", url=php_string(url))
    yield (f"cd {shlex.quote(docroot)} && runuser -u {shlex.quote(user)} -- php -r "
           f"{shlex.quote(script.removeprefix('<?php').strip())}")


@operation()
def config(path: str, content: str | HiddenValue, user: str = "wordpress", mode: int = 640):
    """
    Ensure ``wp-config.php`` holds this content, owned by the pool user and not
    readable by others. The content carries secrets, so unlike ``files.template`` it is
    never shown, not even with ``--diff``.

    + path: the file (``<docroot>/wp-config.php``)
    + content: the rendered file, preferably a ``HiddenValue``
    + user: owner and group
    + mode: permissions (no bits for others)

    **Example:**

    .. code:: python

        wordpress.config(
            name="Configure WordPress",
            path="/var/www/wordpress/wp-config.php",
            content=HiddenValue("<?php define( 'DB_NAME', 'wordpress' ); ..."),
        )
    """
    raw = unmasked(content)
    if mode % 10:
        raise OperationError(f"{path}: mode {mode} lets others read the secrets in it")
    commands = list(put_content(path, raw, user=user, group=user, mode=mode, secret=True))
    if not commands:
        host.noop(f"{path} is up to date")
    yield from commands


@operation()
def install(
    docroot: str,
    url: str,
    title: str,
    admin_user: str,
    admin_email: str,
    admin_password: str | HiddenValue,
    user: str = "wordpress",
):
    """
    Install WordPress into its (empty) database without a browser or WP-CLI: run
    WordPress's own ``wp_install()`` with PHP as the pool user. Does nothing when the
    database already holds a WordPress site. The admin password reaches the host only
    inside a script file readable by the pool user alone, removed right after.

    + docroot: the WordPress directory (with its ``wp-config.php``)
    + url: the site's public URL
    + title: the site title
    + admin_user, admin_email, admin_password: the first administrator
    + user: the PHP-FPM pool user

    **Example:**

    .. code:: python

        wordpress.install(
            name="Install WordPress",
            docroot="/var/www/wordpress",
            url="https://www.example.com",
            title="Example",
            admin_user="admin",
            admin_email="admin@example.com",
            admin_password=HiddenValue("..."),
        )
    """
    installed = host.get_fact(Installed, docroot=docroot, user=user)
    if installed:
        host.noop("WordPress is installed")
        return
    if installed is None and state.is_executing:
        yield from fail(
            f"cannot tell whether WordPress is installed in {docroot}: is PHP there and the "
            "database reachable with the credentials in wp-config.php?"
        )
        return
    raw = unmasked(admin_password)
    script = render(
        "wordpress/install.php.j2", url=php_string(url), title=php_string(title),
        admin_user=php_string(admin_user), admin_email=php_string(admin_email),
        admin_password=php_string(raw),
    )
    # Not in /tmp (a predictable name there is anyone's to take first): in a directory
    # only root writes to.
    tmp = f"{PRIVATE_DIR}/wp-install-{hashlib.sha1(docroot.encode()).hexdigest()[:12]}.php"
    q_tmp, q_user = shlex.quote(tmp), shlex.quote(user)
    yield MAKE_PRIVATE_DIR
    yield from upload_secret(tmp, script.encode(), user=user, group=user, mode=600)
    yield (
        f"cd {shlex.quote(docroot)} && runuser -u {q_user} -- php {q_tmp}; "
        f"rc=$?; rm -f {q_tmp}; exit $rc"
    )


def admin_password_stamp(docroot: str) -> str:
    """Where a host records (salted) which admin password it last applied."""
    return f"{PRIVATE_DIR}/admin-password-{hashlib.sha1(docroot.encode()).hexdigest()[:12]}"


# PBKDF2 rounds of the recorded digest (~25 ms: asked once per site, host and run).
STAMP_ROUNDS = 100_000


def stamp_salt(docroot: str) -> str:
    """The salt of the stamp this host writes for a docroot."""
    return hashlib.sha256(f"{admin_password_stamp(docroot)}:salt".encode()).hexdigest()[:16]


def password_stamp(password: str, salt: str, rounds: int) -> str:
    """``salt$digest`` of a password (PBKDF2-SHA256): tells whether it changed, and
    nothing about it."""
    ahead = _AHEAD.get((password, salt, rounds))
    return ahead.get() if ahead is not None else _stamp(password, salt, rounds)


@functools.lru_cache(maxsize=64)
def _stamp(password: str, salt: str, rounds: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(),
                                 rounds).hex()
    return f"{salt}${digest}"


_AHEAD: dict = {}


def stamp_ahead(password: str | HiddenValue, docroot: str) -> None:
    """Start computing the stamp `admin_password` will compare for this docroot, in a
    thread of its own (PBKDF2 leaves Python's lock while it works): with 20 sites, half
    a second the run no longer waits for."""
    key = (unmasked(password), stamp_salt(docroot), STAMP_ROUNDS)
    if key not in _AHEAD:
        _AHEAD[key] = gevent.get_hub().threadpool.spawn(_stamp, *key)


@operation()
def admin_password(docroot: str, url: str, admin_user: str, password: str | HiddenValue,
                   user: str = "wordpress"):
    """
    Ensure a changed ``admin_password`` secret reaches WordPress: when the password
    differs from the one this host last applied (a salted digest kept in a file only
    root reads), the administrator's password is set to it (``wp_set_password``: the
    administrator's sessions end). The first time (a fresh install, or a site deployed
    before this existed) the current secret is only recorded: a password changed in
    WordPress's own screens is not overwritten until the secret itself changes.

    + docroot: the served release (``<base>/current``)
    + url: the site's URL
    + admin_user: the administrator's login
    + password: the new password, preferably a ``HiddenValue``
    + user: the PHP-FPM pool user

    **Example:**

    .. code:: python

        wordpress.admin_password(
            name="Apply a changed admin password",
            docroot="/var/www/wordpress/current", url="https://www.example.com",
            admin_user="admin", password=HiddenValue("..."),
        )
    """
    raw = unmasked(password)
    stamp = admin_password_stamp(docroot)
    recorded = host.get_fact(FileContents, path=stamp)
    recorded = (recorded or [""])[0].strip() if isinstance(recorded, list) else ""
    salt = recorded.partition("$")[0]
    if recorded and password_stamp(raw, salt, STAMP_ROUNDS) == recorded:
        host.noop(f"{admin_user}'s password is the admin_password secret")
        return
    new_stamp = password_stamp(raw, stamp_salt(docroot), STAMP_ROUNDS)
    yield MAKE_PRIVATE_DIR
    if recorded:
        script = render("wordpress/admin-password.php.j2", url=php_string(url),
                        admin_user=php_string(admin_user), admin_password=php_string(raw))
        tmp = f"{stamp}.php"
        yield from upload_secret(tmp, script.encode(), user=user, group=user, mode=600)
        yield StringCommand("cd", QuoteString(docroot), "&&", "runuser", "-u", QuoteString(user),
                            "--", "php", QuoteString(tmp), ";", "rc=$?;", "rm", "-f",
                            QuoteString(tmp), ";", "[", "$rc", "=", "0", "]")
    yield from upload_secret(stamp, f"{new_stamp}\n".encode(), user="root", group="root",
                             mode=600)
