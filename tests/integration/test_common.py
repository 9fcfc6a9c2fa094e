"""The common base on real hosts: split on Debian 13, seed on Debian 12, over SSH."""

from __future__ import annotations

import pytest

CASES = [("split", "13"), ("seed", "12")]


@pytest.mark.parametrize("topology,release", CASES)
def test_deploy_then_rerun_changes_nothing(beds, topology, release):
    bed, first, second = beds.deployed(topology, release)
    assert first.errors == 0
    assert "Common base | Install the base packages" in first.changed_ops
    assert first.changed > 0
    # The re-run: every operation ran, on every host, and none changed anything.
    assert second.results, second.output[-3000:]
    assert second.changed == 0, second.changed_ops
    assert second.errors == 0
    for name, row in second.results.items():
        assert row["no_change"] == row["hosts"] > 0, (name, row)


@pytest.mark.parametrize("topology,release", CASES)
def test_hosts_run_the_release_with_the_base(beds, topology, release):
    bed, _, _ = beds.deployed(topology, release)
    codename = {"13": "trixie", "12": "bookworm"}[release]
    for host in bed.hosts:
        _, os_release = bed.exec(host.name, "cat /etc/os-release")
        assert f"VERSION_CODENAME={codename}" in os_release
        code, _ = bed.exec(host.name, "dpkg -s curl rsync python3 ca-certificates", check=False)
        assert code == 0, host.name
        _, passwd = bed.exec(host.name, "getent passwd wordpress")
        fields = passwd.strip().split(":")
        assert fields[5] == "/var/lib/wordpress"
        assert int(fields[2]) < 1000, "wordpress must be a system user"
        _, state = bed.exec(host.name, "systemctl is-system-running", check=False)
        assert state.strip() in ("running", "degraded")


@pytest.mark.parametrize("topology,release", CASES)
def test_deploy_connects_over_ssh_as_the_sudo_user(beds, topology, release):
    bed, _, _ = beds.deployed(topology, release)
    # Host keys are pinned: each host has its own, and the inventory checks them.
    keys = (bed.dir / "known_hosts").read_text().split("\n")
    ed25519 = {line.split()[2] for line in keys if "ssh-ed25519" in line}
    assert len(ed25519) == len(bed.hosts), "each container must have its own host key"
    # The deploy logged in as `deploy` (not root) over SSH and used sudo.
    for host in bed.hosts:
        _, log = bed.exec(host.name, "journalctl -q --no-pager -t sudo | tail -n 200",
                          check=False)
        assert "deploy : " in log and "USER=root" in log, host.name
        _, sshd = bed.exec(host.name, "journalctl -q --no-pager -u ssh.service", check=False)
        assert "Accepted publickey for deploy" in sshd, host.name
        assert "Accepted publickey for root" not in sshd, host.name
