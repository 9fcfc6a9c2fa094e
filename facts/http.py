"""Facts about what a URL answers, asked from the host itself."""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase

# curl's exit codes that say why there was no answer.
CURL_ERRORS = {
    6: "the name does not resolve",
    7: "connection refused",
    28: "timed out",
    35: "TLS handshake failed",
    51: "the certificate does not match the name",
    52: "empty reply",
    56: "connection reset",
    60: "the certificate is not trusted",
}


# The headers of an answer that `Response` reads (an extended regex).
HEADERS = "^(x-served-by|location): *[^[:space:]]+"


def request_options(host_header: str | None = None, connect_to: str | None = None) -> str:
    """curl's options for a request's `Host` header and the address it goes to instead
    of the URL's (each shell-quoted, each led by a space)."""
    options = ""
    if host_header:
        options += f" -H {shlex.quote('Host: ' + host_header)}"
    if connect_to:
        options += f" --connect-to {shlex.quote('::' + connect_to)}"
    return options


class Response(FactBase[dict]):
    """
    Returns the HTTP status, page title, redirect target and time taken (``seconds``) a
    URL answers with when the host itself asks (``curl``, no redirects followed, 10 s at
    most, certificates checked against the host's trusted CAs). Status 0: no answer, and ``error`` says why.
    ``connect_to`` sends the request to another ``address:port`` than the URL's
    (curl's ``--connect-to``): the name, the ``Host`` header and TLS stay the URL's.
    ``wait`` asks again, once a second for up to that many seconds, while nothing
    answers (an address that is still moving to its holder).

    .. code:: python

        {"status": 200, "title": "My site", "served_by": "web1", "location": None,
         "error": None, "seconds": 0.012}
    """

    default = dict
    requires_command = "curl"

    def command(self, url: str, host_header: str | None = None,
                connect_to: str | None = None, wait: int = 0) -> str:
        ask = (f"out=$(curl -s -m 10 -D - -o - -w '\\nPWLB-STATUS:%{{http_code}}\\nPWLB-TIME:%{{time_total}}\\n'"
               f"{request_options(host_header, connect_to)} {shlex.quote(url)}); rc=$?")
        if wait:
            # curl 7: nothing answers (yet). Anything else is an answer.
            ask = (f"n=0; while :; do {ask}; case $rc in 7) ;; *) break;; esac; "
                   f"n=$((n+1)); [ $n -ge {int(wait)} ] && break; sleep 1; done")
        return (
            f"{ask}; printf '%s\\n' \"$out\" | grep -a -i -o -E "
            f"'<title>[^<]*</title>|^PWLB-(STATUS|TIME):[0-9.]+|{HEADERS}'; "
            "echo PWLB-EXIT:$rc"
        )

    def process(self, output: list[str]) -> dict:
        result = {"status": 0, "title": None, "served_by": None, "location": None,
                  "error": None, "seconds": None}
        for line in output:
            line = line.strip()
            if line.startswith("PWLB-STATUS:"):
                result["status"] = int(line.split(":", 1)[1])
            elif line.startswith("PWLB-TIME:"):
                seconds = float(line.split(":", 1)[1] or 0)
                result["seconds"] = seconds if result["status"] else None
            elif line.startswith("PWLB-EXIT:"):
                code = int(line.split(":", 1)[1] or 0)
                if code:
                    result["error"] = CURL_ERRORS.get(code, f"curl exit status {code}")
            elif match := re.match(r"<title>(.*)</title>", line, re.I):
                result["title"] = result["title"] or match.group(1).strip()
            elif line.lower().startswith("x-served-by:"):
                result["served_by"] = line.split(":", 1)[1].strip()
            elif line.lower().startswith("location:"):
                result["location"] = line.split(":", 1)[1].strip()
        return result
