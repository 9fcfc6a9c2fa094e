"""A whole HA site on three machines (topology `trio`): each host is a balancer, a web
host and a Galera node. One machine killed under load: the site keeps answering on its
shared address and takes writes again within seconds; the machine comes back into the
cluster by itself."""

from __future__ import annotations

import time

import pytest

from tests.integration import wp
from tests.integration.load import get_load
from tests.integration.galera import status, wait_synced

pytestmark = pytest.mark.own_bed("trio")

HOSTS = ("host1", "host2", "host3")


@pytest.fixture(scope="module")
def trio(beds):
    bed, first, second = beds.deployed("trio", "13")
    return bed, first, second


def holder(bed) -> str | None:
    for host in HOSTS:
        container = bed.container(host)
        container.reload()
        if container.status != "running":
            continue
        code, _ = bed.exec(host, f"ip -4 -o addr show | grep -q ' {bed.vip}/'", check=False)
        if code == 0:
            return host
    return None


def test_three_machines_deploy_and_a_second_run_changes_nothing(trio):
    bed, _, second = trio
    assert second.changed == 0, second.changed_ops
    found = wait_synced(bed, HOSTS, 3, timeout=30)
    assert all(s["wsrep_cluster_status"] == "Primary" for s in found.values())
    assert holder(bed) is not None
    response = wp.get(bed.site_url, "/", bed)
    assert response.status_code == 200
    # Every machine serves as a backend and writes through its proxy to the same node.
    names = set()
    password = wp.secrets(bed)["db_password"]
    for host in HOSTS:
        code, out = wp.mariadb_as(bed, host, "wordpress", password, "127.0.0.1 -P 3307",
                                  "SELECT @@hostname")
        assert code == 0, out
        names.add(out.strip())
    assert len(names) == 1, names


def test_a_machine_killed_under_load_the_site_answers_and_takes_writes(trio):
    """host1, the node taking the writes, a backend and a balancer, killed under GET load
    through the shared address (it may hold it or not: no balancer preempts)."""
    bed, _, _ = trio
    victim = "host1"  # the node taking the writes (first in order), a backend, a balancer
    held = holder(bed)
    password = wp.secrets(bed)["db_password"]
    killed = {}

    def kill():
        bed.container(victim).kill()
        killed["at"] = time.monotonic()

    load = get_load(f"{bed.site_url}/", total=300, seconds=15, concurrency=3, during=kill,
                    at=3.0, verify=wp.verify(bed), timeout=10)
    assert killed
    # The site came back on the shared address within seconds.
    assert load.outage() <= 6, (load.outage(), load.errors)
    assert load.failed_after(load.at + 6) == 0, load.errors
    # Writes through a surviving web host's proxy work.
    deadline = killed["at"] + 10
    while True:
        code, out = wp.mariadb_as(bed, "host2", "wordpress", password, "127.0.0.1 -P 3307",
                                  "INSERT INTO wp_options (option_name, option_value, "
                                  "autoload) VALUES (\"trio_after_kill\", \"1\", \"off\")")
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 0, out
    assert holder(bed) in ("host2", "host3")  # it moved, if host1 held it
    # The machine comes back and rejoins the cluster on its own (no deploy).
    bed.container(victim).start()
    bed.wait_booted(victim)
    wait_synced(bed, HOSTS, 3)
    assert status(bed, victim).get("wsrep_cluster_status") == "Primary"
    _, out = bed.exec(victim, "mariadb -N wordpress -e \"SELECT option_value FROM wp_options "
                              "WHERE option_name = 'trio_after_kill'\"")
    assert out.strip() == "1"
    print(f"trio: site outage {load.outage():.2f} s after {victim} was killed "
          f"({load.failed} of {load.sent} GETs failed; the address was on {held})")
