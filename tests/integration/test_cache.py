"""Speed at the edge, on the shared split bed: the balancers' page cache (what it serves,
what it must never serve), stale pages while PHP is down, read-your-upload."""

from __future__ import annotations

import time

import pytest

from tests.integration import mesh, wp
from tests.runner import pyinfra

TTL = 10  # page_cache_ttl's default


@pytest.fixture(scope="module")
def split(beds):
    bed, _, _ = beds.deployed("split", "13")
    return bed


def cache(response) -> str:
    return response.headers.get("X-Cache", "")


def warm(site, url: str) -> None:
    """GET a page until the cache holds it (a MISS, then HITs)."""
    for _ in range(5):
        if cache(site.get(url, timeout=30)) == "HIT":
            return
        time.sleep(0.3)
    raise AssertionError(f"{url} never came from the cache")


def test_anonymous_pages_come_from_the_cache(split):
    site = wp.http(split)
    url = split.site_url + "/hello-world/"
    first = site.get(url, timeout=30)
    assert first.status_code == 200 and cache(first) in ("MISS", "HIT", "STALE")
    warm(site, url)
    # Tracking parameters do not split the cache.
    tracked = site.get(url + "?utm_source=news&utm_medium=mail&fbclid=x1&gclid=y2", timeout=30)
    assert cache(tracked) == "HIT"


def test_a_logged_in_administrator_never_gets_a_cached_page(split):
    anonymous = wp.http(split)
    warm(anonymous, split.site_url + "/")
    admin = wp.admin(split)
    for _ in range(5):
        page = admin.get(split.site_url + "/", timeout=30)
        assert cache(page) == "BYPASS"
        assert 'id="wpadminbar"' in page.text  # the admin's own page, not a cached one


@pytest.mark.parametrize("what,path,kw", [
    ("wp-admin", "/wp-admin/", {}),
    ("login page", "/wp-login.php", {}),
    ("REST API", "/wp-json/", {}),
    ("REST API by query", "/?rest_route=/", {}),
    ("xmlrpc", "/xmlrpc.php", {}),
    ("cron", "/wp-cron.php", {}),
    ("preview", "/hello-world/?preview=true", {}),
    ("other query string", "/?p=1", {}),
    ("Authorization", "/", {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}}),
    ("logged-in cookie", "/", {"cookies": {"wordpress_logged_in_0123abcd": "x"}}),
    ("password-protected post cookie", "/", {"cookies": {"wp-postpass_0123abcd": "x"}}),
    ("commenter cookie", "/", {"cookies": {"comment_author_0123abcd": "x"}}),
    ("cart cookie", "/", {"cookies": {"woocommerce_items_in_cart": "1"}}),
    ("cart hash cookie", "/", {"cookies": {"woocommerce_cart_hash": "ab"}}),
    ("shop session cookie", "/", {"cookies": {"wp_woocommerce_session_0123abcd": "x"}}),
])
def test_never_cached(split, what, path, kw):
    site = wp.http(split)
    warm(site, split.site_url + "/")
    for _ in range(3):
        response = site.get(split.site_url + path, timeout=30, allow_redirects=False, **kw)
        assert cache(response) == "BYPASS", (what, response.status_code, cache(response))


def test_a_post_is_never_cached_nor_answered_from_the_cache(split):
    site = wp.http(split)
    warm(site, split.site_url + "/")
    for _ in range(3):
        response = site.post(split.site_url + "/", data={"s": "x"}, timeout=30,
                             allow_redirects=False)
        assert cache(response) == "BYPASS"


def test_a_response_that_sets_a_cookie_is_not_cached(split):
    plugin = f"{mesh.UPLOADS.rsplit('/', 1)[0]}/mu-plugins/pwlb-cookie.php"
    code = ("<?php add_action('init', function () { if (0 === strpos($_SERVER['REQUEST_URI'], "
            "'/sample-page/')) { setcookie('pwlb_probe', (string) microtime(true)); } });")
    for web in ("web1", "web2"):  # (the mesh would bring it too; no waiting)
        split.exec(web, f"cat > {plugin} <<'EOF'\n{code}\nEOF\nchown wordpress: {plugin}")
    try:
        site = wp.http(split)
        for _ in range(4):
            response = site.get(split.site_url + "/sample-page/", timeout=30)
            assert response.status_code == 200 and "pwlb_probe" in response.headers["Set-Cookie"]
            assert cache(response) == "MISS"
    finally:
        for web in ("web1", "web2"):
            split.exec(web, f"rm -f {plugin}")


