"""The lsyncd mesh: propagation, no loss, deletes, quiet, catch-up, confinement.

Read-only-ish checks run on the shared split bed; stopping a host and changing the
membership run on a `mesh` bed of their own (three web hosts).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration import mesh
from tests.integration import wp
from tests.integration.load import Background
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
    # Quiet means quiet: no rsync starts again over ten seconds (no echo loop).
    for _ in range(5):
        for host in ("web1", "web2"):
            code, _ = split.exec(host, "pgrep -x rsync", check=False)
            assert code != 0, f"rsync still running on {host}"
        time.sleep(2)


def test_the_mesh_key_only_rsyncs_into_the_docroot(split):
    web2 = split.host("web2").address
    ssh = ("ssh -i /var/lib/wordpress/.ssh/mesh_ed25519 -o BatchMode=yes "
           "-o UserKnownHostsFile=/var/lib/wordpress/.ssh/known_hosts")
    # The key works for what it is for (so the refusals below mean something).
    split.exec("web1", "echo ok > /tmp/allowed.txt", user="wordpress")
    split.exec("web1", f"rsync -e '{ssh}' /tmp/allowed.txt wordpress@{web2}:/allowed.txt",
               user="wordpress")
    split.exec("web2", "rm /var/www/wordpress/shared/wp-content/allowed.txt")
    # No shell, no pty.
    code, out = split.exec("web1", f"{ssh} wordpress@{web2} id 2>&1", check=False, user="wordpress")
    assert code != 0 and "uid=" not in out, out
    code, out = split.exec("web1", f"{ssh} -tt wordpress@{web2} /bin/sh -c id 2>&1",
                           check=False, user="wordpress")
    assert code != 0 and "uid=" not in out, out
    # Write-only: it cannot read a peer's files (wp-config.php's secrets, uploads).
    code, out = split.exec("web1", f"rsync -e '{ssh}' wordpress@{web2}:/index.php /tmp/read.php 2>&1",
                           check=False, user="wordpress")
    assert code != 0, out
    split.exec("web1", "test ! -e /tmp/read.php")
    # No escape from the docroot.
    split.exec("web1", "echo x > /tmp/escape.txt", user="wordpress")
    for target in ("/../../../../tmp/escaped.txt", "../escaped.txt"):
        code, out = split.exec("web1", f"rsync -e '{ssh}' /tmp/escape.txt wordpress@{web2}:{target} 2>&1",
                               check=False, user="wordpress")
        assert code != 0, (target, out)
    code, found = split.exec("web2", "ls /tmp/escaped.txt /var/www/escaped.txt "
                                     "/escaped.txt 2>/dev/null", check=False)
    assert found.strip() == ""
    # Not from a host outside the mesh, even holding the key.
    key = split.exec("web1", "cat /var/lib/wordpress/.ssh/mesh_ed25519")[1]
    split.exec("lb1", f"umask 077; cat > /root/stolen <<'EOF'\n{key}EOF")
    code, out = split.exec("lb1", f"rsync -e 'ssh -i /root/stolen -o BatchMode=yes "
                                  f"-o StrictHostKeyChecking=no' /etc/hostname "
                                  f"wordpress@{web2}:/stolen.txt 2>&1", check=False)
    split.exec("lb1", "rm -f /root/stolen")
    assert code != 0
    code, _ = split.exec("web2", "test -e /var/www/wordpress/shared/wp-content/stolen.txt", check=False)
    assert code != 0


def test_the_mesh_runs_as_wordpress_and_reports_status(split):
    for host in ("web1", "web2"):
        _, user = split.exec(host, "ps -o user:20= -C lsyncd")
        assert user.split() == ["wordpress"], user
    run = pyinfra(split.hosts_file, "pyinfra_wordpress_lb.facts.lsyncd.Status", "--limit", "web", deploy="fact")
    status = json.loads(run.output[run.output.index("{"):run.output.rindex("}") + 1])
    assert status["web1"]["active"] and status["web1"]["peers"] == [split.host("web2").address]
    assert status["web2"]["peers"] == [split.host("web1").address]


# Destructive: a bed of their own, three web hosts.

@pytest.fixture(scope="module")
def mesh_bed(beds):
    bed, _, second = beds.deployed("mesh", "13")
    assert second.changed == 0
    return bed


@pytest.mark.own_bed("mesh")
def test_a_host_that_was_down_catches_up_without_losing_newer_files(mesh_bed):
    bed = mesh_bed
    bed.exec("web1", f"echo old > {mesh.UPLOADS}/shared.txt", user="wordpress")
    assert mesh.wait_quiet(bed, ["web1", "web2", "web3"])
    assert bed.exec("web2", f"cat {mesh.UPLOADS}/shared.txt")[1].strip() == "old"

    bed.container("web2").stop(timeout=20)
    try:
        bed.exec("web1", f"sleep 1; echo newer > {mesh.UPLOADS}/shared.txt; "
                         f"mkdir -p {mesh.UPLOADS}/outage && for i in $(seq 1 20); do "
                         f"echo $i > {mesh.UPLOADS}/outage/f$i.txt; done", user="wordpress")
        time.sleep(3)
    finally:
        bed.container("web2").start()
    bed.wait_booted("web2")
    assert mesh.wait_quiet(bed, ["web1", "web2", "web3"], timeout=120)
    for host in ("web1", "web2", "web3"):
        # The newer copy won everywhere; web2's older one overwrote nothing.
        assert bed.exec(host, f"cat {mesh.UPLOADS}/shared.txt")[1].strip() == "newer", host
        files = mesh.tree_digest(bed, host, f"{mesh.UPLOADS}/outage")
        assert len(files) == 20, (host, sorted(files))


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
    assert "Sync mesh | Admit only the current web hosts to the mesh" in removed.changed_ops
    for host in ("web1", "web2"):
        assert web3 not in bed.exec(host, "cat /etc/lsyncd/wordpress.conf.lua")[1], host
        assert web3 not in bed.exec(host, "cat /var/lib/wordpress/.ssh/authorized_keys")[1], host
    assert web3 not in bed.exec("lb1", "cat /etc/nginx/sites-available/wordpress-lb")[1]
    code, out = wp.mariadb_as(bed, "web3", "wordpress", wp.secrets(bed)["db_password"],
                              bed.host("db1").address)
    # Its account is gone, and the database host's firewall no longer admits it.
    assert code != 0 and ("Can't connect" in out or "is not allowed to connect" in out), out
    accounts = bed.exec("db1", "mariadb -N -e \"SELECT host FROM mysql.user WHERE user='wordpress'\"")[1]
    assert web3 not in accounts.split()

    # web3 comes back as a new machine would: nothing of WordPress on it. It gets the
    # shared content from a peer and serves only once verified.
    bed.exec("web3", "systemctl stop lsyncd-wordpress; rm -rf /var/www/wordpress")
    added, load = deploy_under_load(bed, bed.hosts_file, uploads)
    names = added.changed_ops
    assert "Sync mesh | Give web3 the shared content from this peer" in names
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
        # web3's pinned host key stayed with its peers.
        _, pins = bed.exec("web1", "cat /var/lib/wordpress/.ssh/known_hosts")
        assert web3 in pins
        for _ in range(20):  # the site answers from the others meanwhile
            assert wp.get(bed.site_url, "/?limited=1", bed=bed).status_code == 200
    finally:
        bed.container("web3").start()
        bed.wait_booted("web3")
    back = pyinfra(bed.hosts_file)
    assert back.returncode == 0, back.why()
    _, conf = bed.exec("lb1", "cat /etc/nginx/sites-available/wordpress-lb")
    assert f"server {web3}:80 max_fails=1 fail_timeout=10s;" in conf
    assert pyinfra(bed.hosts_file).changed == 0
