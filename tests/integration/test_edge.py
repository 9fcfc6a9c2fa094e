"""The edge: HTTPS at the balancers and their shared address.

On the shared split bed (two balancers sharing an address, the cluster's own CA):
HTTPS as browsers see it, WordPress's view of it, one holder of the address. On the
`edge` bed of its own: certificates from an ACME server on the bed (pebble), and the
holder of the address killed, stopped, and cut off from its peer.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time

import pytest

from tests import testbed
from tests.integration import wp
from tests.integration.load import get_load, resolving

TITLE = "WordPress on pyinfra"


@pytest.fixture(scope="module")
def split(beds):
    bed, _, _ = beds.deployed("split", "13")
    return bed


def holders(bed) -> list[str]:
    """The balancers that have the shared address on an interface now."""
    found = []
    for lb in bed.group("lb"):
        try:
            _, addresses = bed.exec(lb.name, "ip -4 -o addr show", check=False)
        except Exception:  # noqa: BLE001 - a stopped container holds nothing
            continue
        if f" {bed.vip}/" in addresses:
            found.append(lb.name)
    return found


def client_context(ca: str, version=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    if version:
        context.minimum_version = context.maximum_version = version
    return context


def tls_connect(address: str, name: str, context: ssl.SSLContext, session=None):
    sock = socket.create_connection((address, 443), timeout=10)
    return context.wrap_socket(sock, server_hostname=name, session=session)


# On the split bed: HTTPS with the cluster's own CA, two balancers, one address.

def test_https_with_the_cluster_ca_and_http_moves_to_https(split):
    site = wp.http(split)
    response = site.get(split.site_url + "/", timeout=30)
    assert response.status_code == 200 and wp.title(response.text) == TITLE
    plain = site.get(f"http://{split.vip}/hello-world/?x=1", timeout=30, allow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"{split.site_url}/hello-world/?x=1"
    # No HSTS with the cluster's own CA (self-signed) unless asked for.
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_2_and_1_3_only_http2_and_resumption(split):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = client_context(str(split.ca_file), version)
        first = tls_connect(split.vip, split.vip, context)
        assert first.selected_alpn_protocol() == "h2"
        if version == ssl.TLSVersion.TLSv1_3:
            first.recv(1)  # TLS 1.3 sends the session after the handshake
        session = first.session
        first.close()
        again = tls_connect(split.vip, split.vip, context, session=session)
        assert again.session_reused, f"no session resumption with {version.name}"
        again.close()
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.minimum_version = context.maximum_version = old
        context.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            with socket.create_connection((split.vip, 443), timeout=10) as sock:
                context.wrap_socket(sock, server_hostname=split.vip)
    # Only forward-secret AEAD suites (Mozilla's intermediate profile) under TLS 1.2.
    for weak in ("AES128-SHA", "AES256-SHA256", "ECDHE-RSA-AES128-SHA"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(weak)
        with pytest.raises(ssl.SSLError):
            with socket.create_connection((split.vip, 443), timeout=10) as sock:
                context.wrap_socket(sock, server_hostname=split.vip)


def test_wordpress_sees_https_end_to_end(split):
    site = wp.http(split)
    page = site.get(split.site_url + "/", timeout=30).text
    own = re.findall(rf"(https?)://{re.escape(split.vip)}", page)
    assert own and set(own) == {"https"}, "a link to the site that is not https"
    session = wp.login(split.site_url, "admin", wp.secrets(split)["admin_password"], split)
    assert wp.logged_in(session)
    # Site Health, as an administrator sees it: its direct checks (REST API)...
    health = session.get(split.site_url + "/wp-admin/site-health.php", timeout=60).text
    data = json.loads(re.search(r"var SiteHealth = (\{.*?\});\n", health).group(1))
    direct = {t["test"]: t["status"] for t in data["site_status"]["direct"]}
    assert direct["rest_availability"] == "good", direct
    assert direct["ssl_support"] == "good" and direct["http_requests"] == "good", direct
    # ...and its checks that make WordPress call its own URL from a web host, on both.
    nonce = session.get(split.site_url + "/wp-admin/admin-ajax.php?action=rest-nonce").text
    seen: dict[str, set] = {}
    for round_ in range(12):
        if round_ % 2:  # shifts the balancer's rotation (the loopback's own request
            session.get(split.site_url + "/?turn=1", timeout=30)  # takes a turn too)
        for test in ("loopback-requests", "https-status"):
            got = session.get(f"{split.site_url}/wp-json/wp-site-health/v1/tests/{test}",
                              headers={"X-WP-Nonce": nonce}, timeout=60)
            assert got.status_code == 200, got.text[:300]
            assert got.json()["status"] == "good", (test, got.json().get("label"))
            seen.setdefault(test, set()).add(got.headers["X-Served-By"])
    assert seen["loopback-requests"] == {"web1", "web2"}


def test_one_balancer_holds_the_address_both_serve(split):
    assert len(holders(split)) == 1
    for lb in split.group("lb"):
        _, active = split.exec(lb.name, "systemctl is-active keepalived nginx")
        assert active.split() == ["active", "active"], lb.name
        # Each balancer serves the site with the same certificate on its own address.
        sock = tls_connect(lb.address, split.vip, client_context(str(split.ca_file)))
        sock.close()


# The edge bed: ACME from pebble, failover. Destructive: a bed of its own.

@pytest.fixture(scope="module")
def edge(beds):
    bed, first, second = beds.deployed("edge", "13")
    assert second.changed == 0, second.changed_ops
    with resolving(testbed.EDGE_SITE, bed.vip):
        yield bed


def acme_host(bed):
    return next(h for h in bed.hosts if "acme" in h.groups)


def served_certificate(bed, address: str, name: str = testbed.EDGE_SITE) -> str:
    """What a balancer's certificate says for `name`, checked against pebble's root, from
    the ACME server's own host (as a client elsewhere on the network)."""
    _, out = bed.exec(acme_host(bed).name,
                      f"openssl s_client -connect {address}:443 -servername {name} "
                      "-CAfile /tmp/roots.pem -verify_return_error -verify_hostname "
                      f"{name} </dev/null 2>&1", check=False)
    return out


