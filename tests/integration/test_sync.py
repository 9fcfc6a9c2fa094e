"""The sync mesh (syncthing): propagation, no loss, deletions that stay deleted, one
version everywhere, catch-up before serving, confinement.

Read-only-ish checks run on the shared split bed; stopping, killing and cutting off a
host and changing the membership run on a `mesh` bed of their own (three web hosts).
"""

from __future__ import annotations

import json
import shlex
import threading
import time

import pytest

from tests.integration import mesh
from tests.integration import wp
from tests.integration.load import Background
from tests import testbed
from tests.runner import pyinfra

RESULTS: dict = {}


@pytest.fixture(scope="module")
def split(beds):
    bed, _, _ = beds.deployed("split", "13")
    return bed


def test_small_files_propagate_both_ways_fast(split, record_property):
    for source, target in (("web1", "web2"), ("web2", "web1")):
        latencies = mesh.propagation(split, source, target, count=50, gap=0.1)
        p50, p95, worst = (mesh.percentile(latencies, 50), mesh.percentile(latencies, 95),
                           max(latencies))
        RESULTS[f"{source}->{target}"] = {"files": len(latencies), "p50": round(p50, 3),
                                          "p95": round(p95, 3), "max": round(worst, 3)}
        record_property(f"propagation {source}->{target}", RESULTS[f"{source}->{target}"])
        print(f"propagation {source}->{target}: {json.dumps(RESULTS[f'{source}->{target}'])}")
        assert worst != float("inf"), "a file never arrived"
        # A stream of writes 0.1 s apart: each one scanned at once by the watcher
        # (syncthing's own waits 1-2 s: README, NOTES).
        assert p95 <= 1.0, RESULTS
        assert worst <= 2.0, RESULTS


def test_concurrent_writes_on_every_host_lose_nothing(split):
    hosts = ["web1", "web2"]
    for host in hosts:  # 120 distinct files per host, written at the same time
        split.container(host).exec_run(
            ["sh", "-c", f"mkdir -p {mesh.UPLOADS}/burst && for i in $(seq 1 120); do "
                         f"head -c $((i * 37)) /dev/urandom > {mesh.UPLOADS}/burst/{host}-$i.bin; done"],
            user="wordpress", detach=True)
    assert mesh.wait_quiet(split, hosts, timeout=120)
    digests = {host: mesh.tree_digest(split, host, f"{mesh.UPLOADS}/burst") for host in hosts}
    assert len(digests["web1"]) == 240, sorted(digests["web1"])[:5]
    assert digests["web1"] == digests["web2"]


def test_a_delete_propagates_and_the_mesh_goes_quiet(split):
    split.exec("web2", f"rm -rf {mesh.UPLOADS}/burst", user="wordpress")
    assert mesh.wait_quiet(split, ["web1", "web2"], timeout=60)
    code, _ = split.exec("web1", f"test -e {mesh.UPLOADS}/burst", check=False)
    assert code != 0, "the delete did not reach web1"
    # Quiet means quiet: the mesh uses next to no CPU once idle (no echo loop).
    before = {h: mesh.cpu_seconds(split, h) for h in ("web1", "web2")}
    time.sleep(10)
    for host in ("web1", "web2"):
        assert mesh.cpu_seconds(split, host) - before[host] < 1.0, host
        assert mesh.status(split, host)["state"] == "idle"


def test_the_mesh_talks_only_to_its_peers(split):
    web2 = split.host("web2").address
    probe = f"timeout 3 bash -c '</dev/tcp/{web2}/22000' && echo open"
    # A peer reaches it (so the refusals below mean something) ...
    assert "open" in split.exec("web1", probe, check=False)[1]
    # ... a host of the cluster that is no web host does not (the firewall), ...
    assert "open" not in split.exec("lb1", probe, check=False)[1]
    # ... and syncthing's API answers on the host itself only.
    api = f"timeout 3 bash -c '</dev/tcp/{web2}/8384' && echo open"
    assert "open" not in split.exec("web1", api, check=False)[1]
    _, listening = split.exec("web2", "ss -Htln")
    assert f"{web2}:22000 " in listening and "127.0.0.1:8384 " in listening, listening
    for port in (22000, 8384):
        assert f"0.0.0.0:{port} " not in listening and f"*:{port} " not in listening, listening
    # No discovery, relays or NAT traversal: nothing leaves the cluster.
    _, config = split.exec("web2", "cat /etc/wordpress-lb/syncthing.xml")
    for off in ("globalAnnounceEnabled", "localAnnounceEnabled", "relaysEnabled", "natEnabled"):
        assert f"<{off}>false</{off}>" in config
    _, mode = split.exec("web2", "stat -c '%U:%G %a' /etc/wordpress-lb/syncthing.xml "
                                 "/var/lib/wordpress/syncthing/key.pem")
    assert mode.strip().splitlines() == ["root:wordpress 640", "wordpress:wordpress 600"], mode


