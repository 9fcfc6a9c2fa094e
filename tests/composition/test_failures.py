"""A host that fails during a run: the whole CLI run on @fake hosts (tests/fakerun.py),
and what the others decide once it failed (tests/fakedeploy.plan with `failed`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import fakerun
from tests.fakedeploy import plan

SPLIT = {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1"]}
SWITCH = "WordPress | Serve WordPress 7.1.0 (one atomic switch)"
UPGRADE = ("WordPress install | Upgrade the database when the served release needs it "
           "(once per database)")
DOWNLOAD = "WordPress | Download the WordPress 7.1.0 archive"
HERE = Path(__file__).resolve().parent

# Whole CLI runs, started in the background when the tests are collected (conftest.py).
CLI_RUNS = {
    "ok": dict(groups=SPLIT),
    "download": dict(groups=SPLIT, answers={"web2": fakerun.download_fails()}),
    "checks": dict(groups=SPLIT, answers={
        "lb1": {"http://10.0.0.12:80/": ["PWLB-STATUS:502", "PWLB-EXIT:0"]}}),
    "status": dict(groups=SPLIT, deploy=str(HERE / "status_with_a_handler.py"),
                   args=("--data", "status_format=json")),
    "dry": dict(groups=SPLIT, args=("--dry",)),
    "unreachable": dict(groups=SPLIT, unreachable=("web2",), data={"admin_email": "nope"}),
    "exclude": dict(groups=SPLIT, unreachable=("web2",), args=("--exclude", "web2")),
    "facts": dict(groups=SPLIT, answers={
        "web2": {"cat /etc/group": {"success": False, "stderr": "connection lost"}}}),
}


def _no_internal_error(run):
    assert "Traceback" not in run.output and "internal exception" not in run.output, run.why()


def test_a_run_where_nothing_fails_succeeds(cli):
    """The harness itself: the same fake cluster with no failure exits 0, web hosts
    switch, the database upgrade is asked."""
    run, _ = cli("ok")
    _no_internal_error(run)
    assert run.returncode == 0, run.why()
    assert fakerun.step(run.output, SWITCH) == {"web1": "Success", "web2": "Success"}
    assert "failed at" not in run.output
    # Each step lists the hosts it is for, not every host (deploys/_speed.py).
    assert "Skipped" not in run.output
    switch = run.output.split(f"--> Starting operation: {SWITCH}")[1].split("-->")[0]
    assert "@fake/lb1" not in switch and "@fake/db1" not in switch


def test_a_failed_download_on_one_web_host_switches_no_web_host(cli):
    run, _ = cli("download")
    _no_internal_error(run)
    assert run.returncode == 1, run.why()
    # Named: the host and the step, at once and again after the results.
    named = f"@fake/web2 failed at '{DOWNLOAD}'"
    assert run.output.count(named) == 2, run.why()
    assert "Error" in fakerun.step(run.output, DOWNLOAD)["web2"]
    # web1 had the release unpacked, but the cluster does not switch without web2.
    assert fakerun.step(run.output, SWITCH) == {"web1": "No changes"}
    assert fakerun.step(run.output, UPGRADE) == {"web1": "No changes"}
    # The rest of the cluster was deployed, verified without the failed backend.
    through = fakerun.step(run.output, "Verify | The site answers through this balancer")
    assert through["lb1"].startswith("The site answers: https://www.example.com"), through
    assert run.results["Verify | Backend 10.0.0.12:80 serves the site"]["error"] == 0


def test_a_host_lost_in_the_middle_of_checks_fails_alone(cli):
    """A check that fails while the run goes on (here the backend web2 answers 502 to the
    balancer) fails that host's run with a message, not the whole run with a traceback."""
    run, _ = cli("checks")
    _no_internal_error(run)
    assert run.returncode == 1
    assert "the backend 10.0.0.12:80 does not answer as expected" in run.output
    assert "@fake/lb1 failed at 'Verify | Backend 10.0.0.12:80 serves the site'" in run.output


def test_once_a_web_host_failed_no_switch_no_upgrade_and_it_is_out_of_the_pool(tmp_path):
    result = plan(SPLIT, tmp_path / "s.json", failed=("web2",))
    assert "web2" not in result
    web1 = dict(result["web1"])
    assert web1[SWITCH] == [] and web1[UPGRADE] == []
    conf = " ".join(c for n, cs in result["lb1"] if n == "Balancer | Write the balancer vhost"
                    for c in cs)
    assert "server 10.0.0.11:80 max_fails=1 fail_timeout=10s;" in conf
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s down;" in conf
    assert "# failed during the last deploy" in conf
    assert "server 10.0.0.11:80 max_fails=0 backup;" in conf
    assert "server 10.0.0.12:80 max_fails=0 backup;" not in conf
    verify = dict(result["lb1"])
    assert verify["Verify | Backend 10.0.0.12:80 serves the site"] == []