@pytest.mark.own_bed("edge")
def test_acme_certificates_on_both_balancers(edge, beds):
    roots = edge.ca_file.read_text()
    edge.exec(acme_host(edge).name, f"cat > /tmp/roots.pem <<'EOF'\n{roots}EOF")
    fingerprints = {}
    for lb in edge.group("lb"):
        out = served_certificate(edge, lb.address)
        assert "Verify return code: 0 (ok)" in out and "Pebble Intermediate" in out, \
            (lb.name, out[-800:])
        _, fingerprint = edge.exec(lb.name, "openssl x509 -in /etc/wordpress-lb/tls/site.crt "
                                            "-noout -fingerprint -sha256")
        fingerprints[lb.name] = fingerprint
    # Each balancer got its own; a re-run issues nothing new.
    assert fingerprints["lb1"] != fingerprints["lb2"]
    again = beds.run(edge)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    for lb in edge.group("lb"):
        assert edge.exec(lb.name, "openssl x509 -in /etc/wordpress-lb/tls/site.crt -noout "
                                  "-fingerprint -sha256")[1] == fingerprints[lb.name]
    # Through the shared address, from this machine, against pebble's root; a certificate
    # browsers trust: HSTS by default.
    response = wp.http(edge).get(edge.site_url + "/", timeout=30)
    assert response.status_code == 200 and wp.title(response.text) == TITLE
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.own_bed("edge")
def test_the_sites_other_name_is_certified_and_redirected_to_its_own(edge):
    """site_aliases: the ACME certificate covers the alias too, and a visitor who types
    it lands on the site's own name, same path, over HTTPS."""
    acme = acme_host(edge).name
    edge.exec(acme, f"cat > /tmp/roots.pem <<'EOF'\n{edge.ca_file.read_text()}EOF")
    for lb in edge.group("lb"):
        out = served_certificate(edge, lb.address, testbed.EDGE_ALIAS)
        assert "Verify return code: 0 (ok)" in out, (lb.name, out[-800:])
    for scheme in ("https", "http"):
        _, out = edge.exec(acme, "curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "
                                 f"--cacert /tmp/roots.pem '{scheme}://{testbed.EDGE_ALIAS}"
                                 "/hello-world/?x=1'")
        assert out == f"301 https://{testbed.EDGE_SITE}/hello-world/?x=1", (scheme, out)
    # HSTS on the redirect too (the alias is HTTPS-only for browsers from then on).
    _, headers = edge.exec(acme, f"curl -sI --cacert /tmp/roots.pem https://{testbed.EDGE_ALIAS}/")
    assert "strict-transport-security: max-age=31536000" in headers.lower(), headers


