"""Guard rails against @fake hosts: each mistake is reported, with nothing run."""

from __future__ import annotations

import pytest

from tests.fakedeploy import plan

SPLIT = {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1"]}


def rejected(groups, secrets_file, **kw) -> str:
    with pytest.raises(Exception) as failure:
        plan(groups, secrets_file, **kw)
    error = getattr(failure.value, "exception", failure.value)
    assert type(error).__name__ == "InvalidDeploy", repr(error)
    message = str(error)
    assert "nothing was changed" in message
    return message


@pytest.fixture
def secrets_file(tmp_path):
    return tmp_path / "hosts.secrets.json"


def test_no_web_host(secrets_file):
    message = rejected({"lb": ["lb1"], "db": ["db1"]}, secrets_file)
    assert "no host in group `web`" in message


def test_no_db_host(secrets_file):
    message = rejected({"lb": ["lb1"], "web": ["web1"]}, secrets_file)
    assert "no host in group `db`" in message


def test_two_db_hosts(secrets_file):
    message = rejected({**SPLIT, "db": ["db1", "db2"]}, secrets_file)
    assert "2 hosts in group `db` (db1, db2)" in message.replace("@fake/", "")


def test_several_web_hosts_without_a_balancer(secrets_file):
    message = rejected({"web": ["web1", "web2"], "db": ["db1"]}, secrets_file)
    assert "2 web hosts but no host in group `lb`" in message


def test_one_web_host_without_a_balancer_is_fine(secrets_file):
    plan({"web": ["web1"], "db": ["db1"]}, secrets_file)


def test_duplicate_private_address(secrets_file):
    message = rejected(SPLIT, secrets_file, host_data={"web2": {"private_address": "10.0.0.11"}})
    assert "web2: private_address 10.0.0.11 is also @fake/web1's" in message


def test_private_address_not_an_ip(secrets_file):
    message = rejected(SPLIT, secrets_file, host_data={"db1": {"private_address": "db1.lan"}})
    assert "db1: private_address 'db1.lan' is not an IPv4 address" in message


def test_colocated_backend_on_the_public_port(secrets_file):
    seed = {"lb": ["hosta"], "web": ["hosta", "hostb"], "db": ["hosta"]}
    message = rejected(seed, secrets_file, data={"colocated_web_port": 80})
    assert "hosta: is both `lb` and `web`, and colocated_web_port equals lb_port (80)" in message


@pytest.mark.parametrize("key,port", [("web_port", 70000), ("lb_port", 0), ("db_port", "3306")])
def test_ports_out_of_range(secrets_file, key, port):
    message = rejected(SPLIT, secrets_file, data={key: port})
    assert f"{key} {port!r} is not a port (1-65535)" in message


@pytest.mark.parametrize("url", ["www.example.com", "ftp://example.com", "http://exa mple.com",
                                 "http://example.com:99999", "http://-bad-.com/"])
def test_invalid_site_url(secrets_file, url):
    message = rejected(SPLIT, secrets_file, data={"site_url": url})
    assert f"site_url {url!r} is not a site address" in message


def test_valid_site_urls_pass(secrets_file):
    for url in ("https://www.example.com", "http://127.0.0.1:8080", "http://blog.example.org/wp"):
        plan(SPLIT, secrets_file, data={"site_url": url})


@pytest.mark.parametrize("email", ["admin", "admin@", "admin@localhost", "a b@example.com"])
def test_invalid_admin_email(secrets_file, email):
    message = rejected(SPLIT, secrets_file, data={"admin_email": email})
    assert f"admin_email {email!r} is not an email address" in message


def test_typo_of_a_known_key(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"db_nmae": "wp", "lb_mehtod": "ip_hash",
                                                  "my_own_note": "fine"})
    assert "unknown setting 'db_nmae'" in message and "did you mean 'db_name'?" in message
    assert "did you mean 'lb_method'?" in message
    assert "my_own_note" not in message


def test_secrets_file_readable_by_others(secrets_file):
    secrets_file.write_text("{}")
    secrets_file.chmod(0o644)
    message = rejected(SPLIT, secrets_file)
    assert f"secrets file {secrets_file} has mode 0644" in message
    assert f"chmod 600 {secrets_file}" in message


def test_unsupported_release(secrets_file):
    ubuntu = ["/etc/os-release", 'NAME="Ubuntu"', 'VERSION_ID="24.04"', "ID=ubuntu", "---"]
    bullseye = ["/etc/os-release", 'NAME="Debian GNU/Linux"', 'VERSION_ID="11"', "ID=debian",
                "---"]
    message = rejected(SPLIT, secrets_file, host_data={
        "web2": {"fake_responses": {"*-release": ubuntu, "uname -s": "Linux"}},
        "db1": {"fake_responses": {"*-release": bullseye, "uname -s": "Linux"}}})
    assert "web2: runs Ubuntu 24.04; only Debian 13 (trixie) and Debian 12" in message
    assert "db1: runs Debian 11;" in message


def test_every_problem_is_listed_once(secrets_file):
    message = rejected({"lb": ["lb1"], "web": ["web1", "web2"]}, secrets_file,
                       data={"admin_email": "nobody", "site_url": "nope"})
    assert message.count("admin_email 'nobody'") == 1
    assert message.count("site_url 'nope'") == 1
    assert "3 problems" in message