def test_a_new_post_reaches_readers_within_the_cache_lifetime(split):
    site = wp.http(split)
    warm(site, split.site_url + "/")
    admin = wp.admin(split)
    nonce = admin.get(split.site_url + "/wp-admin/admin-ajax.php?action=rest-nonce").text
    title = f"Fresh news {time.time_ns()}"
    created = admin.post(split.site_url + "/wp-json/wp/v2/posts", timeout=30,
                         headers={"X-WP-Nonce": nonce},
                         json={"title": title, "status": "publish", "content": "hi"})
    assert created.status_code == 201, created.text[:300]
    published = time.monotonic()
    try:
        while time.monotonic() - published < TTL + 5:
            if title in site.get(split.site_url + "/", timeout=30).text:
                break
            time.sleep(0.2)
        seen_after = time.monotonic() - published
        assert seen_after <= TTL + 1, seen_after
    finally:
        admin.delete(f"{split.site_url}/wp-json/wp/v2/posts/{created.json()['id']}",
                     params={"force": "true"}, headers={"X-WP-Nonce": nonce}, timeout=30)


@pytest.mark.parametrize("path", ["/wp-content/themes/pwlb-edge.css",
                                  "/wp-content/uploads/pwlb-edge.css"])
def test_a_changed_static_file_reaches_readers_within_the_cache_lifetime(split, path):
    # Backends tell browsers to keep static files a year; the edge keeps them no longer
    # than pages.
    site = wp.http(split)
    local = f"/var/www/wordpress/shared{path}"
    for host in ("web1", "web2"):
        split.exec(host, f"echo 'a{{}}' > {local}", user="wordpress")
    try:
        warm(site, split.site_url + path)
        assert "max-age=31536000" in site.get(split.site_url + path).headers["Cache-Control"]
        for host in ("web1", "web2"):
            split.exec(host, f"echo 'b{{}}' > {local}", user="wordpress")
        changed = time.monotonic()
        while time.monotonic() - changed < TTL + 5:
            if site.get(split.site_url + path, timeout=30).text.startswith("b"):
                break
            time.sleep(0.2)
        assert time.monotonic() - changed <= TTL + 1
    finally:
        for host in ("web1", "web2"):
            split.exec(host, f"rm -f {local}")


def test_cached_pages_answer_while_php_is_down_everywhere(split):
    site = wp.http(split)
    url = split.site_url + "/hello-world/"
    warm(site, url)
    fpm = split.exec("web1", "ls /etc/php")[1].split()[0]
    for web in ("web1", "web2"):
        split.exec(web, f"systemctl stop php{fpm}-fpm")
    try:
        statuses = []
        deadline = time.monotonic() + TTL + 5  # past the lifetime: stale pages
        while time.monotonic() < deadline:
            response = site.get(url, timeout=30)
            statuses.append((response.status_code, cache(response)))
            time.sleep(0.5)
        assert all(status == 200 for status, _ in statuses), statuses
        assert {"HIT", "STALE"} <= {how for _, how in statuses}, statuses
        # A page nobody cached has nothing to fall back on.
        assert site.get(split.site_url + "/?p=1", timeout=30).status_code >= 500
    finally:
        for web in ("web1", "web2"):
            split.exec(web, f"systemctl start php{fpm}-fpm")
        # The balancers rest a failing backend for lb_fail_timeout (10 s): wait it out.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page = site.get(split.site_url + "/?p=1", timeout=30, allow_redirects=False)
            if page.status_code < 500:
                break
            time.sleep(0.5)


def test_an_upload_on_one_web_host_only_is_served_at_once(split):
    """Read-your-upload: with the mesh held back, a file only web1 has answers through
    the balancer every time; a file no host has is a prompt 404."""
    for web in ("web1", "web2"):
        split.exec(web, "systemctl stop syncthing-wordpress")
    name = f"only-on-web1-{time.time_ns()}.txt"
    try:
        split.exec("web1", f"echo here > {mesh.UPLOADS}/{name}", user="wordpress")
        site = wp.http(split)
        served = set()
        for _ in range(40):
            response = site.get(f"{split.site_url}/wp-content/uploads/{name}", timeout=30)
            assert response.status_code == 200 and response.text.strip() == "here"
            served.add(response.headers.get("X-Served-By"))
        assert served == {"web1"}
        began = time.monotonic()
        missing = site.get(f"{split.site_url}/wp-content/uploads/nowhere-{name}", timeout=30)
        assert missing.status_code == 404 and time.monotonic() - began < 1
    finally:
        for web in ("web1", "web2"):
            split.exec(web, "systemctl start syncthing-wordpress")
        split.exec("web1", f"rm -f {mesh.UPLOADS}/{name}")


def test_the_documented_purge_empties_every_balancers_cache(split):
    site = wp.http(split)
    warm(site, split.site_url + "/hello-world/")
    run = pyinfra(split.hosts_file, "--limit", "lb", "exec", "--",
                  "/usr/local/sbin/wordpress-lb-purge-cache", deploy="")
    assert run.returncode == 0, run.output[-3000:]
    assert run.output.count("page cache emptied on") >= 2
    assert cache(site.get(split.site_url + "/hello-world/", timeout=30)) == "MISS"
