"""WordPress: a verified release in the docroot, its configuration, an unattended install."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import HiddenValue, OperationError, operation
from pyinfra.context import state
from pyinfra.facts.files import Sha1File, Sha256File

from pyinfra_wordpress_lb.templates import php_string, render
from pyinfra_wordpress_lb.facts.wordpress import Installed, Release
from pyinfra_wordpress_lb.operations._content import put_content, unmasked, upload_secret

CHECKSUM_FACTS = {"sha1": Sha1File, "sha256": Sha256File}


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


@operation()
def release(archive: str, checksum: str, version: str, docroot: str, user: str = "wordpress"):
    """
    Put a WordPress release archive (already on the host) into the docroot, but only
    after its checksum matched: a wrong checksum stops the deploy with an error naming
    both checksums, and the docroot is not touched. Core files are replaced;
    ``wp-content`` (uploads, plugins, themes) and ``wp-config.php`` are kept.

    + archive: path of the ``.tar.gz`` on the host (top directory ``wordpress/``)
    + checksum: ``sha1:<hex>`` or ``sha256:<hex>`` the archive must have
    + version: the release's version, recorded in ``<docroot>/.pwlb-release``
    + docroot: the WordPress directory
    + user: owner of the files (the PHP-FPM pool and lsyncd user)

    **Example:**

    .. code:: python

        wordpress.release(
            name="Install WordPress 7.1.0",
            archive="/var/cache/wordpress-lb/wordpress-7.1.0.tar.gz",
            checksum="sha1:e0ca593bc062f7a8c5a956ca44aff7375b0841e0",
            version="7.1.0",
            docroot="/var/www/wordpress",
        )
    """
    algorithm, digest = parse_checksum(checksum)
    wanted = f"{version} {algorithm}:{digest}"
    if host.get_fact(Release, docroot=docroot) == wanted:
        host.noop(f"{docroot} holds WordPress {version}")
        return

    actual = host.get_fact(CHECKSUM_FACTS[algorithm], path=archive)
    # Before execution (a dry run) the archive may simply not be downloaded yet.
    if actual != digest and (actual is not None or state.is_executing):
        raise OperationError(
            f"{archive} has {algorithm} {actual or '(no file)'}, expected {digest} "
            f"(wordpress_checksum {algorithm}:{digest}); {docroot} was left as it was"
        )

    q_archive, q_root = shlex.quote(archive), shlex.quote(docroot)
    staging = shlex.quote(docroot.rstrip("/") + ".staging")
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
        f"mkdir -p {q_root} && rsync -rlt --exclude=/wp-config.php --exclude=/wp-content/uploads/ "
        f"{staging}/ {q_root}/ && mkdir -p {q_root}/wp-content/uploads"
    )
    yield f"echo {shlex.quote(wanted)} > {q_root}/.pwlb-release"
    yield f"chown -R {user}:{user} {q_root} && rm -rf {staging}"


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
            content=HiddenValue(rendered),
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
        raise OperationError(
            f"cannot tell whether WordPress is installed in {docroot}: is PHP there and the "
            "database reachable with the credentials in wp-config.php?"
        )
    raw = unmasked(admin_password)
    script = render(
        "wordpress/install.php.j2", url=php_string(url), title=php_string(title),
        admin_user=php_string(admin_user), admin_email=php_string(admin_email),
        admin_password=php_string(raw),
    )
    tmp = host.get_temp_filename(f"wp-install-{docroot}")
    q_tmp, q_user = shlex.quote(tmp), shlex.quote(user)
    yield from upload_secret(tmp, script.encode(), user=user, group=user, mode=600)
    yield (
        f"cd {shlex.quote(docroot)} && runuser -u {q_user} -- php {q_tmp}; "
        f"rc=$?; rm -f {q_tmp}; exit $rc"
    )