@pytest.mark.own_bed("edge")
def test_a_challenge_is_answered_by_the_balancer_holding_its_token(edge):
    holder = holders(edge)[0]
    other = next(lb.name for lb in edge.group("lb") if lb.name != holder)
    webroot = "/var/lib/wordpress-lb/acme/.well-known/acme-challenge"
    edge.exec(other, f"mkdir -p {webroot} && echo token-on-{other} > {webroot}/pwlb-test")
    try:
        acme = acme_host(edge).name
        _, body = edge.exec(acme, f"curl -s http://{testbed.EDGE_SITE}/.well-known/"
                                  "acme-challenge/pwlb-test")
        assert body.strip() == f"token-on-{other}"
        # A token nobody holds: a prompt 404, no loop between the balancers.
        _, status = edge.exec(acme, "curl -s -o /dev/null -w '%{http_code} %{time_total}' "
                                    f"http://{testbed.EDGE_SITE}/.well-known/acme-challenge/none")
        code, seconds = status.split()
        assert code == "404" and float(seconds) < 2
    finally:
        edge.exec(other, f"rm -f {webroot}/pwlb-test")


@pytest.mark.own_bed("edge")
def test_certbot_renew_dry_run_on_both_balancers(edge):
    for lb in edge.group("lb"):
        # (Without a terminal certbot first sleeps up to 8 minutes; its timer does not.)
        code, out = edge.exec(lb.name, "REQUESTS_CA_BUNDLE=/etc/wordpress-lb/tls/acme-server-ca.pem "
                                       "certbot renew --dry-run --no-random-sleep-on-renew 2>&1",
                              check=False)
        assert code == 0 and "all simulated renewals succeeded" in out.lower(), out[-1500:]
        _, timer = edge.exec(lb.name, "systemctl is-enabled certbot.timer")
        assert timer.strip() == "enabled"


def load_through_the_address(edge, during, seconds=8.0, total=400):
    return get_load(edge.site_url + "/", total=total, seconds=seconds, during=during, at=2.0,
                    verify=str(edge.ca_file), fresh=True, timeout=15)


@pytest.mark.own_bed("edge")
def test_killing_the_holder_moves_the_address_within_2_s(edge, record_property):
    holder = holders(edge)[0]
    other = next(h.name for h in edge.group("lb") if h.name != holder)
    edge.exec(other, f"rm -f {testbed.NOTIFY_LOG}")
    result = load_through_the_address(edge, lambda: edge.container(holder).kill())
    outage = result.outage()
    record_property("kill", json.dumps({"outage": round(outage, 3), "failed": result.failed,
                                        "errors": dict(result.errors)}))
    print(f"kill {holder}: outage {outage:.3f} s, {result.failed} failed ({dict(result.errors)})")
    try:
        assert result.sent == 400
        assert outage <= 2.0, outage
        # Requests in flight on the killed host may fail; none once the address moved.
        assert result.failed_after(result.at + outage) == 0
        assert holders(edge) and holder not in holders(edge)
        # lb_vip_notify (a provider's floating IP API): the new holder ran it with `master`.
        _, calls = edge.exec(other, f"cat {testbed.NOTIFY_LOG}")
        assert calls.split()[-1:] == ["master"], calls
    finally:
        edge.container(holder).start()
        edge.wait_booted(holder)
    # The killed balancer comes back as a backup: no second interruption.
    back = load_through_the_address(edge, lambda: time.sleep(8), seconds=12, total=300)
    assert back.failed == 0, back.errors
    assert holder not in holders(edge)


