"""The whole deploy.py composed against pyinfra's @fake connector: no hosts needed.

Catches ordering and data mistakes in seconds: which operations each host of each
topology gets, in which order, and which commands a first run would send.
"""

from __future__ import annotations

import pytest

from tests.fakedeploy import plan

TOPOLOGIES = {
    "split": {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1"]},
    "seed": {"lb": ["hosta"], "web": ["hosta", "hostb"], "db": ["hosta"]},
}


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_every_host_gets_the_common_base(topology):
    result = plan(TOPOLOGIES[topology])
    for host, ops in result.items():
        names = [name for name, _ in ops]
        assert names[:4] == [
            "Common base | Refresh the apt cache when older than apt_cache_time",
            "Common base | Install the base packages",
            "Common base | Add the wordpress system group",
            "Common base | Add the wordpress system user",
        ], host


def test_first_run_installs_base_packages_and_system_user():
    result = plan(TOPOLOGIES["split"])
    commands = dict(result["web1"])
    assert any("apt-get update" in c for c in commands[
        "Common base | Refresh the apt cache when older than apt_cache_time"])
    install = " ".join(commands["Common base | Install the base packages"])
    for package in ("ca-certificates", "curl", "python3", "rsync"):
        assert package in install
    assert "--no-install-recommends" in install
    user = " ".join(commands["Common base | Add the wordpress system user"])
    assert "useradd" in user and "-r" in user.split() and "wordpress" in user
    assert "-d /var/lib/wordpress" in user


def test_data_overrides_reach_the_operations():
    result = plan(TOPOLOGIES["split"], data={"wordpress_user": "wpsite",
                                             "base_packages": ["htop"]})
    commands = dict(result["db1"])
    assert "htop" in " ".join(commands["Common base | Install the base packages"])
    assert "wpsite" in " ".join(commands["Common base | Add the wpsite system user"])
