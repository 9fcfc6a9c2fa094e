"""Facts about TLS certificates on a host: what a certificate file holds, what an ACME
(certbot) lineage is."""

from __future__ import annotations

import re
import shlex
from datetime import datetime, timezone

from pyinfra.api import FactBase

_OPENSSL_FIELDS = "-subject -issuer -enddate -fingerprint -sha256 -ext subjectAltName"


def _parse_x509(output: list[str]) -> dict | None:
    """What `openssl x509 -noout <fields>` printed, as a dict (None: no certificate)."""
    cert: dict = {"subject": None, "issuer": None, "not_after": None, "fingerprint": None,
                  "names": []}
    in_san = False
    for raw in output:
        line = raw.strip()
        if line.startswith("subject="):
            cert["subject"] = line.split("=", 1)[1].strip()
        elif line.startswith("issuer="):
            cert["issuer"] = line.split("=", 1)[1].strip()
        elif line.startswith("notAfter="):
            when = datetime.strptime(line.split("=", 1)[1].strip(), "%b %d %H:%M:%S %Y %Z")
            cert["not_after"] = when.replace(tzinfo=timezone.utc).isoformat()
        elif "Fingerprint=" in line:
            cert["fingerprint"] = line.split("=", 1)[1].replace(":", "").lower()
        elif line.startswith("X509v3 Subject Alternative Name"):
            in_san = True
        elif in_san:
            in_san = False
            for entry in line.split(","):
                kind, _, value = entry.strip().partition(":")
                if kind in ("DNS", "IP Address") and value:
                    cert["names"].append(value.strip())
    return cert if cert["fingerprint"] else None


class Certificate(FactBase[dict | None]):
    """
    Returns what the certificate (the first one) in a PEM file says, or ``None`` when
    the file is missing or holds no certificate. ``names`` are its subject alternative
    names (DNS names and IP addresses), ``not_after`` its expiry (UTC).

    .. code:: python

        {
            "subject": "CN=www.example.com",
            "issuer": "C=US, O=Let's Encrypt, CN=R11",
            "not_after": "2027-02-27T10:00:00+00:00",
            "fingerprint": "c358bdab779ef990...",
            "names": ["www.example.com", "example.com"],
        }
    """

    requires_command = "openssl"
    default = type(None)

    def command(self, path: str) -> str:
        return (f"openssl x509 -in {shlex.quote(path)} -noout {_OPENSSL_FIELDS} "
                "-nameopt RFC2253 2>/dev/null || true")

    def process(self, output: list[str]) -> dict | None:
        return _parse_x509(output)


class AcmeLineage(FactBase[dict | None]):
    """
    Returns a certbot certificate lineage (``/etc/letsencrypt/renewal/<name>.conf`` and
    its current certificate): the ACME server it renews from, the names the
    certificate covers and its expiry; ``None`` when there is no such lineage.

    .. code:: python

        {
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "names": ["www.example.com"],
            "not_after": "2027-02-27T10:00:00+00:00",
            "fingerprint": "c358bdab779ef990...",
            ...
        }
    """

    default = type(None)

    def command(self, cert_name: str, config_dir: str = "/etc/letsencrypt") -> str:
        conf = shlex.quote(f"{config_dir}/renewal/{cert_name}.conf")
        cert = shlex.quote(f"{config_dir}/live/{cert_name}/cert.pem")
        return (
            f"if [ -f {conf} ]; then grep -E '^server *=' {conf}; "
            f"openssl x509 -in {cert} -noout {_OPENSSL_FIELDS} -nameopt RFC2253 2>/dev/null; "
            "fi; true"
        )

    def process(self, output: list[str]) -> dict | None:
        server = None
        rest = []
        for line in output:
            match = re.match(r"^server\s*=\s*(\S+)", line.strip())
            if match:
                server = match.group(1)
            else:
                rest.append(line)
        cert = _parse_x509(rest)
        if server is None and cert is None:
            return None
        return {"server": server, **(cert or {"names": [], "not_after": None,
                                              "fingerprint": None, "subject": None,
                                              "issuer": None})}
