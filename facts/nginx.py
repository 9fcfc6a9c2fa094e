"""Facts about nginx: whether the configuration on disk is the one it runs."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

STAMP = "/var/lib/wordpress-lb/nginx.loaded"

# The whole effective configuration (every included file) and the certificates and keys
# it names: what a reload would load.
FINGERPRINT = (
    "if conf=$(nginx -T 2>/dev/null); then "
    "{ printf '%s\\n' \"$conf\"; printf '%s\\n' \"$conf\" "
    "| sed -n 's/^[[:space:]]*ssl_certificate\\(_key\\)\\{0,1\\}[[:space:]]\\{1,\\}\\([^;]*\\);.*/\\2/p' "
    "| sort -u | while read -r f; do cat \"$f\" 2>/dev/null; done; } "
    "| sha256sum | cut -d' ' -f1; else echo invalid; fi"
)


class Loaded(FactBase[dict]):
    """
    Returns a fingerprint of the nginx configuration on disk (``nginx -T``, and the
    certificates it names; ``"invalid"`` when ``nginx -t`` would fail; ``None`` without
    nginx) and the fingerprint recorded when nginx last loaded it (by
    ``nginx.reloaded``): when they differ, the running nginx is behind its files.

    .. code:: python

        {"on_disk": "8c1f...", "loaded": "8c1f..."}
    """

    default = dict

    def command(self) -> str:
        return (f"echo on_disk=$(command -v nginx >/dev/null && {{ {FINGERPRINT}; }}); "
                f"echo loaded=$(cat {STAMP} 2>/dev/null)")

    def process(self, output: list[str]) -> dict:
        result: dict = {"on_disk": None, "loaded": None}
        for line in output:
            key, _, value = line.strip().partition("=")
            if key in result:
                result[key] = value or None
        return result


class Upstream(FactBase[list]):
    """
    Returns the servers of an nginx ``upstream`` block in a site file, in order, each
    with whether it is marked ``down`` (a drained backend: no new requests), whether it is
    a ``backup`` (tried only when every other server rests) and its ``max_fails`` (nginx's
    default, 1, when not given; 0: never rested); ``[]`` when the file or the block is
    missing.

    .. code:: python

        [{"address": "10.0.0.11:80", "down": False, "backup": False, "max_fails": 1},
         {"address": "10.0.0.12:80", "down": True, "backup": False, "max_fails": 1}]
    """

    default = list

    def command(self, path: str, block: str = "wordpress_backends") -> str:
        return (f"sed -n '/^upstream {block} {{/,/^}}/p' {shlex.quote(path)} 2>/dev/null "
                "| grep -E '^[[:space:]]*server[[:space:]]' || true")

    def process(self, output: list[str]) -> list[dict]:
        servers = []
        for line in output:
            words = line.strip().rstrip(";").split()
            if len(words) >= 2 and words[0] == "server":
                fails = [w.partition("=")[2] for w in words[2:] if w.startswith("max_fails=")]
                servers.append({"address": words[1], "down": "down" in words[2:],
                                "backup": "backup" in words[2:],
                                "max_fails": int(fails[-1]) if fails and fails[-1].isdigit()
                                else 1})
        return servers
