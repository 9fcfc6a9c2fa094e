"""TLS certificates on a host: a key pair in place, a placeholder until ACME delivers, an
ACME (certbot) certificate, a CA the host trusts. pyinfra has none of these."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import HiddenValue, OperationError, StringCommand, operation
from pyinfra.facts.files import File, Link

from pyinfra_wordpress_lb.facts.tls import AcmeLineage
from pyinfra_wordpress_lb.operations._content import put_content, unmasked

LETSENCRYPT = "/etc/letsencrypt"


@operation()
def certificate(cert_path: str, key_path: str, certificate: str, key: str | HiddenValue):
    """
    Ensure a certificate (chain) and its private key are in place: the chain readable
    by all, the key by root only (mode 600, never shown, not even with ``--diff``, and
    never readable by others while it is written). A symbolic link at either path (an
    earlier ACME lineage) is replaced by the file.

    + cert_path: where the PEM chain goes (leaf first)
    + key_path: where the PEM private key goes
    + certificate: the chain's PEM text
    + key: the key's PEM text, preferably a ``HiddenValue``

    **Example:**

    .. code:: python

        tls.certificate(
            name="Install the site's certificate",
            cert_path="/etc/wordpress-lb/tls/site.crt",
            key_path="/etc/wordpress-lb/tls/site.key",
            certificate="-----BEGIN CERTIFICATE-----...",
            key=HiddenValue("-----BEGIN PRIVATE KEY-----..."),
        )
    """
    commands = []
    linked = {}
    for path in (cert_path, key_path):
        linked[path] = bool(host.get_fact(Link, path=path))
        if linked[path]:
            commands.append(StringCommand("rm", "-f", path))
    commands += put_content(cert_path, certificate, mode=644, force=linked[cert_path])
    commands += put_content(key_path, unmasked(key), mode=600, secret=True,
                            force=linked[key_path])
    if not commands:
        host.noop(f"{cert_path} and its key are in place")
    yield from commands


@operation()
def placeholder(cert_path: str, key_path: str, common_name: str, days: int = 30):
    """
    Ensure there is some certificate at ``cert_path`` (with its key) so that nginx can
    start with HTTPS configured before the real one arrives (ACME needs nginx serving
    first): when there is none, a short-lived self-signed one is made on the host. An
    existing certificate or link is left alone.

    + cert_path, key_path: where nginx reads the certificate and key
    + common_name: the name the placeholder is made out to
    + days: its validity

    **Example:**

    .. code:: python

        tls.placeholder(
            name="Put a placeholder certificate until ACME delivers",
            cert_path="/etc/wordpress-lb/tls/site.crt",
            key_path="/etc/wordpress-lb/tls/site.key",
            common_name="www.example.com",
        )
    """
    if host.get_fact(File, path=cert_path) or host.get_fact(Link, path=cert_path):
        host.noop(f"{cert_path} holds a certificate")
        return
    subject = shlex.quote(f"/CN={common_name}")
    yield (
        f"umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        f"-days {int(days)} -subj {subject} -keyout {shlex.quote(key_path)} "
        f"-out {shlex.quote(cert_path)} 2>/dev/null && chmod 644 {shlex.quote(cert_path)}"
    )


@operation()
def acme_certificate(
    cert_name: str,
    domains: list[str],
    email: str,
    server: str,
    webroot: str,
    cert_path: str,
    key_path: str,
    reload_command: str = "systemctl reload nginx",
    ca_bundle: str | None = None,
):
    """
    Ensure certbot holds a certificate for exactly these names from this ACME server
    (http-01 through ``webroot``), and that ``cert_path``/``key_path`` link to it. A new
    certificate is asked for only when there is none, or the names or the server
    changed; renewal is certbot's own timer, which runs ``reload_command`` after each
    renewal. ``reload_command`` also runs here when the links change.

    + cert_name: certbot's lineage name (``/etc/letsencrypt/live/<cert_name>/``)
    + domains: the names the certificate covers (the first is its subject)
    + email: the ACME account's contact address
    + server: the ACME directory URL
    + webroot: where the challenge files go (served at ``/.well-known/acme-challenge/``)
    + cert_path, key_path: the links nginx reads
    + reload_command: what makes the web server read a new certificate
    + ca_bundle: a CA file to trust the ACME server's own HTTPS (a private ACME server)

    **Example:**

    .. code:: python

        tls.acme_certificate(
            name="Get the site's certificate from Let's Encrypt",
            cert_name="wordpress-lb",
            domains=["www.example.com"],
            email="webmaster@example.com",
            server="https://acme-v02.api.letsencrypt.org/directory",
            webroot="/var/lib/wordpress-lb/acme",
            cert_path="/etc/wordpress-lb/tls/site.crt",
            key_path="/etc/wordpress-lb/tls/site.key",
        )
    """
    if not domains:
        raise OperationError("acme_certificate needs at least one domain")
    lineage = host.get_fact(AcmeLineage, cert_name=cert_name)
    fits = bool(lineage) and lineage["server"] == server and \
        sorted(lineage["names"]) == sorted(domains)
    commands: list = []
    if not fits:
        env = f"REQUESTS_CA_BUNDLE={shlex.quote(ca_bundle)} " if ca_bundle else ""
        names = " ".join(f"-d {shlex.quote(d)}" for d in domains)
        commands.append(
            f"{env}certbot certonly --non-interactive --agree-tos --no-eff-email "
            f"--email {shlex.quote(email)} --server {shlex.quote(server)} "
            f"--webroot --webroot-path {shlex.quote(webroot)} "
            f"--cert-name {shlex.quote(cert_name)} {names} "
            f"--deploy-hook {shlex.quote(reload_command)}"
            + (" --force-renewal" if lineage else "")
        )
    live = f"{LETSENCRYPT}/live/{cert_name}"
    for path, target in ((cert_path, f"{live}/fullchain.pem"), (key_path, f"{live}/privkey.pem")):
        link = host.get_fact(Link, path=path)
        if not link or link.get("link_target") != target:
            new = shlex.quote(f"{path}.new")
            commands.append(f"ln -sfn {shlex.quote(target)} {new} && mv -Tf {new} "
                            f"{shlex.quote(path)}")
    if not commands:
        host.noop(f"certbot holds {cert_name} for {', '.join(domains)}")
        return
    yield from commands
    yield reload_command


@operation()
def trusted_ca(ca_name: str, certificate: str | None, present: bool = True):
    """
    Ensure the host trusts a CA (Debian's ``/usr/local/share/ca-certificates``, then
    ``update-ca-certificates``), so curl, PHP and WordPress verify certificates it
    issued; with ``present=False`` the CA is trusted no more.

    + ca_name: the file's name (``<ca_name>.crt``)
    + certificate: the CA certificate(s), PEM
    + present: whether the host should trust it

    **Example:**

    .. code:: python

        tls.trusted_ca(
            name="Trust our CA",
            ca_name="wordpress-lb",
            certificate="-----BEGIN CERTIFICATE-----...",
        )
    """
    path = f"/usr/local/share/ca-certificates/{ca_name}.crt"
    if not present:
        if host.get_fact(File, path=path):
            yield StringCommand("rm", "-f", path)
            yield "update-ca-certificates --fresh >/dev/null"
        else:
            host.noop(f"{ca_name} is not trusted")
        return
    commands = list(put_content(path, certificate or "", mode=644))
    if not commands:
        host.noop(f"{ca_name} is trusted")
        return
    yield from commands
    yield "update-ca-certificates >/dev/null"
