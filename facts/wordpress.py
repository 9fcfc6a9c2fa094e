"""Facts about a WordPress docroot."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class Release(FactBase[str | None]):
    """
    Returns the release the deploy put into a docroot: ``"<version> <checksum>"``, as
    recorded in ``<docroot>/.pwlb-release``, or ``None`` when there is none.

    .. code:: python

        "7.1.0 sha1:e0ca593bc062f7a8c5a956ca44aff7375b0841e0"
    """

    default = type(None)

    def command(self, docroot: str) -> str:
        return f"cat {shlex.quote(docroot + '/.pwlb-release')} 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        lines = [line.strip() for line in output if line.strip()]
        return lines[0] if lines else None


# Runs as the pool user, with WP_INSTALLING so that WordPress neither redirects to its
# installer nor dies on missing tables.
_INSTALLED_PHP = (
    "define('WP_INSTALLING', true); $_SERVER['HTTP_HOST'] = 'localhost'; "
    "require './wp-load.php'; echo is_blog_installed() ? 'installed' : 'not-installed', PHP_EOL;"
)


class Installed(FactBase[bool | None]):
    """
    Is WordPress installed in the database this docroot's ``wp-config.php`` points at?
    ``True``/``False``; ``False`` too when there is no ``wp-config.php`` yet; ``None``
    when it cannot tell (PHP missing, database unreachable).

    .. code:: python

        True
    """

    default = type(None)

    def command(self, docroot: str, user: str = "wordpress") -> str:
        root = shlex.quote(docroot)
        return (
            f"if [ ! -f {root}/wp-config.php ]; then echo no-config; else "
            f"cd {root} && runuser -u {shlex.quote(user)} -- "
            f"php -d display_errors=stderr -r {shlex.quote(_INSTALLED_PHP)} 2>/dev/null "
            "| tail -n 1; fi"
        )

    def process(self, output: list[str]) -> bool | None:
        last = output[-1].strip() if output else ""
        if last in ("installed",):
            return True
        if last in ("not-installed", "no-config"):
            return False
        return None