@pytest.mark.own_bed("edge")
@pytest.mark.parametrize("how", ["nginx stop", "host stop"])
def test_a_graceful_stop_of_the_holder_fails_no_request(edge, how, record_property):
    holder = holders(edge)[0]
    if how == "nginx stop":
        stop = lambda: edge.exec(holder, "systemctl stop nginx")  # noqa: E731
        recover = lambda: edge.exec(holder, "systemctl start nginx")  # noqa: E731
    else:
        stop = lambda: edge.container(holder).stop(timeout=30)  # noqa: E731

        def recover():
            edge.container(holder).start()
            edge.wait_booted(holder)
    result = load_through_the_address(edge, stop)
    record_property(how, json.dumps({"failed": result.failed, "worst": round(result.worst, 3)}))
    print(f"{how} on {holder}: {result.failed} failed, worst {result.worst:.3f} s")
    try:
        assert result.sent == 400
        assert result.failed == 0, result.errors
        # New connections wait for the handover (a resent SYN), never longer than ~1 s.
        assert result.worst < 2.0
        assert holders(edge) and holder not in holders(edge)
    finally:
        recover()
    time.sleep(2)
    assert len(holders(edge)) == 1


@pytest.mark.own_bed("edge")
def test_after_a_partition_heals_one_balancer_holds_the_address(edge):
    cut = ("printf 'table ip pwlb_partition {\\n chain input {\\n"
           "  type filter hook input priority -20;\\n  ip protocol vrrp drop\\n }\\n}\\n' "
           "| nft -f -")
    for lb in edge.group("lb"):
        edge.exec(lb.name, cut)
    try:
        deadline = time.monotonic() + 10
        while len(holders(edge)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(holders(edge)) == 2, "cut off from each other, both should take the address"
    finally:
        for lb in edge.group("lb"):
            edge.exec(lb.name, "nft delete table ip pwlb_partition", check=False)
    deadline = time.monotonic() + 10
    while len(holders(edge)) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(holders(edge)) == 1
    time.sleep(1)  # the winner's gratuitous ARP reaches this machine
    response = wp.http(edge).get(edge.site_url + "/", timeout=30)
    assert response.status_code == 200


@pytest.mark.own_bed("edge")
def test_a_stranger_announcing_the_address_is_ignored(edge):
    """VRRPv3 has no authentication: the balancers only accept adverts from each other's
    addresses (check_unicast_src). A host that is not a balancer, announcing the same
    router id with the highest priority, takes nothing."""
    before = holders(edge)
    lbs = " ".join(lb.address for lb in edge.group("lb"))
    stranger = "db1"
    config = f"""vrrp_instance rogue {{
    state MASTER
    version 3
    interface eth0
    virtual_router_id 51
    priority 254
    advert_int 0.3
    unicast_src_ip {edge.host(stranger).address}
    unicast_peer {{ {lbs} }}
    virtual_ipaddress {{ 192.0.2.1/32 dev eth0 }}
}}
"""
    edge.exec(stranger, "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                        "--no-install-recommends keepalived >/dev/null")
    edge.exec(stranger, f"cat > /etc/keepalived/keepalived.conf <<'EOF'\n{config}EOF\n"
                        "systemctl restart keepalived")
    try:
        time.sleep(4)
        assert holders(edge) == before
        _, log = edge.exec(before[0], "journalctl -u keepalived --no-pager -n 50")
        assert "higher priority 254" not in log
    finally:
        edge.exec(stranger, "systemctl stop keepalived; rm -f /etc/keepalived/keepalived.conf")
