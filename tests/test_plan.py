"""Planning as functions: hosts (data and facts) in, the cluster's plan out
(deploys/plan.py). No pyinfra state, no rendered configuration."""

from __future__ import annotations

import dataclasses
import pkgutil

import pytest

from pyinfra_wordpress_lb.deploys.plan import HSTS_DEFAULT, HostInput, build
from pyinfra_wordpress_lb.deploys.settings import settings_of

SHA1 = "sha1:e0ca593bc062f7a8c5a956ca44aff7375b0841e0"
RELEASE = "7.1.0-e0ca593bc062"  # the default release's id


def hosts(layout: dict[str, tuple[str, ...]], data: dict | None = None,
          per_host: dict[str, dict] | None = None, current: dict[str, str | None] | None = None,
          down: tuple[str, ...] = ()) -> list[HostInput]:
    """HostInputs: {name: roles}; addresses 10.0.0.10, .11, ... in the order given;
    `current`: the release a web host serves (absent: none yet)."""
    found = []
    for index, (name, roles) in enumerate(layout.items()):
        releases = None
        if "web" in roles and name not in down:
            served = (current or {}).get(name)
            releases = {"current": served, "releases": {}, "order": [], "legacy": False}
        found.append(HostInput(
            name=name, groups=frozenset(roles),
            data={**(data or {}), **(per_host or {}).get(name, {})},
            address=None if name in down else f"10.0.0.{10 + index}", releases=releases,
            reachable=name not in down))
    return found


SPLIT = {"lb1": ("lb",), "web1": ("web",), "web2": ("web",), "db1": ("db",)}


def test_the_split_cluster():
    plan = build(hosts(SPLIT))
    assert (plan.lb, plan.web, plan.db) == (("lb1",), ("web1", "web2"), ("db1",))
    assert plan.addresses("web") == ("10.0.0.11", "10.0.0.12")
    assert plan.backends() == ("10.0.0.11:80", "10.0.0.12:80")
    assert plan.db_endpoint == "10.0.0.13"
    assert plan.site.url == "https://lb1"  # no site_url, no shared address: the first balancer
    assert plan.connect_to == {"lb1:443": "10.0.0.10:443"}
    assert plan.vip is None and plan.newcomers == () and plan.unreachable == {}


def test_a_data_address_wins_over_the_reported_one():
    plan = build(hosts(SPLIT, per_host={"web2": {"private_address": "192.168.1.5"}}))
    assert plan.node("web2").address == "192.168.1.5"
    assert plan.node("web1").address == "10.0.0.11"


