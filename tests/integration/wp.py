"""Talking to a deployed WordPress as a browser would: HTTPS (trusting the bed's CA) or
plain HTTP, cookies, forms."""

from __future__ import annotations

import json
import re
import struct
import zlib
from urllib.parse import urlsplit

import requests

from tests.testbed import Bed


def secrets(bed: Bed) -> dict[str, str]:
    return json.loads((bed.dir / "hosts.secrets.json").read_text())


def site_host(bed: Bed) -> str:
    """The Host of the site's URL (with its port, if any)."""
    return urlsplit(bed.site_url).netloc


def verify(bed: Bed):
    """What requests should check the site's certificate against."""
    return str(bed.ca_file) if bed.site_url.startswith("https://") else True


def http(bed: Bed) -> requests.Session:
    """A client of the site, as a browser that trusts the bed's CA."""
    session = requests.Session()
    session.verify = verify(bed)
    # Else REQUESTS_CA_BUNDLE (set on some machines) silently replaces `verify`.
    session.trust_env = False
    return session


def get(base: str, path: str = "/", bed: Bed | None = None, **kw) -> requests.Response:
    """GET a backend directly (plain HTTP, the site's Host header) or the site."""
    headers = kw.pop("headers", {})
    if bed and not base.startswith("https://"):
        headers.setdefault("Host", site_host(bed))
    if bed:
        kw.setdefault("verify", verify(bed))
    return requests.get(base + path, headers=headers, timeout=30, allow_redirects=False, **kw)


def title(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    return match.group(1).strip() if match else ""


def login(base: str, user: str, password: str, bed: Bed) -> requests.Session:
    """Log in through wp-login.php (of the site, or of a backend directly on a plain-HTTP
    site); returns the session holding the auth cookies."""
    session = http(bed)
    if not base.startswith("https://"):
        session.headers["Host"] = site_host(bed)
    session.get(base + "/wp-login.php", timeout=30)  # sets the test cookie
    response = session.post(
        base + "/wp-login.php",
        data={"log": user, "pwd": password, "wp-submit": "Log In", "testcookie": "1",
              "redirect_to": f"{bed.site_url}/wp-admin/"},
        timeout=30, allow_redirects=False,
    )
    session.login_response = response  # type: ignore[attr-defined]
    return session


def logged_in(session: requests.Session) -> bool:
    response = session.login_response  # type: ignore[attr-defined]
    return response.status_code == 302 and any(
        c.name.startswith("wordpress_logged_in_") for c in session.cookies
    )




MYSQL_CLIENT = ("command -v mariadb >/dev/null || "
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-client >/dev/null")


def mariadb_as(bed: Bed, host: str, user: str, password: str, db_host: str,
               sql: str = "SELECT 1") -> tuple[int, str]:
    """Run SQL on the database from one of the bed's hosts, as a database account."""
    bed.exec(host, MYSQL_CLIENT)
    return bed.exec(host, f"mariadb -h {db_host} -u {user} -p'{password}' wordpress "
                          f"--connect-timeout=5 -N -e '{sql}' 2>&1", check=False)


def png(width: int = 2, height: int = 2) -> bytes:
    """A small valid PNG (WordPress checks what an upload really is)."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def admin(bed: Bed) -> requests.Session:
    """A session logged in as the administrator, through the site's URL."""
    session = login(bed.site_url, "admin", secrets(bed)["admin_password"], bed)
    assert logged_in(session), "the administrator could not log in"
    return session


def upload(session: requests.Session, bed: Bed, name: str, content: bytes | None = None) -> str:
    """Upload an image through the REST API as an editor's browser does; returns its path
    on the site (/wp-content/uploads/...)."""
    nonce = session.get(bed.site_url + "/wp-admin/admin-ajax.php?action=rest-nonce",
                        timeout=30).text
    response = session.post(
        bed.site_url + "/wp-json/wp/v2/media", data=content or png(), timeout=60,
        headers={"X-WP-Nonce": nonce, "Content-Type": "image/png",
                 "Content-Disposition": f'attachment; filename="{name}"'})
    assert response.status_code == 201, response.text[:500]
    return urlsplit(response.json()["source_url"]).path
