"""The balancer: the site through its URL (HTTPS on the shared address of the split bed),
spread, login, uploads, client identity, failover under load; the tutorial's co-located
topology on the seed bed (plain HTTP)."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.integration import wp
from tests.integration.load import get_load

TITLE = "WordPress on pyinfra"


@pytest.fixture(scope="module")
def split(beds):
    bed, _, _ = beds.deployed("split", "13")
    return bed


def lb(bed) -> str:
    return bed.site_url


def test_front_page_through_the_balancer_from_both_backends(split):
    served = {}
    site = wp.http(split)
    for i in range(120):  # (a query string: past the page cache, to PHP)
        response = site.get(lb(split) + f"/?spread={i}", timeout=30, allow_redirects=False)
        assert response.status_code == 200
        assert wp.title(response.text) == TITLE
        server = response.headers["X-Served-By"]
        served[server] = served.get(server, 0) + 1
    assert set(served) == {"web1", "web2"}, served
    assert min(served.values()) >= 20, served


def test_login_through_the_balancer_stays_on_its_address(split):
    session = wp.http(split)
    session.get(lb(split) + "/wp-login.php", timeout=30)
    response = session.post(
        lb(split) + "/wp-login.php",
        data={"log": "admin", "pwd": wp.secrets(split)["admin_password"], "wp-submit": "Log In",
              "testcookie": "1", "redirect_to": lb(split) + "/wp-admin/"},
        timeout=30, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == lb(split) + "/wp-admin/"
    # Any backend honours the session (same salts, same database).
    seen = set()
    for _ in range(20):
        dashboard = session.get(lb(split) + "/wp-admin/", timeout=30, allow_redirects=False)
        assert dashboard.status_code == 200 and "Dashboard" in wp.title(dashboard.text)
        seen.add(dashboard.headers["X-Served-By"])
    assert seen == {"web1", "web2"}


def test_an_upload_through_the_balancer_is_served_by_every_backend(split):
    session = wp.http(split)
    session.post(lb(split) + "/wp-login.php",
                 data={"log": "admin", "pwd": wp.secrets(split)["admin_password"],
                       "wp-submit": "Log In", "testcookie": "1"},
                 cookies={"wordpress_test_cookie": "WP Cookie check"}, timeout=30,
                 allow_redirects=False)
    nonce = session.get(lb(split) + "/wp-admin/admin-ajax.php?action=rest-nonce", timeout=30).text
    image = wp.png()
    response = session.post(
        lb(split) + "/wp-json/wp/v2/media", data=image, timeout=60,
        headers={"X-WP-Nonce": nonce, "Content-Type": "image/png",
                 "Content-Disposition": 'attachment; filename="pwlb-upload.png"'})
    assert response.status_code == 201, response.text[:500]
    source = response.json()["source_url"]
    assert source.startswith(lb(split) + "/wp-content/uploads/")
    path = source[len(lb(split)):]
    # Through the balancer at once (from whichever backend has it), and the mesh
    # carries it to the other backend within a second.
    got = session.get(lb(split) + path, timeout=30)
    assert got.status_code == 200 and got.content == image
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if all(requests.get(f"http://{web.address}{path}", timeout=30).status_code == 200
               for web in split.group("web")):
            break
        time.sleep(0.2)
    for web in split.group("web"):
        assert requests.get(f"http://{web.address}{path}", timeout=30).content == image


def test_a_client_cannot_spoof_its_address_or_scheme(split):
    probe = "/var/www/wordpress/current/pwlb-whoami.php"
    # What WordPress itself sees, after wp-config.php's proxy handling.
    script = ("<?php define('SHORTINIT', true); require __DIR__ . '/wp-load.php'; "
              "header('Content-Type: application/json'); echo json_encode(array("
              "'addr' => $_SERVER['REMOTE_ADDR'], 'https' => is_ssl()));")
    for web in ("web1", "web2"):
        split.exec(web, f"cat > {probe} <<'EOF'\n{script}\nEOF\nchown wordpress: {probe}")
    forged = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Real-IP": "6.6.6.6"}
    gateway = split.subnet.rsplit(".", 1)[0] + ".1"  # where this machine's requests come from
    try:
        seen = set()
        site = wp.http(split)
        for _ in range(10):
            response = site.get(lb(split) + "/pwlb-whoami.php", headers=forged, timeout=30)
            seen.add(response.headers["X-Served-By"])
            # HTTPS because the client used it, from the balancer's word; not the client's.
            assert response.json() == {"addr": gateway, "https": True}, response.text
        assert seen == {"web1", "web2"}
        # The backend's access log has the real address, not the forged one.
        _, log = split.exec("web1", "tail -n 50 /var/log/nginx/access.log")
        assert "6.6.6.6" not in log and gateway in log
        # The balancer's own forwarded headers are what the backends trust.
        _, trusted = split.exec("lb1", "curl -s -H 'X-Forwarded-For: 6.6.6.6' "
                                       "-H 'X-Forwarded-Proto: https' "
                                       f"http://{split.host('web1').address}/pwlb-whoami.php")
        assert json.loads(trusted) == {"addr": "6.6.6.6", "https": True}
        # Straight to a backend from anywhere else, the headers are not trusted.
        direct = requests.get(f"http://{split.host('web1').address}/pwlb-whoami.php",
                              headers={**forged, "Host": wp.site_host(split)}, timeout=30)
        assert direct.json() == {"addr": gateway, "https": False}
    finally:
        for web in ("web1", "web2"):
            split.exec(web, f"rm -f {probe}")


def test_seed_topology_colocated_balancer_keeps_the_public_port(beds):
    bed, _, second = beds.deployed("seed", "12")
    assert second.changed == 0
    _, listening = bed.exec("hosta", "ss -Hltn")
    ports = {line.split()[3].rsplit(":", 1)[1] for line in listening.splitlines()}
    assert {"80", "90"} <= ports
    served = set()
    for i in range(40):
        response = wp.get(lb(bed), f"/?spread={i}", bed=bed)
        assert response.status_code == 200 and wp.title(response.text) == TITLE
        served.add(response.headers["X-Served-By"])
    assert served == {"hosta", "hostb"}


# Failover: on the three-web-host bed of its own, so a stopped host disturbs no other test.

@pytest.fixture(scope="module")
def mesh_bed(beds):
    bed, _, _ = beds.deployed("mesh", "13")
    return bed


def wait_for_traffic(bed, host: str, seconds: float = 40) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = wp.get(lb(bed), "/?past-the-cache=1", bed=bed)
        if response.headers.get("X-Served-By") == host:
            return True
        time.sleep(0.25)
    return False


def assert_no_failure_while(bed, label, fail, recover, record_property):
    """≥ 500 GETs over ≥ 5 s through the balancer while `fail()` breaks web1; then web1,
    recovered, gets traffic again."""
    # A query string: every GET goes past the page cache to a backend.
    result = get_load(lb(bed) + "/?past-the-cache=1", total=600, seconds=6, during=fail)
    record_property(label, json.dumps(result.__dict__, default=str))
    print(f"{label}:", result)
    try:
        assert result.sent == 600 and result.seconds >= 5
        assert result.failed == 0, result.errors
    finally:
        recover()
    assert wait_for_traffic(bed, "web1"), f"web1 gets no traffic after {label}"


@pytest.mark.own_bed("mesh")
def test_no_failed_request_while_a_backend_container_stops(mesh_bed, record_property):
    def recover():
        mesh_bed.container("web1").start()
        mesh_bed.wait_booted("web1")

    assert_no_failure_while(mesh_bed, "container stop",
                            lambda: mesh_bed.container("web1").stop(timeout=20), recover,
                            record_property)


@pytest.mark.own_bed("mesh")
def test_no_failed_request_while_php_fpm_stops(mesh_bed, record_property):
    assert_no_failure_while(mesh_bed, "php-fpm stop",
                            lambda: mesh_bed.exec("web1", "systemctl stop php8.4-fpm"),
                            lambda: mesh_bed.exec("web1", "systemctl start php8.4-fpm"),
                            record_property)


@pytest.mark.own_bed("mesh")
def test_the_site_answers_within_1_s_once_one_backend_is_back(mesh_bed, record_property):
    """PHP-FPM down on every web host rests every backend at the balancer; once one
    backend answers again, so does the site (not after fail_timeout)."""
    webs = [h.name for h in mesh_bed.group("web")]
    for name in webs:
        mesh_bed.exec(name, "systemctl stop php8.4-fpm")
    try:
        for i in range(10):  # every backend fails and rests
            assert wp.get(lb(mesh_bed), f"/?rest={i}", bed=mesh_bed).status_code >= 500
        # systemctl start returns once PHP-FPM is ready (Type=notify): healthy from here.
        mesh_bed.exec(webs[0], "systemctl start php8.4-fpm")
        back = time.monotonic()
        sent, failed = 0, []
        while time.monotonic() < back + 4:
            sent += 1
            response = wp.get(lb(mesh_bed), f"/?back={sent}", bed=mesh_bed)
            if response.status_code != 200 and time.monotonic() > back + 1:
                failed.append(response.status_code)
    finally:
        for name in webs:
            mesh_bed.exec(name, "systemctl start php8.4-fpm")
    record_property("recovery", json.dumps({"sent": sent, "failed_after_1s": len(failed)}))
    print(f"recovery: {sent} GETs in the 4 s after one backend came back, "
          f"{len(failed)} failed after the first second")
    assert sent > 10
    assert failed == []
