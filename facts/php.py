"""Facts about PHP as Debian packages it."""

from __future__ import annotations

import re

from pyinfra.api import FactBase


class FpmVersion(FactBase[str | None]):
    """
    Returns the PHP version that Debian's ``php-fpm`` package installs (``"8.4"`` on
    Debian 13, ``"8.2"`` on Debian 12), read from the installed package, so that no
    version is ever hard-coded. ``None`` when ``php-fpm`` is not installed.

    .. code:: python

        "8.4"
    """

    default = type(None)

    def command(self) -> str:
        return "dpkg-query -W -f='${Status}|${Depends}\\n' php-fpm 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        for line in output:
            status, _, depends = line.partition("|")
            if "installed" not in status.split():
                continue
            match = re.search(r"\bphp(\d+\.\d+)-fpm\b", depends)
            if match:
                return match.group(1)
        return None
