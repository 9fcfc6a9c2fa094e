"""WordPress networks (`multisite`), on @fake hosts: a subdirectory network and a
subdomain network beside a one-site site. wp-config.php makes each a network (without
forcing one URL), the backends map sub-sites' paths or pass their names on, the
balancers answer them, keep their admin and API out of the page cache and rate-limit
their logins, WP-Cron runs every site's events; a one-site site's files stay as they
were."""

from __future__ import annotations

import re

import pytest

from tests.composition.test_sites import FPM, SPLIT, text
from tests.fakedeploy import plan

SITES = [{"name": "main", "site_url": "https://blog.example"},
         {"name": "news", "site_url": "https://news.example", "multisite": "subdirectory"},
         {"name": "mags", "site_url": "https://mags.example", "multisite": "subdomain"}]


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    secrets_file = tmp_path_factory.mktemp("networks") / "hosts.secrets.json"
    return plan(SPLIT, secrets_file, data={"sites": SITES}, fake_responses=FPM,
                show_secrets=True)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    secrets_file = tmp_path_factory.mktemp("plain") / "hosts.secrets.json"
    return plan(SPLIT, secrets_file, data={"sites": SITES[:1] + [
        {k: v for k, v in SITES[1].items() if k != "multisite"}]}, fake_responses=FPM)


def test_wp_config_makes_a_network_without_forcing_one_url(networks):
    web = networks["web1"]
    news = text(web, "WordPress | Write wp-config.php (secrets; never shown) (news)")
    assert "define( 'MULTISITE', true );" in news
    assert "define( 'SUBDOMAIN_INSTALL', false );" in news
    assert "define( 'DOMAIN_CURRENT_SITE', 'news.example' );" in news
    assert "if ( ! defined( 'PWLB_NETWORK_SETUP' ) ) {" in news
    assert "define( 'WP_HOME'" not in news and "define( 'WP_SITEURL'" not in news
    assert "define( 'WP_CONTENT_URL'" not in news
    mags = text(web, "WordPress | Write wp-config.php (secrets; never shown) (mags)")
    assert "define( 'SUBDOMAIN_INSTALL', true );" in mags
    # Sub-sites' own requests (loopback, cron) reach the balancers too.
    assert "'*.mags.example:443' =>" in mags
    main = text(web, "WordPress | Write wp-config.php (secrets; never shown)")
    assert "MULTISITE" not in main and "define( 'WP_HOME', 'https://blog.example' );" in main


def test_the_backends_map_sub_sites_paths_or_pass_their_names_on(networks):
    web = networks["web1"]
    news = text(web, "Web | Write the nginx backend vhost (news)")
    assert r"rewrite ^/[^/]+(/wp-(?:admin|includes|content)/.*) $1 last;" in news
    assert r"rewrite ^/[^/]+(/wp-[^/]*\.php)$ $1 last;" in news
    assert "fastcgi_param HTTP_HOST news.example;" in news
    mags = text(web, "Web | Write the nginx backend vhost (mags)")
    assert re.search(r"server_name mags\.example \*\.mags\.example;", mags)
    assert r'if ($host ~* "^[a-z0-9-]+\.mags\.example$") {' in mags
    assert "fastcgi_param HTTP_HOST $pwlb_site_host;" in mags
    assert "rewrite" not in mags
    first = text(web, "Web | Write the nginx backend vhost")
    assert "rewrite" not in first and "$pwlb_site_host" not in first


def test_the_balancers_answer_the_sub_sites_and_keep_their_admin_out_of_the_cache(networks):
    conf = text(networks["lb1"], "Balancer | Write the balancer vhost")
    assert '"~*^/[^/]+/(wp-admin/|wp-json/)" 1;' in conf
    news = conf[conf.index("# The site news"):conf.index("# The site mags")]
    login = news[news.index(r"location ~ ^/[^/]+/wp-login\.php$ {"):]
    assert re.match(r"[^}]*limit_req zone=wordpress_lb_login_news burst=10 nodelay;",
                    login, re.S), login[:1500]
    assert r"location ~ ^/[^/]+/xmlrpc\.php$ {" in news
    mags = conf[conf.index("# The site mags"):]
    assert re.search(r"server_name mags\.example \*\.mags\.example;", mags)
    assert "return 301 https://$host$request_uri;" in mags
    assert r"location ~ ^/[^/]+/wp-login" not in mags


def test_a_one_site_balancer_and_backend_are_as_they_were(networks, plain):
    conf = text(plain["lb1"], "Balancer | Write the balancer vhost")
    assert "[^/]+/(wp-admin" not in conf and "location ~ ^/[^/]+/" not in conf
    for name in ("Web | Write the nginx backend vhost", "WP-Cron | Install the WP-Cron runner",
                 "Web | Write the nginx backend vhost (news)"):
        assert text(plain["web1"], name), name
    assert text(plain["web1"], "WP-Cron | Install the WP-Cron runner") == text(
        networks["web1"], "WP-Cron | Install the WP-Cron runner")
    assert text(plain["web1"], "Web | Write the nginx backend vhost") == text(
        networks["web1"], "Web | Write the nginx backend vhost")


def test_wp_cron_runs_every_sites_events(networks, plain):
    runner = text(networks["web1"], "WP-Cron | Install the WP-Cron runner (news)")
    assert "passthru(" in runner and "get_sites(" in runner
    one = text(plain["web1"], "WP-Cron | Install the WP-Cron runner (news)")
    assert "get_sites(" not in one
    # One site's runner looks with the least of WordPress first (nothing due: done); a
    # network's loads all of it (its sites' events are each site's own).
    assert "define( 'SHORTINIT', true );" in one and "' --due'" in one
    assert "SHORTINIT" not in runner


@pytest.mark.parametrize("entry, expected", [
    ({"multisite": "subfolder"},
     "sites entry news: multisite 'subfolder' is not one of off, subdirectory, subdomain"),
    ({"multisite": "subdomain", "site_url": "https://10.0.0.9"},
     "sites entry news: multisite = \"subdomain\" needs a DNS name in site_url"),
    ({"multisite": "subdirectory", "site_url": "https://news.example/blog"},
     "a network lives at the root of its host; site_url 'https://news.example/blog'"),
    ({"multisite": "subdirectory", "site_url": "https://news.example:8443"},
     "WordPress networks take no port"),
    ({"multisite": "subdomain", "tls": "acme"},
     "needs a certificate for *.news.example, which ACME's http-01 cannot give"),
])
def test_a_network_the_cluster_cannot_serve_is_refused(tmp_path, entry, expected):
    sites = [SITES[0], {**SITES[1], **entry}]
    with pytest.raises(Exception) as failure:
        plan(SPLIT, tmp_path / "s.json", data={"sites": sites, "acme_email": "a@b.example"})
    assert expected in str(getattr(failure.value, "exception", failure.value))