@pytest.mark.parametrize("failed", [("lb1",), ("db1",)])
def test_a_failed_balancer_or_database_host_does_not_stop_the_switch(tmp_path, failed):
    """Only web hosts decide the release: they all have it, so they all switch."""
    result = plan(SPLIT, tmp_path / "s.json", failed=failed)
    assert dict(result["web1"])[SWITCH] != [] and dict(result["web2"])[SWITCH] != []


RUNNING = ["Id=wordpress-backup.timer", "SubState=waiting", "",
           "Id=wordpress-backup.service", "SubState=running", "",
           "Id=syncthing-wordpress.service", "SubState=running", "",
           "Id=wordpress-cron.timer", "SubState=waiting"]


def test_a_restore_pauses_backups_mesh_and_cron_until_the_site_is_back(tmp_path, monkeypatch):
    from pyinfra_wordpress_lb.deploys import restore

    archive = tmp_path / "wp-content.tar.gz"  # @fake cannot fetch it from the db host
    archive.write_bytes(b"")
    monkeypatch.setattr(restore, "local_archive", lambda name: str(archive))
    answers = {"backup=": "backup=20261130T040000Z 5242880", "SHA256SUMS": "ok",
               "--property SubState": RUNNING}
    result = plan(SPLIT, tmp_path / "s.json", deploy_file="restore.py",
                  fake_responses=answers)
    pause = "Restore | Pause backups, the mesh and WP-Cron while the site is restored"
    resume = "Restore | Start what paused for the restore again"
    db1, web1 = dict(result["db1"]), dict(result["web1"])
    assert db1[pause] == ["systemctl stop wordpress-backup.timer wordpress-backup.service"]
    assert web1[pause] == ["systemctl stop syncthing-wordpress.service wordpress-cron.timer"]
    # Started again, after the site is back: the timer, not the backup it was taking.
    assert db1[resume] == ["systemctl start wordpress-backup.timer"]
    assert web1[resume] == ["systemctl start syncthing-wordpress.service wordpress-cron.timer"]
    order = result.order
    load = "Restore | Replace the database with backup 20261130T040000Z"
    content = "Restore | Make wp-content backup 20261130T040000Z's"
    assert order.index(pause) < order.index(load) < order.index(resume)
    assert order.index(pause) < order.index(content) < order.index(resume)
    assert order.index("Restore | Remove the maintenance page") < order.index(resume)
    loads = " ".join(c for n, cs in result["db1"] if n == load for c in cs)
    assert loads.startswith("bash -o pipefail -c ")