def test_the_mesh_runs_as_wordpress_and_reports_status(split):
    for host in ("web1", "web2"):
        _, user = split.exec(host, "ps -o user:20= -C syncthing")
        assert set(user.split()) == {"wordpress"}, user
        _, user = split.exec(host, "ps -o user:20= -C inotifywait")
        assert set(user.split()) == {"wordpress"}, user  # the watcher
    run = pyinfra(split.hosts_file, "pyinfra_wordpress_lb.facts.syncthing.Status", "--limit", "web",
                  deploy="fact")
    status = json.loads(run.output[run.output.index("{"):run.output.rindex("}") + 1])
    assert status["web1"]["active"] and status["web1"]["peers"]["web2"]["connected"]
    assert status["web2"]["peers"]["web1"] == {"connected": True, "lacks": 0, "lacking": []}


# Destructive: a bed of their own, three web hosts.

@pytest.fixture(scope="module")
def mesh_bed(beds):
    bed, _, second = beds.deployed("mesh", "13")
    assert second.changed == 0
    return bed


WEBS = ["web1", "web2", "web3"]


def away(bed, host: str, how: str):
    """Take a web host away: `stop` (a clean shutdown), `kill` (SIGKILL to the whole
    container: a host dying) or `cut` (off the network, still running)."""
    if how == "stop":
        bed.container(host).stop(timeout=20)
    elif how == "kill":
        bed.container(host).kill()
    else:
        network = testbed.client().networks.get(f"pwlb-{bed.name}")
        network.disconnect(bed.container(host))


def back(bed, host: str, how: str, then=None):
    """Bring the host back; `then()` runs at once (while it boots), before waiting for it."""
    if how == "cut":
        network = testbed.client().networks.get(f"pwlb-{bed.name}")
        network.connect(bed.container(host), ipv4_address=bed.host(host).address)
    else:
        bed.container(host).start()
    found = then() if then else None
    if how != "cut":
        bed.wait_booted(host)
    return found


def never_stale(bed, host: str, path: str, seconds: float = 90) -> list[str]:
    """From the host's return, GETs of a file written while it was away, straight to its
    backend: each is refused, 503 (catching up) or the file; a 404 or an old copy is a
    stale answer. Returns what it saw, stops once the file was served 5 times."""
    url = f"http://127.0.0.1/wp-content/{path}"
    seen, served, deadline = [], 0, time.monotonic() + seconds
    while time.monotonic() < deadline and served < 5:
        try:
            code, out = bed.exec(host, f"curl -s -m 2 -w '\\n%{{http_code}}' {url}", check=False)
        except Exception:  # noqa: BLE001 - the container is still starting
            code, out = 1, "000"
        lines = out.strip().splitlines() or ["000"]
        status, body = lines[-1], "\n".join(lines[:-1]).strip()
        seen.append(status if status != "200" else f"200:{body}")
        served += status == "200"
        time.sleep(0.2)
    return seen


