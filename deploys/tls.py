"""TLS at the edge (group `lb`): nginx on the balancers terminates HTTPS; the backends
stay plain HTTP on the private network. The setting `tls` picks where certificates
come from:

- `self-signed` (default): a small CA made on the controller and kept in the secrets
  store signs the site's certificate; the CA's certificate is written beside the hosts
  file (`hosts.toml` -> `hosts.ca.crt`) for clients to trust. Balancers and web hosts
  trust it too (WordPress calls its own URL).
- `acme`: certbot (http-01 through a webroot) from `acme_server`, Let's Encrypt by
  default. Every balancer holds its own certificate and renews it with certbot's timer
  (reloading nginx); a challenge request that reaches a balancer without the token is
  answered by a peer, so whichever balancer holds the shared address, issuing works.
  No certificate ever travels through the controller.
- `files`: the operator's chain and key, from files on the controller.
- `off`: plain HTTP.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import apt, files, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import secrets
from pyinfra_wordpress_lb.deploys.plan import Site, cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting
from pyinfra_wordpress_lb.facts import nginx as nginx_facts
from pyinfra_wordpress_lb.operations import tls

MODES = ("self-signed", "acme", "files", "off")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"

TLS_DIR = "/etc/wordpress-lb/tls"
CERT = f"{TLS_DIR}/site.crt"
KEY = f"{TLS_DIR}/site.key"
DH_PARAMS = f"{TLS_DIR}/ffdhe2048.pem"
ACME_SERVER_CA = f"{TLS_DIR}/acme-server-ca.pem"
ACME_WEBROOT = "/var/lib/wordpress-lb/acme"
CERT_NAME = "wordpress-lb"  # certbot's lineage: /etc/letsencrypt/live/wordpress-lb/
RELOAD_HOOK = "/usr/local/sbin/wordpress-lb-nginx-reload"
TRUST_NAME = "wordpress-lb"  # /usr/local/share/ca-certificates/wordpress-lb.crt
CA_DAYS, SITE_DAYS, RENEW_DAYS = 3650, 397, 30
ACME_PACKAGES = ["certbot"]

SETTINGS = (
    Setting("tls", "self-signed",
            "where the balancers' certificate comes from: `self-signed` (a CA made on the "
            "controller), `acme` (certbot), `files` (yours), `off` (plain HTTP)"),
    Setting("lb_https_port", 443, "the site's HTTPS port on the `lb` hosts"),
    Setting("hsts_max_age", None,
            "seconds of `Strict-Transport-Security` sent with HTTPS answers; default: one year "
            "with a publicly trusted certificate (`acme`, `files`), none with `self-signed` "
            "and `off`; 0: none (browsers remember it: turn it off before HTTPS goes)"),
    Setting("acme_server", LETS_ENCRYPT, "ACME directory URL for `tls = \"acme\"`"),
    Setting("acme_email", None, "ACME account contact address (required for `acme`)"),
    Setting("acme_server_ca", None,
            "a CA file on the controller to trust the ACME server's own HTTPS (a private "
            "ACME server); default: the system's"),
    Setting("tls_certificate", None,
            "`files` mode: the certificate chain (PEM, leaf first) on the controller"),
    Setting("tls_key", None, "`files` mode: its private key (PEM) on the controller"),
    Setting("tls_trust", None,
            "a CA file (PEM) on the controller that balancers and web hosts trust, for a "
            "certificate from a private CA (the `self-signed` CA is trusted already)"),
)


# The self-signed mode's CA and certificate, made and kept on the controller.

def _load_cert(pem: str | None) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem.encode()) if pem else None
    except ValueError:
        return None


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key,
             days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days)))


def _fresh(cert: x509.Certificate, days: int) -> bool:
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    return left > datetime.timedelta(days=days)


def ca_certificate() -> str:
    """The cluster's own CA (PEM), made on first use and kept in the secrets store."""
    key = serialization.load_pem_private_key(secrets.raw("ca_tls_key").encode(), None)
    ca_name = "pyinfra-wordpress-lb CA"

    def make(current: str | None) -> str:
        cert = _load_cert(current)
        if cert and cert.public_key() == key.public_key() and _fresh(cert, RENEW_DAYS):
            return current
        cert = (_builder(_name(ca_name), _name(ca_name), key.public_key(), CA_DAYS)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False),
                    critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    pem = secrets.kept("ca_tls_cert", make)
    # Beside the hosts file, for clients (browsers, curl) to trust.
    secrets.write_beside(".ca.crt", pem)
    return pem


def cert_path(site: Site) -> str:
    """Where the balancers keep a site's certificate chain (the first site's: `CERT`)."""
    return site.variant(CERT, f"{TLS_DIR}/{site.name}.crt")


def key_path(site: Site) -> str:
    return site.variant(KEY, f"{TLS_DIR}/{site.name}.key")


def cert_name(site: Site) -> str:
    """certbot's lineage of a site's certificate."""
    return site.variant(CERT_NAME)


