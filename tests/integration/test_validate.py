"""Guard rails on real hosts: a bad inventory or setting stops the deploy before any
host is touched. The shared split bed before its first deploy (these tests run first on
it: no bed of their own to start), checked untouched after each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runner import pyinfra

pytestmark = pytest.mark.before_deploy


@pytest.fixture(scope="module")
def guard(beds):
    bed = beds.get("split", "13")
    assert bed.name not in beds.deploys, "the guard rails run before the split bed's deploy"
    return bed


def assert_untouched(bed):
    for host in bed.hosts:
        code, out = bed.exec(host.name, "test ! -e /var/lib/apt/periodic/update-success-stamp"
                                        " && ! getent passwd wordpress && ! command -v curl"
                                        " && ! test -e /var/lib/wordpress && echo untouched",
                             check=False)
        assert out.strip() == "untouched", (host.name, out)


def assert_one_clear_error(run, *fragments):
    assert run.returncode != 0
    assert "Traceback" not in run.output, run.output[-3000:]
    assert run.output.count("problem") >= 1 and run.output.count("nothing was changed:") == 1
    for fragment in fragments:
        assert fragment in run.output, (fragment, run.output[-3000:])


def variant(bed, tmp_path, edit) -> Path:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(edit(bed.hosts_file.read_text()))
    return hosts


def test_an_unsupported_release_stops_before_any_change(guard):
    guard.exec("web2", "cp --remove-destination /usr/lib/os-release /etc/os-release && "
                       "sed -i 's/^VERSION_ID=.*/VERSION_ID=\"11\"/; "
                       "s/^VERSION_CODENAME=.*/VERSION_CODENAME=bullseye/' /etc/os-release")
    try:
        run = pyinfra(guard.hosts_file)
        assert_one_clear_error(run, "web2: runs Debian 11; only Debian 13 (trixie) and "
                                    "Debian 12 (bookworm) are supported")
        assert "web1: runs" not in run.output
        assert_untouched(guard)
    finally:
        guard.exec("web2", "ln -sf ../usr/lib/os-release /etc/os-release")


def test_a_readable_secrets_file_is_refused(guard):
    secrets = guard.dir / "hosts.secrets.json"
    secrets.write_text("{}\n")
    secrets.chmod(0o644)
    try:
        run = pyinfra(guard.hosts_file)
        assert_one_clear_error(run, f"secrets file {secrets} has mode 0644",
                               f"chmod 600 {secrets}")
        assert_untouched(guard)
    finally:
        secrets.unlink()


def test_inventory_mistakes_stop_before_any_change(guard, tmp_path):
    def two_dbs_and_a_typo(text):
        text = text.replace('[hosts.web2]\ngroups = ["web"]', '[hosts.web2]\ngroups = ["web", "db"]')
        return text.replace('[hosts.db1]\n', '[hosts.db1]\ndb_nmae = "wp"\n')

    run = pyinfra(variant(guard, tmp_path, two_dbs_and_a_typo))
    assert_one_clear_error(run, "two hosts in group `db` (db1, web2): a Galera cluster of "
                                "two has no majority",
                           "unknown setting 'db_nmae' (on db1): did you mean 'db_name'?")
    assert_untouched(guard)


def test_address_and_site_mistakes_stop_before_any_change(guard, tmp_path):
    web1 = guard.host("web1").address

    def duplicate_and_bad_site(text):
        text = text.replace(f'private_address = "{guard.host("web2").address}"',
                            f'private_address = "{web1}"')
        return text.replace('site_url = "https://', 'site_url = "ftp://')

    run = pyinfra(variant(guard, tmp_path, duplicate_and_bad_site),
                  "--data", "admin_email=root@localhost")
    assert_one_clear_error(run, f"web2: private_address {web1} is also web1's",
                           "site_url 'ftp://", "admin_email 'root@localhost'")
    assert_untouched(guard)