@pytest.mark.own_bed("mesh")
@pytest.mark.parametrize("how", ["stop", "kill", "cut"])
def test_deleted_while_a_host_is_away_stays_deleted(mesh_bed, how):
    """100 files and 3 directory trees, everywhere; web3 goes away; web1 deletes them
    and rewrites one file; web3 returns: 0 resurrected on every host, the newer file
    everywhere, and web3 never served a stale copy on its way back."""
    bed, top = mesh_bed, f"{mesh.UPLOADS}/outage-{how}"
    bed.exec("web1", f"mkdir -p {top}/files {top}/t1/a/b {top}/t2/c {top}/t3/d/e/f && "
                     f"for i in $(seq 1 100); do echo $i > {top}/files/f$i; done && "
                     f"for t in t1/a/b t2/c t3/d/e/f; do echo x > {top}/$t/x; done && "
                     f"echo old > {top}/shared.txt", user="wordpress")
    assert mesh.wait_quiet(bed, WEBS, timeout=60)
    assert len(mesh.tree_digest(bed, "web3", top)) == 104

    away(bed, "web3", how)
    try:
        bed.exec("web1", f"rm -r {top}/files {top}/t1 {top}/t2 {top}/t3 && "
                         f"echo newer > {top}/shared.txt", user="wordpress")
        assert mesh.wait_quiet(bed, ["web1", "web2"], timeout=60)
    finally:
        # From the moment it starts: GETs of the rewritten file, straight to its backend.
        seen = back(bed, "web3", how, then=lambda: never_stale(
            bed, "web3", f"uploads/outage-{how}/shared.txt") if how != "cut" else None)
    if how != "cut":  # (a host cut off kept serving: it had no outage of its own)
        assert "404" not in seen and "200:old" not in seen, seen
        assert "200:newer" in seen, seen
        runs: list[list] = []
        for answer in seen:
            if runs and runs[-1][0] == answer:
                runs[-1][1] += 1
            else:
                runs.append([answer, 1])
        print(f"{how}: web3 answered, in order: " + ", ".join(f"{a} x{n}" for a, n in runs))
        # The watcher came back with the mesh (enabled beside it, not by the deploy).
        assert bed.exec("web3", "systemctl is-active wordpress-lb-mesh-watch.service",
                        check=False)[1].strip() == "active"
    assert mesh.wait_quiet(bed, WEBS, timeout=120)
    for host in WEBS:
        left = mesh.tree_digest(bed, host, top)
        assert list(left) == ["./shared.txt"], (host, sorted(left)[:5], len(left))
        assert bed.exec(host, f"cat {top}/shared.txt")[1].strip() == "newer", host
        assert bed.exec(host, f"find {top} -type d | wc -l")[1].strip() == "1", host


@pytest.mark.own_bed("mesh")
def test_a_host_killed_mid_burst_loses_nothing(mesh_bed):
    """300 files written on the three hosts at once (100 each); web3 is killed during
    its burst and starts again: every file any host has is on every host, the same."""
    bed, top = mesh_bed, f"{mesh.UPLOADS}/burst300"
    for host in WEBS:
        bed.container(host).exec_run(
            ["sh", "-c", f"mkdir -p {top} && for i in $(seq 1 100); do head -c $((i * 53)) "
                         f"/dev/urandom > {top}/{host}-$i.bin; sleep 0.03; done"],
            user="wordpress", detach=True)
    time.sleep(1.5)
    bed.container("web3").kill()
    bed.container("web3").start()
    bed.wait_booted("web3")
    assert mesh.wait_quiet(bed, WEBS, timeout=180)
    trees = {host: mesh.tree_digest(bed, host, top) for host in WEBS}
    written = {h: len([p for p in trees["web1"] if p.startswith(f"./{h}-")]) for h in WEBS}
    assert written["web1"] == written["web2"] == 100, written
    assert 0 < written["web3"] < 100, written  # killed mid-burst
    assert trees["web1"] == trees["web2"] == trees["web3"]


