"""The database tier on the shared split bed (Debian 13), and on the seed bed (12)."""

from __future__ import annotations

import pytest

from tests.integration import wp
from tests.runner import pyinfra

mariadb_as = wp.mariadb_as


@pytest.fixture(scope="module")
def split(beds):
    bed, _, _ = beds.deployed("split", "13")
    return bed


def test_mariadb_listens_on_the_private_address_only(split):
    db = split.host("db1")
    _, listening = split.exec("db1", "ss -Hltn 'sport = :3306'")
    addresses = {line.split()[3] for line in listening.splitlines() if line.strip()}
    assert addresses == {f"{db.address}:3306"}


def test_each_web_host_connects_with_its_account_and_lb_is_refused(split):
    password = wp.secrets(split)["db_password"]
    db = split.host("db1").address
    for web in ("web1", "web2"):
        code, out = mariadb_as(split, web, "wordpress", password, db, "SELECT CURRENT_USER()")
        assert code == 0, out
        assert out.strip() == f"wordpress@{split.host(web).address}"
    code, out = mariadb_as(split, "lb1", "wordpress", password, db)
    assert code != 0
    # The firewall drops it (no route to the port); without one, MariaDB refuses it.
    assert code != 0 and ("Can't connect" in out or "is not allowed to connect" in out), out


def test_root_only_through_the_socket_no_anonymous_no_test_db(split):
    db = split.host("db1").address
    code, out = split.exec("web1", f"mariadb -h {db} -u root --connect-timeout=5 -e 'SELECT 1' 2>&1",
                           check=False)
    assert code != 0, out
    _, accounts = split.exec("db1", "mariadb -N -e 'SELECT user, host FROM mysql.user'")
    rows = {tuple(line.split("\t")) for line in accounts.strip().splitlines()}
    assert not [r for r in rows if r[0] == ""], "anonymous accounts"
    assert {r for r in rows if r[0] == "root"} == {("root", "localhost")}
    assert {r[1] for r in rows if r[0] == "wordpress"} == {
        split.host("web1").address, split.host("web2").address}
    _, dbs = split.exec("db1", "mariadb -N -e 'SHOW DATABASES'")
    assert "test" not in dbs.split()
    _, grants = split.exec("db1", f"mariadb -N -e \"SHOW GRANTS FOR 'wordpress'@'{split.host('web1').address}'\"")
    assert "ON `wordpress`.*" in grants and "ON *.*" in grants  # USAGE only, globally
    assert "ALL PRIVILEGES ON *.*" not in grants


def test_a_departed_web_host_loses_its_account(split, beds, tmp_path):
    hosts = split.hosts_file.read_text()
    without_web2 = tmp_path / "hosts.toml"
    # Same bed, same secrets; web2's table left out of the inventory.
    start = hosts.index("[hosts.web2]")
    end = hosts.index("[hosts.", start + 1)
    without_web2.write_text(hosts[:start] + hosts[end:])
    (tmp_path / "hosts.secrets.json").write_text((split.dir / "hosts.secrets.json").read_text())
    (tmp_path / "hosts.secrets.json").chmod(0o600)
    web2 = split.host("web2").address
    try:
        run = pyinfra(without_web2)
        assert run.returncode == 0, run.output[-4000:]
        assert "Database | Drop database accounts of web hosts no longer in the inventory" in run.changed_ops
        _, accounts = split.exec("db1", "mariadb -N -e \"SELECT host FROM mysql.user WHERE user='wordpress'\"")
        assert web2 not in accounts.split()
    finally:
        restored = beds.run(split)
        assert restored.returncode == 0, restored.output[-4000:]
    _, accounts = split.exec("db1", "mariadb -N -e \"SELECT host FROM mysql.user WHERE user='wordpress'\"")
    assert web2 in accounts.split()
    assert beds.run(split).changed == 0


def test_seed_bed_debian_12_database(beds):
    bed, _, second = beds.deployed("seed", "12")
    assert second.changed == 0
    _, version = bed.exec("hosta", "mariadb -N -e 'SELECT VERSION()'")
    assert version.startswith("10.11")
    password = wp.secrets(bed)["db_password"]
    hosta = bed.host("hosta").address
    code, out = mariadb_as(bed, "hostb", "wordpress", password, hosta, "SELECT CURRENT_USER()")
    assert code == 0 and out.strip() == f"wordpress@{bed.host('hostb').address}", out
