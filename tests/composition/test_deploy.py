"""The whole deploy.py composed against pyinfra's @fake connector: no hosts needed.

Catches ordering and data mistakes in seconds: which operations each host of each
topology gets, in which order, and which commands a first run would send.
"""

from __future__ import annotations

import json

import pytest

from tests.fakedeploy import FAKE_HOST, plan

TOPOLOGIES = {
    "split": {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1"]},
    "seed": {"lb": ["hosta"], "web": ["hosta", "hostb"], "db": ["hosta"]},
}
COMMON = [
    "Common base | Refresh the apt cache when older than apt_cache_time",
    "Common base | Install the base packages",
    "Common base | Add the wordpress system group",
    "Common base | Add the wordpress system user",
]
INSTALL = "WordPress install | Install WordPress unattended (once per database)"


def names(ops):
    return [name for name, _ in ops]


def commands(ops, name):
    return " ".join(c for n, cs in ops if n == name for c in cs)


@pytest.fixture
def secrets_file(tmp_path):
    return tmp_path / "hosts.secrets.json"


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_every_host_gets_the_common_base_first(topology, secrets_file):
    for host, ops in plan(TOPOLOGIES[topology], secrets_file).items():
        assert names(ops)[:4] == COMMON, host


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_tiers_go_to_their_groups_only(topology, secrets_file):
    groups = TOPOLOGIES[topology]
    result = plan(groups, secrets_file)
    for host, ops in result.items():
        tiers = {name.split(" | ")[0] for name in names(ops)}
        assert ("Database" in tiers) == (host in groups["db"]), host
        assert ("Web" in tiers) == (host in groups["web"]), host
        # The unattended install runs once, from the first web host, after its web tier.
        if host == sorted(groups["web"])[0]:
            assert INSTALL in names(ops)
            assert all(not n.startswith(("Web |", "Sync mesh |"))
                       for n in names(ops)[names(ops).index(INSTALL):])
        else:
            assert INSTALL not in names(ops)


def test_one_database_account_per_web_host_address(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file)["db1"]
    # web1 and web2 are 10.0.0.11 and .12 (lb1 is .10, db1 .13).
    accounts = [n for n in names(ops) if n.startswith("Database | Add database account")]
    assert accounts == [
        "Database | Add database account wordpress@10.0.0.11",
        "Database | Add database account wordpress@10.0.0.12",
    ]
    grants = commands(ops, "Database | Grant wordpress@10.0.0.11 all on wordpress only")
    assert "ON `wordpress`.*" in grants and '"wordpress"@"10.0.0.11"' in grants
    bind = [n for n in names(ops) if "Bind MariaDB" in n]
    assert bind == ["Database | Bind MariaDB to the private address"]


def test_secrets_are_generated_once_and_never_in_commands(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file)
    stored = json.loads(secrets_file.read_text())
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    assert {"db_password", "admin_password", "wp_auth_key", "wp_nonce_salt"} <= set(stored)
    everything = json.dumps(result)
    for name, value in stored.items():
        assert value not in everything, f"secret {name} appears in an operation"
    # A second plan reads the same file: stable values.
    plan(TOPOLOGIES["split"], secrets_file)
    assert json.loads(secrets_file.read_text()) == stored


def test_web_tier_writes_pool_vhost_and_config_in_order(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file)["web2"]
    order = names(ops)
    expected = [
        "Web | Install nginx and PHP-FPM",
        "Web | Run the wordpress PHP-FPM pool with OPcache",
        "Web | Download the WordPress 7.1.0 archive",
        "Web | Put the verified WordPress 7.1.0 into the docroot",
        "Web | Write wp-config.php (secrets; never shown)",
        "Web | Write the nginx backend vhost",
        "Web | Reload nginx",
    ]
    positions = [order.index(name) for name in expected]
    assert positions == sorted(positions)
    download = commands(ops, "Web | Download the WordPress 7.1.0 archive")
    assert "https://wordpress.org/wordpress-7.1.0.tar.gz" in download
    release = commands(ops, "Web | Put the verified WordPress 7.1.0 into the docroot")
    assert "sha1sum --check" in release and "e0ca593bc062f7a8c5a956ca44aff7375b0841e0" in release


def test_local_archive_is_uploaded_instead(secrets_file, tmp_path):
    archive = tmp_path / "wordpress.tar.gz"
    archive.write_bytes(b"not really")
    ops = plan(TOPOLOGIES["split"], secrets_file,
               data={"wordpress_archive": str(archive), "wordpress_version": "6.8.12"})["web1"]
    assert "Web | Upload the WordPress 6.8.12 archive" in names(ops)
    assert not any("Download" in n for n in names(ops))


def test_data_overrides_reach_the_operations(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file,
                  data={"wordpress_user": "wpsite", "base_packages": ["htop"]})
    ops = result["db1"]
    assert "htop" in commands(ops, "Common base | Install the base packages")
    assert "wpsite" in commands(ops, "Common base | Add the wpsite system user")
    assert "chown -R wpsite:wpsite" in commands(
        result["web1"], "Web | Put the verified WordPress 7.1.0 into the docroot")


def test_first_run_commands_of_the_common_base(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file)["web1"]
    assert "apt-get update" in commands(ops, COMMON[0])
    install = commands(ops, COMMON[1])
    for package in ("ca-certificates", "curl", "python3", "rsync"):
        assert package in install
    assert "--no-install-recommends" in install
    user = commands(ops, COMMON[3])
    assert "useradd" in user and " -r " in user and "-d /var/lib/wordpress" in user


def test_sync_mesh_on_web_hosts_with_their_peers(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file)
    for host in ("lb1", "db1"):
        assert not any(n.startswith("Sync mesh") for n in names(result[host])), host
    ops = result["web1"]
    assert "Sync mesh | Install the cluster's mesh key" in names(ops)
    # The install comes after the mesh, so WordPress's first files reach every peer.
    assert names(ops).index("Sync mesh | Keep the mesh running and enabled") < names(ops).index(INSTALL)
    key = commands(ops, "Sync mesh | Install the cluster's mesh key")
    assert "install -m 600 -o wordpress" in key
    assert "PRIVATE KEY" not in key


def test_a_lone_web_host_runs_no_mesh(secrets_file):
    ops = plan({"lb": ["a"], "web": ["a"], "db": ["a"]}, secrets_file)["a"]
    assert "Sync mesh | Stop the mesh: there is no other web host" in names(ops)
    assert "Sync mesh | Keep the mesh running and enabled" not in names(ops)


def upload(ops, name):
    text = commands(ops, name)
    assert "upload " in text, (name, text[:200])
    return text


def test_balancer_upstream_has_every_backend(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file)["lb1"]
    conf = upload(ops, "Balancer | Write the balancer vhost")
    assert "least_conn;" in conf
    assert "server 10.0.0.11:80 max_fails=1 fail_timeout=10s;" in conf
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s;" in conf
    assert "keepalive 16;" in conf and "proxy_http_version 1.1;" in conf
    assert 'proxy_set_header Connection "";' in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in conf
    assert "non_idempotent" not in conf
    assert "client_max_body_size 64M;" in conf
    assert names(ops)[-1] == "Verify | The site answers through the balancer"


def test_colocated_backend_moves_off_the_public_port(secrets_file):
    result = plan(TOPOLOGIES["seed"], secrets_file)
    lb_conf = upload(result["hosta"], "Balancer | Write the balancer vhost")
    assert "listen 80 default_server;" in lb_conf
    assert "server 10.0.0.10:90 " in lb_conf and "server 10.0.0.11:80 " in lb_conf
    assert "listen 90 default_server;" in upload(result["hosta"], "Web | Write the nginx backend vhost")
    assert "listen 80 default_server;" in upload(result["hostb"], "Web | Write the nginx backend vhost")
    # The co-located host trusts forwarded headers from itself, the balancer.
    assert "set_real_ip_from 10.0.0.10;" in upload(result["hostb"], "Web | Write the nginx backend vhost")


def test_balancer_settings_baseline_and_methods(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file,
               data={"lb_method": "round_robin", "lb_keepalive": 0, "lb_next_upstream": ""})["lb1"]
    conf = upload(ops, "Balancer | Write the balancer vhost")
    assert "least_conn" not in conf and "ip_hash" not in conf
    assert "keepalive" not in conf and "proxy_next_upstream off;" in conf
    with pytest.raises(Exception) as failure:
        plan(TOPOLOGIES["split"], secrets_file, data={"lb_method": "random"})
    assert "lb_method 'random'" in repr(getattr(failure.value, "exception", failure.value))


def test_backends_name_themselves_unless_turned_off(secrets_file):
    conf = upload(plan(TOPOLOGIES["split"], secrets_file)["web1"], "Web | Write the nginx backend vhost")
    assert conf.count("add_header X-Served-By $hostname always;") == 2
    conf = upload(plan(TOPOLOGIES["split"], secrets_file, data={"served_by_header": ""})["web1"],
                  "Web | Write the nginx backend vhost")
    assert "X-Served-By" not in conf


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_barriers_make_every_host_wait(topology, secrets_file):
    """pyinfra runs hosts' operation lists side by side; the barriers are shared steps."""
    result = plan(TOPOLOGIES[topology], secrets_file)
    order = result.order
    tiers = order.index("Wait until every host has its tiers")
    deployed = order.index("Wait until the site is deployed")
    for host, ops in result.items():
        # Each barrier is one step for all hosts, and every host passes through it.
        assert "Wait until every host has its tiers" in names(ops), host
        assert "Wait until the site is deployed" in names(ops), host
    for step in order[:tiers]:
        assert step.split(" | ")[0] in ("Common base", "Database", "Web", "Sync mesh"), step
    for step in order[tiers + 1:deployed]:
        assert step.split(" | ")[0] in ("WordPress install", "Balancer"), step
    assert all(step.startswith("Verify |") for step in order[deployed + 1:])
    assert order.count("Wait until every host has its tiers") == 1


def test_addresses_reported_by_the_hosts_are_each_their_own(secrets_file):
    """Without `private_address` data, each host's own report is used (asked once)."""
    def reports(address):
        return {"private_address": None, "fake_responses": {
            **FAKE_HOST,
            "ip -4 -o addr": f"2: eth0    inet {address}/24 brd 10.9.0.255 scope global eth0"}}

    hosts = {"lb1": "10.9.0.5", "web1": "10.9.0.6", "web2": "10.9.0.7", "db1": "10.9.0.8"}
    result = plan(TOPOLOGIES["split"], secrets_file,
                  host_data={name: reports(address) for name, address in hosts.items()})
    web1 = upload(result["web1"], "Sync mesh | Write the lsyncd mesh configuration")
    assert 'target = "wordpress@10.9.0.7:/"' in web1 and "10.9.0.6:/" not in web1
    web2 = upload(result["web2"], "Sync mesh | Write the lsyncd mesh configuration")
    assert 'target = "wordpress@10.9.0.6:/"' in web2 and "10.9.0.7:/" not in web2
    lb = upload(result["lb1"], "Balancer | Write the balancer vhost")
    assert "server 10.9.0.6:80 " in lb and "server 10.9.0.7:80 " in lb


def test_lb_backends_puts_the_balancer_in_front_of_given_servers(secrets_file):
    given = ["192.0.2.21:8080", "192.0.2.22:8080"]
    ops = plan(TOPOLOGIES["split"], secrets_file, host_data={"lb1": {"lb_backends": given}})["lb1"]
    vhost = commands(ops, "Balancer | Write the balancer vhost")
    for backend in given:
        assert f"server {backend} " in vhost
    assert "10.0.0.11" not in vhost and "10.0.0.12" not in vhost