@pytest.mark.own_bed("mesh")
def test_the_same_path_written_on_two_hosts_at_once_ends_the_same_everywhere(mesh_bed):
    bed, top = mesh_bed, f"{mesh.UPLOADS}/race"
    bed.exec("web1", f"mkdir -p {top}", user="wordpress")
    assert mesh.wait_quiet(bed, WEBS, timeout=60)

    def write(host: str):
        bed.exec(host, f"for i in $(seq 1 50); do echo {host}-$i-$(date +%s%N) > {top}/p$i; "
                       "done", user="wordpress")

    for i in range(3):  # three rounds: web1 and web2 write the same 50 paths at once
        threads = [threading.Thread(target=write, args=(h,)) for h in ("web1", "web2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert mesh.wait_quiet(bed, WEBS, timeout=120)
    trees = {host: mesh.tree_digest(bed, host, top) for host in WEBS}
    assert len(trees["web1"]) == 50, sorted(trees["web1"])
    differing = [p for p in trees["web1"] if len({trees[h].get(p) for h in WEBS}) > 1]
    assert differing == [], differing
    _, conflicts = bed.exec("web1", f"ls -a {top} | grep -c sync-conflict", check=False)
    assert conflicts.strip() == "0"


def php(bed, host: str, code: str) -> str:
    """PHP with WordPress (and its admin functions) loaded, as the pool user."""
    script = ("$_SERVER['HTTP_HOST'] = '127.0.0.1'; require './wp-load.php'; "
              f"require_once ABSPATH . 'wp-admin/includes/admin.php'; {code}")
    return bed.exec(host, f"cd /var/www/wordpress/current && runuser -u wordpress -- "
                          f"php -r {shlex.quote(script)}")[1]


@pytest.mark.own_bed("mesh")
def test_a_plugin_deleted_while_a_host_is_down_stays_gone(mesh_bed):
    bed = mesh_bed
    plugin = "/var/www/wordpress/shared/wp-content/plugins/pwlb-doomed"
    bed.exec("web1", f"mkdir -p {plugin}/inc && printf '<?php\\n/*\\n * Plugin Name: "
                     f"pwlb-doomed\\n */\\n' > {plugin}/pwlb-doomed.php && "
                     f"echo '<?php' > {plugin}/inc/vulnerable.php", user="wordpress")
    assert mesh.wait_quiet(bed, WEBS, timeout=60)
    bed.exec("web3", f"test -f {plugin}/inc/vulnerable.php")
    bed.container("web3").stop(timeout=20)
    try:
        out = php(bed, "web1", "$r = delete_plugins(array('pwlb-doomed/pwlb-doomed.php')); "
                               "echo $r === true ? 'deleted' : 'failed';")
        assert out.strip().endswith("deleted"), out
    finally:
        bed.container("web3").start()
        bed.wait_booted("web3")
    assert mesh.wait_quiet(bed, WEBS, timeout=120)
    for host in WEBS:
        assert bed.exec(host, f"test -e {plugin}", check=False)[0] != 0, host
    run = pyinfra(bed.hosts_file)
    assert run.returncode == 0, run.why()
    assert mesh.wait_quiet(bed, WEBS, timeout=60)
    for host in WEBS:
        assert bed.exec(host, f"test -e {plugin}", check=False)[0] != 0, host
    assert pyinfra(bed.hosts_file).changed == 0


def without_web3(bed, tmp_path):
    """The bed's inventory without web3 (the same secrets)."""
    hosts = bed.hosts_file.read_text()
    start = hosts.index("[hosts.web3]")
    end = hosts.index("[hosts.", start + 1)
    smaller = tmp_path / "hosts.toml"
    smaller.write_text(hosts[:start] + hosts[end:])
    secrets = tmp_path / "hosts.secrets.json"
    secrets.write_text((bed.dir / "hosts.secrets.json").read_text())
    secrets.chmod(0o600)
    return smaller


def drained(bed, host: str, tmp_path):
    """The bed's inventory with `drain = true` on one web host."""
    text = bed.hosts_file.read_text().replace(f"[hosts.{host}]\n", f"[hosts.{host}]\ndrain = true\n")
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    secrets = tmp_path / "hosts.secrets.json"
    secrets.write_text((bed.dir / "hosts.secrets.json").read_text())
    secrets.chmod(0o600)
    return path


def deploy_under_load(bed, hosts_file, uploads):
    """A deploy while GETs of the front page and of existing uploads go through the
    balancer: none may fail, none of the uploads may be missing."""
    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1"] + \
        [bed.site_url + path for path in uploads]
    with Background(urls, verify=wp.verify(bed), fresh=True) as load:
        run = pyinfra(hosts_file)
    assert run.returncode == 0, run.why()
    print(f"{hosts_file}: {load.result.sent} GETs, {load.result.failed} failed, "
          f"served by {dict(load.result.served_by)}")
    assert load.result.sent > 50 and load.result.failed == 0, load.result.errors
    again = pyinfra(hosts_file)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    return run, load.result


@pytest.mark.own_bed("mesh")
def test_remove_add_and_drain_web_hosts_without_a_failed_request(mesh_bed, tmp_path_factory):
    bed = mesh_bed
    web3 = bed.host("web3").address
    session = wp.admin(bed)
    uploads = [wp.upload(session, bed, f"scale-{i}.png") for i in range(3)]
    assert mesh.wait_quiet(bed, ["web1", "web2", "web3"])

    # Remove web3: the balancer stops sending to it, then its mesh access and database
    # account go.
    removed, _ = deploy_under_load(bed, without_web3(bed, tmp_path_factory.mktemp("rm")), uploads)
    order = list(removed.results)
    assert order.index("Database | Drop database accounts of web hosts no longer in the inventory") \
        > order.index("Balancer | Reload nginx when what it reads changed")
    assert "Sync mesh | Share the mesh with the current web hosts only" in removed.changed_ops
    for host in ("web1", "web2"):
        assert web3 not in bed.exec(host, "cat /etc/wordpress-lb/syncthing.xml")[1], host
    assert web3 not in bed.exec("lb1", "cat /etc/nginx/sites-available/wordpress-lb")[1]
    code, out = wp.mariadb_as(bed, "web3", "wordpress", wp.secrets(bed)["db_password"],
                              bed.host("db1").address)
    # Its account is gone, and the database host's firewall no longer admits it.
    assert code != 0 and ("Can't connect" in out or "is not allowed to connect" in out), out
    accounts = bed.exec("db1", "mariadb -N -e \"SELECT host FROM mysql.user WHERE user='wordpress'\"")[1]
    assert web3 not in accounts.split()

    # web3 comes back as a new machine would: nothing of WordPress on it. It gets the
    # shared content from a peer and serves only once verified.
    bed.exec("web3", "systemctl stop syncthing-wordpress; rm -rf /var/www/wordpress "
                     "/var/lib/wordpress/syncthing")
    added, load = deploy_under_load(bed, bed.hosts_file, uploads)
    names = added.changed_ops
    assert "Sync mesh | Wait again until this host holds what its peers hold (the mesh restarted)" \
        in names
    assert "Balancer | New web host web3 serves the site" in added.results
    for path in uploads:
        bed.exec("web3", f"test -s /var/www/wordpress/shared{path}")
    served = set()
    for i in range(30):  # (query strings: past the page cache, to PHP)
        served.add(wp.get(bed.site_url, f"/?n={i}", bed=bed).headers["X-Served-By"])
    assert served == {"web1", "web2", "web3"}
    bed.exec("web3", f"echo back > {mesh.UPLOADS}/from-web3.txt", user="wordpress")
    assert mesh.wait_quiet(bed, ["web1", "web2", "web3"])
    assert bed.exec("web1", f"cat {mesh.UPLOADS}/from-web3.txt")[1].strip() == "back"

    # Drain web1: no new request reaches it; then it is back.
    drain_file = drained(bed, "web1", tmp_path_factory.mktemp("drain"))
    _, load = deploy_under_load(bed, drain_file, uploads)
    after = [wp.get(bed.site_url, f"/?n={i}", bed=bed).headers["X-Served-By"] for i in range(30)]
    assert "web1" not in after
    assert "# drained: no new requests" in bed.exec("lb1", "cat /etc/nginx/sites-available/wordpress-lb")[1]
    deploy_under_load(bed, bed.hosts_file, uploads)
    back = {wp.get(bed.site_url, f"/?n={i}", bed=bed).headers["X-Served-By"] for i in range(30)}
    assert "web1" in back


@pytest.mark.own_bed("mesh")
def test_a_host_down_before_the_run_is_listed_and_the_others_deploy_without_it(mesh_bed):
    """web3 stopped: a full run lists it with the other problems and changes nothing;
    `--exclude web3` deploys the others, the balancer keeps web3 out of the pool
    while it is away, and once web3 is back a full run puts it back."""
    bed = mesh_bed
    web3 = bed.host("web3").address
    bed.container("web3").stop(timeout=20)
    try:
        refused = pyinfra(bed.hosts_file, "--data", "admin_email=nope")
        assert refused.returncode != 0 and refused.changed == 0
        assert "Traceback" not in refused.output, refused.why()
        assert "web3: cannot be reached over SSH" in refused.output, refused.why()
        assert "admin_email 'nope' is not an email address" in refused.output
        limited = pyinfra(bed.hosts_file, "--exclude", "web3")
        assert limited.returncode == 0, limited.why()
        assert "web3 (left out of this run) cannot be reached" in limited.output
        _, conf = bed.exec("lb1", "cat /etc/nginx/sites-available/wordpress-lb")
        assert f"server {web3}:80 max_fails=1 fail_timeout=10s down;" in conf
        # web3 stays a device of its peers: what they change meanwhile waits for it, and
        # status names it.
        _, config = bed.exec("web1", "cat /etc/wordpress-lb/syncthing.xml")
        assert f"<address>tcp://{web3}:22000</address>" in config
        bed.exec("web1", f"echo meanwhile > {mesh.UPLOADS}/meanwhile.txt", user="wordpress")
        time.sleep(2)
        waiting = mesh.status(bed, "web1")["peers"]["web3"]
        assert not waiting["connected"] and waiting["lacks"] >= 1, waiting
        assert any("meanwhile.txt" in p for p in waiting["lacking"]), waiting
        for _ in range(20):  # the site answers from the others meanwhile
            assert wp.get(bed.site_url, "/?limited=1", bed=bed).status_code == 200
    finally:
        bed.container("web3").start()
        bed.wait_booted("web3")
    back = pyinfra(bed.hosts_file)
    assert back.returncode == 0, back.why()
    assert bed.exec("web3", f"cat {mesh.UPLOADS}/meanwhile.txt")[1].strip() == "meanwhile"
    _, conf = bed.exec("lb1", "cat /etc/nginx/sites-available/wordpress-lb")
    assert f"server {web3}:80 max_fails=1 fail_timeout=10s;" in conf
    assert pyinfra(bed.hosts_file).changed == 0