def test_the_site_is_one_value():
    plan = build(hosts(SPLIT, data={"site_url": "https://www.example.com/", "db_name": "blog",
                                    "docroot": "/srv/wp/", "wordpress_version": "6.8.3",
                                    "wordpress_checksum": SHA1}))
    site = plan.site
    assert site.url == "https://www.example.com"
    assert (site.hostname, site.netloc, site.https) == ("www.example.com", "www.example.com", True)
    assert site.db_name == "blog" and site.docroot == "/srv/wp"
    assert site.content == "/srv/wp/shared/wp-content"
    assert site.release.id == "6.8.3-e0ca593bc062"
    assert site.release.url == "https://wordpress.org/wordpress-6.8.3.tar.gz"
    assert plan.sites == (site,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        site.url = "https://other"  # type: ignore[misc]


def test_the_site_url_follows_the_shared_address_and_tls_off():
    plan = build(hosts({"lb1": ("lb",), "lb2": ("lb",), "web1": ("web",), "db1": ("db",)},
                       data={"lb_vip": "10.0.0.100", "tls": "off"}))
    assert plan.site.url == "http://10.0.0.100"
    assert plan.connect_to == {"10.0.0.100:80": "10.0.0.100:80"}
    assert plan.vip == "10.0.0.100"


@pytest.mark.parametrize("mode, hsts", [("self-signed", 0), ("off", 0), ("acme", HSTS_DEFAULT),
                                        ("files", HSTS_DEFAULT)])
def test_hsts_defaults_to_a_year_only_with_a_certificate_browsers_trust(mode, hsts):
    plan = build(hosts(SPLIT, data={"tls": mode}))
    assert plan.site.tls.hsts_max_age == hsts
    assert build(hosts(SPLIT, data={"tls": mode, "hsts_max_age": 60})).site.tls.hsts_max_age == 60


def test_a_self_signed_certificate_also_covers_the_shared_address():
    data = {"site_url": "https://www.example.com", "lb_vip": "10.0.0.100"}
    layout = {"lb1": ("lb",), "lb2": ("lb",), "web1": ("web",), "db1": ("db",)}
    assert build(hosts(layout, data=data)).site.tls.names == ("www.example.com", "10.0.0.100")
    acme = build(hosts(layout, data={**data, "tls": "acme"}))
    assert acme.site.tls.names == ("www.example.com",)


def test_a_host_that_is_balancer_and_web_host_moves_its_backend():
    plan = build(hosts({"one": ("lb", "web", "db")}))
    assert plan.node("one").backend_port == 90
    assert plan.backends() == ("10.0.0.10:90",)
    assert plan.db_endpoint == "10.0.0.10"


def test_a_database_on_another_port_is_reached_on_it():
    plan = build(hosts(SPLIT, per_host={"db1": {"db_port": 3307}}))
    assert plan.db_endpoint == "10.0.0.13:3307"


def test_the_upstream_leaves_out_drained_failed_unreachable_and_new_hosts():
    layout = {"lb1": ("lb",), "web1": ("web",), "web2": ("web",), "web3": ("web",),
              "web4": ("web",), "web5": ("web",), "db1": ("db",)}
    # (one that cannot be reached has its address in its data: validate says so)
    plan = build(hosts(layout, per_host={"web1": {"drain": True},
                                         "web3": {"private_address": "10.0.0.13"}},
                       down=("web3",)), unreachable={"web3": "test"})
    entries = {e["address"]: e["down"] for e in plan.upstream(frozenset({"web2"}), ("web4",))}
    assert entries == {"10.0.0.11:80": "drained", "10.0.0.12:80": "failed during the last deploy",
                       "10.0.0.13:80": "unreachable during the last deploy",
                       "10.0.0.14:80": "new, not verified yet", "10.0.0.15:80": None}
    assert all(e["down"] is None for e in build(hosts(layout)).upstream())


def test_a_run_that_fails_every_web_host_leaves_them_in_the_pool():
    """A wrong checksum fails every web host before any switch: they serve what they
    served, and taking them all out would leave the balancers no backend at all."""
    layout = {"lb1": ("lb",), "web1": ("web",), "web2": ("web",), "web3": ("web",),
              "db1": ("db",)}
    plan = build(hosts(layout, per_host={"web1": {"drain": True},
                                         "web3": {"private_address": "10.0.0.13"}},
                       down=("web3",)), unreachable={"web3": "test"})
    entries = {e["address"]: e["down"] for e in plan.upstream(frozenset({"web2"}))}
    assert entries == {"10.0.0.11:80": "drained", "10.0.0.12:80": None, "10.0.0.13:80": None}
    # One left up: the failed one stays out.
    plan = build(hosts(layout))
    entries = {e["address"]: e["down"] for e in plan.upstream(frozenset({"web1", "web2"}))}
    assert entries == {"10.0.0.11:80": "failed during the last deploy",
                       "10.0.0.12:80": "failed during the last deploy", "10.0.0.13:80": None}


def test_backends_the_deploy_does_not_manage():
    plan = build(hosts(SPLIT, data={"lb_backends": ["192.0.2.1:8080", "192.0.2.2:8080"]}))
    assert plan.backends() == ("192.0.2.1:8080", "192.0.2.2:8080")
    assert plan.upstream(frozenset({"web1"})) == (
        {"address": "192.0.2.1:8080", "down": None}, {"address": "192.0.2.2:8080", "down": None})


def test_newcomers_only_join_a_cluster_that_serves():
    layout = {"lb1": ("lb",), "web1": ("web",), "web2": ("web",), "web3": ("web",),
              "db1": ("db",)}
    assert build(hosts(layout)).newcomers == ()  # a first deploy: nobody is new
    serving = {"web1": RELEASE, "web2": RELEASE}
    assert build(hosts(layout, current=serving)).newcomers == ("web3",)
    # One that is down is not new: it joins when it is back.
    assert build(hosts(layout, current=serving, down=("web3",))).newcomers == ()


def test_the_switch_names_the_web_hosts_that_serve_another_release():
    layout = {"lb1": ("lb",), "web1": ("web",), "web2": ("web",), "db1": ("db",)}
    same = build(hosts(layout, current={"web1": RELEASE, "web2": RELEASE}))
    assert same.switch.release == RELEASE and same.switch.hosts == ()
    older = build(hosts(layout, current={"web1": "6.8.3-aaaaaaaaaaaa", "web2": RELEASE}))
    assert older.switch.hosts == ("web1",)
    first = build(hosts(layout))
    assert first.switch.hosts == ("web1", "web2")


def test_settings_are_typed_read_only_and_defaulted():
    s = settings_of({"mesh_excludes": ["/cache", "*.swp"], "lb_port": 8080,
                     "secrets": {"db_password": "x"}, "mesh_root": None})
    assert s.lb_port == 8080 and s.web_port == 80 and s.drain is False
    assert s.mesh_excludes == ("/cache", "*.swp") and s.mesh_root is None
    assert dict(s.secrets) == {"db_password": "x"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lb_port = 81  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.secrets["db_password"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        s.no_such_setting  # noqa: B018


def test_the_plan_cannot_be_changed():
    plan = build(hosts(SPLIT))
    with pytest.raises(TypeError):
        plan.nodes["web3"] = plan.node("web1")  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.node("web1").address = "10.9.9.9"  # type: ignore[misc]


def test_deploys_read_no_host_data_but_the_plan():
    """The tiers get what they need from the plan: host data is read where the plan is
    built (plan.py), checked (validate.py, settings.py), and for two values that are no
    settings (a connection option, status.py's output format)."""
    from pathlib import Path

    import pyinfra_wordpress_lb.deploys as deploys

    allowed = {"plan.py", "validate.py", "settings.py", "_util.py", "secrets.py"}
    readers = {}
    for module in pkgutil.iter_modules(deploys.__path__):
        path = Path(deploys.__path__[0]) / f"{module.name}.py"
        lines = [n for n in path.read_text().splitlines() if ".data." in n or ".data)" in n]
        if lines and path.name not in allowed:
            readers[path.name] = lines
    assert set(readers) <= {"restore.py", "status.py"}, readers
    assert all("_sudo" in line for line in readers.get("restore.py", [])), readers
    assert all("status_format" in line for line in readers.get("status.py", [])), readers


def test_a_balancer_alone_in_front_of_backends_it_does_not_manage():
    """examples/balancer-only: no web host, no database host; the site is the balancer's."""
    plan = build(hosts({"lb1": ("lb",)}, data={"lb_backends": ["192.0.2.1:8080"],
                                               "site_url": "http://shop.example"}))
    assert plan.web == () and plan.db_endpoint == ""
    assert plan.site.url == "http://shop.example"
    assert plan.backends() == ("192.0.2.1:8080",)
    assert plan.switch.hosts == () and plan.newcomers == ()


# Sites: `sites` lists them; without it the one-site settings describe one (the shorthand).

def test_a_listed_site_has_an_identity_of_its_own_and_the_one_site_settings_as_defaults():
    plan = build(hosts(SPLIT, data={
        "admin_email": "ops@example.com", "wordpress_version": "6.8.3",
        "wordpress_checksum": SHA1, "db_name": "wordpress",
        "sites": [{"name": "shop-2", "site_url": "https://shop.example.com"}]}))
    (site,) = plan.sites
    assert site is plan.site and site.name == "shop-2"
    assert site.url == "https://shop.example.com"
    # Its own files, database, account and Unix user, from its name...
    assert (site.docroot, site.db_name, site.db_user, site.user, site.home) == (
        "/var/www/shop-2", "wp_shop_2", "wp_shop_2", "wp-shop-2", "/var/lib/wp-shop-2")
    # ...the rest from the one-site settings.
    assert site.admin_email == "ops@example.com" and site.release.version == "6.8.3"


def test_the_site_listed_as_main_is_the_one_site_settings_site():
    """Moving from the one-site settings to `sites`: the entry `main` names the same
    files, database, account, user and names, and the plan is the same."""
    shorthand = build(hosts(SPLIT, data={"site_url": "https://blog.example.com",
                                         "site_aliases": ["example.com"]}))
    listed = build(hosts(SPLIT, data={"site_aliases": ["example.com"], "sites": [
        {"name": "main", "site_url": "https://blog.example.com"}]}))
    assert listed.site == shorthand.site
    assert listed.db_endpoint == shorthand.db_endpoint and listed.switch == shorthand.switch


def test_a_sites_names_and_secrets_follow_its_name_but_mains():
    plan = build(hosts(SPLIT, data={"sites": [
        {"name": "main", "site_url": "https://blog.example"},
        {"name": "shop-2", "site_url": "https://shop.example"}]}))
    main, shop = plan.sites
    assert (main.key, main.tag, main.secret("db_password")) == ("wordpress", "", "db_password")
    assert (shop.key, shop.tag, shop.secret("db_password")) == (
        "wp-shop-2", " (shop-2)", "db_password@shop-2")


def test_each_site_switches_on_the_web_hosts_serving_another_of_its_releases():
    found = hosts(SPLIT, data={"wordpress_checksum": SHA1, "wordpress_version": "7.1.0",
                               "sites": [{"name": "main", "site_url": "https://blog.example"},
                                         {"name": "shop", "site_url": "https://shop.example"}]},
                  current={"web1": RELEASE, "web2": RELEASE})
    found = [dataclasses.replace(h, site_releases={
        "main": h.releases, "shop": {"current": RELEASE if h.name == "web1" else None}})
        if h.releases else h for h in found]
    plan = build(found)
    main, shop = plan.sites
    assert plan.switch_of(main).hosts == () and plan.switch_of(shop).hosts == ("web2",)


def test_every_sites_own_name_reaches_the_balancers():
    plan = build(hosts({"lb1": ("lb",), "web1": ("web",), "db1": ("db",)}, data={"sites": [
        {"name": "main", "site_url": "https://blog.example"},
        {"name": "shop", "site_url": "http://shop.example:8080", "tls": "off"}]}))
    assert dict(plan.connect_to) == {"blog.example:443": "10.0.0.10:443",
                                     "shop.example:8080": "10.0.0.10:80"}


def test_the_shorthand_site_is_named_main_and_runs_as_the_wordpress_user():
    site = build(hosts(SPLIT, data={"wordpress_user": "wp", "wordpress_home": "/srv/wp-home"})).site
    assert (site.name, site.user, site.home) == ("main", "wp", "/srv/wp-home")
    assert build(hosts(SPLIT)).site.user == "wordpress"


def test_a_web_host_serving_a_site_no_entry_names_is_unclaimed():
    found = hosts(SPLIT, data={"sites": [{"name": "shop", "site_url": "https://shop.example"}]})
    found = [dataclasses.replace(h, unclaimed="/var/www/wordpress") if h.name == "web1" else h
             for h in found]
    assert dict(build(found).unclaimed) == {"web1": "/var/www/wordpress"}


def test_the_sites_aliases_are_in_its_certificate():
    site = build(hosts(SPLIT, data={"site_url": "https://www.example.com",
                                    "site_aliases": ["Example.com"]})).site
    assert site.aliases == ("example.com",)
    assert site.tls.names == ("www.example.com", "example.com")
    listed = build(hosts(SPLIT, data={"sites": [{"name": "shop", "site_url": "https://shop.example",
                                                 "aliases": ["www.shop.example"]}]})).site
    assert listed.aliases == ("www.shop.example",)


def test_a_listed_site_does_not_inherit_the_shorthands_aliases():
    site = build(hosts(SPLIT, data={"site_aliases": ["example.com"], "sites": [
        {"name": "shop", "site_url": "https://shop.example"}]})).site
    assert site.aliases == () and site.tls.names == ("shop.example",)


def test_a_sites_own_secret_is_overridden_by_its_own_environment_variable():
    from pyinfra_wordpress_lb.deploys.secrets import env_name

    assert env_name("db_password") == "PWLB_SECRET_DB_PASSWORD"
    assert env_name("db_password@shop-2") == "PWLB_SECRET_DB_PASSWORD__SHOP_2"
