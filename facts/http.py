"""Facts about what a URL answers, asked from the host itself."""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase


class Response(FactBase[dict]):
    """
    Returns the HTTP status and page title a URL answers with when the host itself asks
    (``curl``, no redirects followed, 10 s at most). Status 0: no answer at all.

    .. code:: python

        {"status": 200, "title": "My site", "served_by": "web1"}
    """

    default = dict
    requires_command = "curl"

    def command(self, url: str, host_header: str | None = None) -> str:
        header = f" -H {shlex.quote('Host: ' + host_header)}" if host_header else ""
        return (
            f"curl -s -m 10 -D - -o - -w '\\nPWLB-STATUS:%{{http_code}}\\n'{header} "
            f"{shlex.quote(url)} | grep -a -i -o -E "
            "'<title>[^<]*</title>|^PWLB-STATUS:[0-9]+|^x-served-by: *[^[:space:]]+'; true"
        )

    def process(self, output: list[str]) -> dict:
        result = {"status": 0, "title": None, "served_by": None}
        for line in output:
            line = line.strip()
            if line.startswith("PWLB-STATUS:"):
                result["status"] = int(line.split(":", 1)[1])
            elif match := re.match(r"<title>(.*)</title>", line, re.I):
                result["title"] = result["title"] or match.group(1).strip()
            elif line.lower().startswith("x-served-by:"):
                result["served_by"] = line.split(":", 1)[1].strip()
        return result