def test_a_restore_onto_a_galera_cluster_loads_on_the_backup_node_and_waits_on_the_others(
        tmp_path, monkeypatch):
    """The backups live on the last db node: the dump is loaded there (it replicates),
    the other nodes then wait until they have applied it before the maintenance page
    goes."""
    from pyinfra_wordpress_lb.deploys import restore

    archive = tmp_path / "wp-content.tar.gz"
    archive.write_bytes(b"")
    monkeypatch.setattr(restore, "local_archive", lambda name: str(archive))
    answers = {"backup=": "backup=20261130T040000Z 5242880", "SHA256SUMS": "ok"}
    groups = {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1", "db2", "db3"]}
    result = plan(groups, tmp_path / "s.json", deploy_file="restore.py", fake_responses=answers)
    load = "Restore | Replace the database with backup 20261130T040000Z"
    wait = "Restore | Wait until this node has applied backup 20261130T040000Z's load"
    names = {h: [n for n, _ in result[h]] for h in ("db1", "db2", "db3")}
    assert load in names["db3"] and wait not in names["db3"]
    for other in ("db1", "db2"):
        assert wait in names[other] and load not in names[other], other
        waits = dict(result[other])[wait]
        assert waits == ["mariadb -N -B -e 'SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) "
                         "FROM information_schema.tables WHERE table_schema = "
                         "'\"'\"'wordpress'\"'\"'' | grep -qvx 0"], waits
    order = result.order
    assert order.index(load) < order.index(wait) < order.index(
        "Restore | Remove the maintenance page")


def test_a_galera_backup_records_the_clusters_position(tmp_path):
    groups = {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1", "db2", "db3"]}
    script = dict(plan(groups, tmp_path / "s.json")["db3"])["Backups | Install the backup script"]
    text = "\n".join(script)
    assert "WSREP_LAST_COMMITTED" in text and '"galera_position": $galera_position_json' in text
    single = dict(plan(SPLIT, tmp_path / "t.json")["db1"])["Backups | Install the backup script"]
    assert "WSREP" not in "\n".join(single) and "galera_position_json=null" in "\n".join(single)


def test_status_exits_with_its_verdict(cli):
    """status.py's exit status is its verdict (pyinfra itself knows only 0 and 1): here
    the fake cluster runs nothing, so 1 (attention), with no failed host; and the
    process ends normally (other exit handlers run)."""
    run, _ = cli("status")
    assert "PWLB-OTHER-HANDLER-RAN" in run.output
    _no_internal_error(run)
    report, _ = json.JSONDecoder().raw_decode(run.output)
    assert report["verdict"] == 1
    assert run.returncode == 1
    assert run.results["Status | Report the cluster's health"]["error"] == 0


def test_a_dry_run_writes_nothing(cli):
    run, where = cli("dry")
    _no_internal_error(run)
    assert run.returncode == 0, run.why()
    assert not (where / "hosts.secrets.json").exists()
    assert not (where / "hosts.ca.crt").exists()
    # The same plan, run for real, writes both.
    run, where = cli("ok")
    assert run.returncode == 0
    assert (where / "hosts.secrets.json").exists() and (where / "hosts.ca.crt").exists()


def test_an_unreachable_host_is_listed_with_every_other_problem(cli):
    run, _ = cli("unreachable")
    _no_internal_error(run)
    assert run.returncode == 1
    assert "2 problems with the inventory or settings; nothing was changed" in run.output
    assert "--> pyinfra error: 2 problems" in run.output  # no file and line of ours
    assert "- web2: cannot be reached over SSH" in run.output
    assert "(--exclude web2)" in run.output
    assert "- admin_email 'nope' is not an email address" in run.output


def test_exclude_deploys_the_reachable_hosts_and_keeps_the_down_one_out(cli):
    run, _ = cli("exclude")
    _no_internal_error(run)
    assert run.returncode == 0, run.why()
    assert "web2 (left out of this run) cannot be reached" in run.output
    assert fakerun.step(run.output, SWITCH) == {"web1": "Success"}
    assert "Verify | Backend 10.0.0.12:80 serves the site" not in run.results


def test_a_host_that_cannot_be_reached_is_out_of_the_pool_and_stays_in_the_mesh(tmp_path):
    result = plan(SPLIT, tmp_path / "s.json", unreachable=("web2",), show_secrets=True)
    conf = " ".join(c for n, cs in result["lb1"] if n == "Balancer | Write the balancer vhost"
                    for c in cs)
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s down;" in conf
    assert "# unreachable during the last deploy" in conf
    mesh = " ".join(c for n, cs in result["web1"] if n == "Sync mesh | Write the mesh configuration"
                    for c in cs)
    # Still a device of its peers: what they change meanwhile waits for it.
    assert 'name="@fake/web2"' in mesh and "<address>tcp://10.0.0.12:22000</address>" in mesh


def test_a_connection_lost_under_paramiko_fails_its_host_like_any_error():
    """paramiko's EOFError (a host killed mid-command) becomes an OSError, which pyinfra
    handles by failing that host; EOFError itself stopped the whole run."""
    from pyinfra.connectors.ssh import SSHConnector

    from pyinfra_wordpress_lb.deploys import _failures

    class Lost:
        host = type("Host", (), {"name": "web2"})()

        @_failures._connection_lost_is_an_os_error
        def run_shell_command(self, command):
            raise EOFError()

    with pytest.raises(ConnectionResetError, match="connection to web2 was lost"):
        Lost().run_shell_command("true")
    _failures._handle_lost_connections()
    _failures._handle_lost_connections()  # once is enough: not wrapped twice
    method = SSHConnector.run_shell_command
    assert method.pwlb_wrapped and not getattr(method.__wrapped__, "pwlb_wrapped", False)


def test_a_host_whose_facts_fail_mid_run_is_named_too(cli):
    """A fact that cannot be loaded while a step runs (as when the connection is lost)
    fails the host without an operation error: it is named all the same."""
    run, _ = cli("facts")
    _no_internal_error(run)
    assert run.returncode == 1
    assert "@fake/web2 failed at 'Common base | Add the wordpress system group'" in run.output
    assert fakerun.step(run.output, SWITCH) == {"web1": "No changes"}