def self_signed_certificate(names: list[str], site: Site | None = None) -> str:
    """A site's certificate (default the first) for these names, signed by the
    cluster's CA; made again when the names or the CA change or when it has less than
    30 days left."""
    site = cluster().site if site is None else site
    ca_pem = ca_certificate()
    ca = _load_cert(ca_pem)
    ca_key = serialization.load_pem_private_key(secrets.raw("ca_tls_key").encode(), None)
    key = serialization.load_pem_private_key(
        secrets.raw(site.secret("site_tls_key")).encode(), None)
    wanted = [_general_name(n) for n in names]

    def make(current: str | None) -> str:
        cert = _load_cert(current)
        if cert and cert.issuer == ca.subject and cert.public_key() == key.public_key() \
                and _fresh(cert, RENEW_DAYS):
            try:
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                if list(san.value) == wanted:
                    cert.verify_directly_issued_by(ca)
                    return current
            except (x509.ExtensionNotFound, ValueError, TypeError,
                    InvalidSignature):
                pass
        cert = (_builder(_name(names[0]), ca.subject, key.public_key(), SITE_DAYS)
                .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    return secrets.kept(site.secret("site_tls_cert"), make)


def trusted_pem() -> str | None:
    """What balancers and web hosts trust beyond the system's CAs: the self-signed CA
    and the `tls_trust` file."""
    parts = []
    sites = cluster().sites
    if any(site.tls.mode == "self-signed" for site in sites):
        parts.append(ca_certificate())
    for extra in dict.fromkeys(site.tls.trust for site in sites if site.tls.trust):
        parts.append(Path(extra).expanduser().read_text())
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts) or None


# On the hosts.

def certificates() -> None:
    """The balancer's certificates for nginx, one per site, by its mode (called by the
    balancer tier before its vhost; nginx reloads when a certificate it reads changed)."""
    sites = [site for site in cluster().sites if site.tls.on]
    if not sites:
        return
    files.directory(name="Create the TLS directory", path=TLS_DIR, mode="755")
    files.template(name="Install the DHE parameters (RFC 7919 ffdhe2048)",
                   src=templates.path("tls/ffdhe2048.pem.j2"), dest=DH_PARAMS,
                   create_remote_dir=False, mode="644")
    acme = [site for site in sites if site.tls.mode == "acme"]
    if acme:
        _certbot(acme[0])
    for site in sites:
        _certificate(site)


def _certbot(site: Site) -> None:
    """certbot, its settings (the ACME server and contact are the cluster's), the hook
    that reloads nginx, the challenge webroot, its renewal timer."""
    apt.packages(name="Install certbot", packages=ACME_PACKAGES, no_recommends=True)
    files.template(name="Install certbot's hook that reloads nginx",
                   src=templates.path("sbin/wordpress-lb-nginx-reload.j2"),
                   dest=RELOAD_HOOK,
                   create_remote_dir=False, mode="755", fingerprint=nginx_facts.FINGERPRINT,
                   stamp=nginx_facts.STAMP)
    files.directory(name="Create the ACME challenge webroot", path=ACME_WEBROOT,
                    mode="755")
    files.template(name="Write certbot's settings (server, contact)",
                   src=templates.path("certbot/cli.ini.j2"), dest="/etc/letsencrypt/cli.ini",
                   mode="644", server=site.tls.acme_server, email=site.tls.acme_email)
    ca = site.tls.acme_server_ca
    if ca:  # a setting, not a fact: fixed for the whole run
        files.put(name="Trust the ACME server's own certificate",
                  src=str(Path(ca).expanduser()), dest=ACME_SERVER_CA, mode="644")
    dropin = files.template(
        name="Let certbot's renewals trust the ACME server",
        src=templates.path("systemd/certbot.service.d/wordpress-lb.conf.j2"),
        dest="/etc/systemd/system/certbot.service.d/wordpress-lb.conf", mode="644",
        ca_bundle=ACME_SERVER_CA if ca else None)
    systemd.daemon_reload(name="Reload systemd for certbot's settings",
                          _if=dropin.did_change)
    systemd.service(name="Keep certbot's renewal timer on", service="certbot.timer",
                    running=True, enabled=True)


def _certificate(site: Site) -> None:
    if site.tls.mode == "acme":
        tls.placeholder(
            name="Put a placeholder certificate in place until ACME delivers" + site.tag,
            cert_path=cert_path(site), key_path=key_path(site), common_name=site.hostname)
        return
    if site.tls.mode == "files":
        chain = Path(site.tls.certificate).expanduser().read_text()
        key = Path(site.tls.key).expanduser().read_text()
    else:
        chain = self_signed_certificate(list(site.tls.names), site)
        key = secrets.raw(site.secret("site_tls_key"))
    tls.certificate(
        name="Install the site's certificate and key (key never shown)" + site.tag,
        cert_path=cert_path(site), key_path=key_path(site), certificate=chain,
        key=HiddenValue(key))


@deploy("ACME certificate")
def acme() -> None:
    """Every balancer gets its own certificate for each ACME site (once all balancers
    serve the challenge location and the shared address is held)."""
    if "lb" not in here().roles:
        return
    for site in cluster().sites:
        if site.tls.mode != "acme":
            continue
        tls.acme_certificate(
            name=f"Get the site's certificate from {site.tls.acme_server}" + site.tag,
            cert_name=cert_name(site),
            domains=list(site.tls.names),
            email=site.tls.acme_email,
            server=site.tls.acme_server,
            webroot=ACME_WEBROOT,
            cert_path=cert_path(site),
            key_path=key_path(site),
            reload_command=RELOAD_HOOK,
            ca_bundle=ACME_SERVER_CA if site.tls.acme_server_ca else None,
        )


@deploy("Trust")
def trust() -> None:
    """Balancers and web hosts trust the certificate's CA when it is not a public one,
    so the verify step and WordPress's requests to its own URL can check it."""
    pem = trusted_pem()
    tls.trusted_ca(name="Trust the site certificate's CA" if pem else "Trust no private CA",
                   ca_name=TRUST_NAME, certificate=pem, present=bool(pem))
