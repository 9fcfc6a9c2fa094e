"""The web tier and WordPress itself, on the shared split bed (Debian 13) and seed (12)."""

from __future__ import annotations

import json
import shlex
import time

import pytest

from pyinfra_wordpress_lb.operations.mariadb import native_password_hash
from tests.integration import wp
from tests.runner import pyinfra

TITLE = "WordPress on pyinfra"


@pytest.fixture(scope="module")
def split(beds):
    bed, _, _ = beds.deployed("split", "13")
    return bed


def backends(bed):
    return {h.name: f"http://{h.address}" for h in bed.group("web")}


def test_every_backend_serves_the_front_page(split):
    for name, base in backends(split).items():
        response = wp.get(base, "/", bed=split)
        assert response.status_code == 200, (name, response.status_code, response.headers)
        assert wp.title(response.text) == TITLE, name


def test_pretty_permalinks(split):
    base = backends(split)["web2"]
    response = wp.get(base, "/hello-world/", bed=split)
    assert response.status_code == 200 and "Hello world!" in response.text
    assert wp.get(base, "/?p=1", bed=split).headers["Location"].endswith("/hello-world/")


def test_admin_logs_in_with_the_stored_password(split):
    # Over HTTPS through the balancers (WordPress forces HTTPS for wp-admin on an https
    # site); every backend honours the session.
    password = wp.secrets(split)["admin_password"]
    session = wp.login(split.site_url, "admin", password, split)
    assert wp.logged_in(session)
    served = set()
    for _ in range(20):
        dashboard = session.get(split.site_url + "/wp-admin/", timeout=30, allow_redirects=False)
        assert dashboard.status_code == 200 and "Dashboard" in wp.title(dashboard.text)
        served.add(dashboard.headers["X-Served-By"])
    assert served == {"web1", "web2"}
    wrong = wp.login(split.site_url, "admin", password + "x", split)
    assert not wp.logged_in(wrong)


def test_wp_config_is_not_readable_by_others_nor_served(split):
    for name, base in backends(split).items():
        _, stat = split.exec(name, "stat -c '%a %U %G' /var/www/wordpress/wp-config.php")
        mode, user, group = stat.split()
        assert int(mode[-1]) == 0 and (user, group) == ("wordpress", "wordpress"), stat
        assert wp.get(base, "/wp-config.php", bed=split).status_code == 403
        assert wp.get(base, "/.pwlb-release", bed=split).status_code == 403


def test_php_in_uploads_is_never_executed(split):
    split.exec("web1", "printf '<?php echo \"EXEC\" . \"UTED\";' > /var/www/wordpress/shared/wp-content/uploads/x.php"
                       " && printf 'plain' > /var/www/wordpress/shared/wp-content/uploads/x.txt")
    try:
        response = wp.get(backends(split)["web1"], "/wp-content/uploads/x.php", bed=split)
        assert response.status_code == 403
        assert "EXECUTED" not in response.text
        assert wp.get(backends(split)["web1"], "/wp-content/uploads/x.txt",
                      bed=split).text == "plain"
    finally:
        split.exec("web1", "rm -f /var/www/wordpress/shared/wp-content/uploads/x.php "
                           "/var/www/wordpress/shared/wp-content/uploads/x.txt")


def test_static_assets_get_long_cache_headers(split):
    response = wp.get(backends(split)["web1"], "/wp-includes/css/dashicons.min.css", bed=split)
    assert response.status_code == 200
    assert "max-age=31536000" in response.headers["Cache-Control"]


def test_php_fpm_pool_runs_as_wordpress_with_opcache(split):
    _, version = split.exec("web1", "php -r 'echo PHP_MAJOR_VERSION.\".\".PHP_MINOR_VERSION;'")
    assert version == "8.4"
    _, ps = split.exec("web1", "ps -o user:20=,args= -C php-fpm8.4")
    workers = [line for line in ps.splitlines() if "pool wordpress" in line]
    assert workers and all(line.split()[0] == "wordpress" for line in workers), ps
    assert "pool www" not in ps
    probe = "/var/www/wordpress/current/pwlb-probe.php"
    split.exec("web1", f"printf '<?php echo json_encode(array(ini_get(\"opcache.enable\"), "
                       f"ini_get(\"opcache.validate_timestamps\"), get_current_user()));' > {probe}"
                       f" && chown wordpress: {probe}")
    try:
        response = wp.get(backends(split)["web1"], "/pwlb-probe.php", bed=split)
        assert response.json() == ["1", "1", "wordpress"]
    finally:
        split.exec("web1", f"rm -f {probe}")


def test_the_pools_php_opens_files_of_its_own_site_only(split):
    """open_basedir: the site's PHP reads its own wp-config.php and writes its uploads,
    and cannot read the rest of the host."""
    probe = "/var/www/wordpress/current/pwlb-basedir.php"
    split.exec("web1", "printf '%s' " + shlex.quote(
        "<?php echo json_encode(array("
        "@file_get_contents('/etc/passwd') !== false, "
        "@file_get_contents('/etc/nginx/nginx.conf') !== false, "
        "@file_get_contents('/var/www/wordpress/wp-config.php') !== false, "
        "@file_put_contents(sys_get_temp_dir() . '/pwlb-basedir', 'x') !== false, "
        "ini_get('open_basedir')));") + f" > {probe} && chown wordpress: {probe}")
    try:
        response = wp.get(backends(split)["web1"], "/pwlb-basedir.php", bed=split)
        passwd, nginx, config, temp, allowed = response.json()
        assert (passwd, nginx) == (False, False), response.text
        assert (config, temp) == (True, True), response.text
        assert allowed.split(":")[0] == "/var/www/wordpress/", allowed
    finally:
        split.exec("web1", f"rm -f {probe}")


def test_moving_the_site_into_sites_as_main_changes_nothing(split, beds):
    """`main` in `sites` is the one-site settings' site: its files, database, account,
    user and the names of its pool, vhost and units."""
    entry = {"name": "main", "site_url": split.site_url}
    run = beds.run(split, "--data", "sites=" + json.dumps([entry]))
    assert run.returncode == 0 and run.changed == 0, run.output[-3000:]


def test_a_sites_list_that_leaves_out_the_served_site_is_refused(split, beds):
    """Listed under a new name with its own (new) identity, the served site would be
    left behind: refused before any change, naming the hosts and the docroot."""
    entry = {"name": "shop", "site_url": split.site_url}
    run = beds.run(split, "--data", "sites=" + json.dumps([entry]))
    assert run.returncode != 0 and run.changed == 0
    for web in ("web1", "web2"):
        assert (f"{web}: serves a site from /var/www/wordpress that no entry of `sites` "
                "names") in run.output, run.output[-3000:]
    assert "nothing was changed" in run.output
    _, ls = split.exec("web1", "ls /var/www")
    assert "shop" not in ls.split()


def test_no_secret_in_the_output_at_vv_and_diff(split, beds):
    run = beds.run(split, "-vv", "--diff")
    assert run.returncode == 0 and run.changed == 0
    for name, value in wp.secrets(split).items():
        assert value not in run.output, f"secret {name} printed"


def _watch_processes(bed, host: str) -> str:
    """Start sampling every process's command line on a host every 50 ms (into a file
    the caller reads once the watch is stopped by removing the returned flag file)."""
    flag = "/root/pwlb-ps-watch"
    bed.exec(host, f"rm -f {flag}.log; touch {flag}; nohup sh -c 'while [ -f {flag} ]; do "
                   f"ps -eo args >> {flag}.log; sleep 0.05; done' >/dev/null 2>&1 &")
    return flag


def test_a_changed_secret_is_applied_without_showing_it(split, beds):
    new = "Rotated-" + wp.secrets(split)["db_password"][:12]
    new_admin = "Admin-" + wp.secrets(split)["admin_password"][:12]
    watches = {h: _watch_processes(split, h) for h in ("db1", "web1")}
    rotated = beds.run(split, "-vvv", "--diff", env={"PWLB_SECRET_DB_PASSWORD": new,
                                                     "PWLB_SECRET_ADMIN_PASSWORD": new_admin})
    # The watch ends with the run (the checks below log in with the new password).
    samples = {}
    for host, flag in watches.items():
        split.exec(host, f"rm -f {flag}")
        samples[host] = split.exec(host, f"cat {flag}.log")[1]
    try:
        assert rotated.returncode == 0, rotated.output[-4000:]
        assert new not in rotated.output and new_admin not in rotated.output
        # Nor the stored hash (pyinfra's MysqlUsers fact printed them at -vvv).
        assert native_password_hash(new) not in rotated.output
        changed = set(rotated.changed_ops)
        assert "WordPress | Write wp-config.php (secrets; never shown)" in changed
        assert any(op.startswith("Database | Add database account") for op in changed)
        assert "WordPress install | Apply a changed admin_password secret" in changed
        for name, base in backends(split).items():
            assert wp.title(wp.get(base, "/", bed=split).text) == TITLE, name
        code, out = wp.mariadb_as(split, "web1", "wordpress", new, split.host("db1").address)
        assert code == 0, out
        assert wp.logged_in(wp.login(split.site_url, "admin", new_admin, split))
        # Never on a command line (ps every 50 ms during the run), nor in the journal
        # (sudo logs the commands it runs).
        for host, seen in samples.items():
            assert seen.count("\n") > 20, f"{host}: ps was not sampled"
            assert new not in seen and new_admin not in seen, f"{host}: seen in ps"
            _, journal = split.exec(host, "journalctl --no-pager -q --since '-15min'")
            assert new not in journal and new_admin not in journal, f"{host}: in the journal"
    finally:
        for host, flag in watches.items():
            split.exec(host, f"rm -f {flag}", check=False)
        restored = beds.run(split)
    assert restored.returncode == 0 and restored.changed > 0
    assert wp.logged_in(wp.login(split.site_url, "admin", wp.secrets(split)["admin_password"],
                                 split))
    assert beds.run(split).changed == 0


def test_a_php_pool_php_fpm_refuses_is_undone(split, beds):
    pool = "$(ls -d /etc/php/*/fpm)/pool.d/wordpress.conf"
    ini = "$(ls -d /etc/php/*/fpm)/conf.d/90-wordpress.ini"
    before = split.exec("web1", f"sha256sum {pool} {ini}")[1]
    run = pyinfra(split.hosts_file, "--limit", "web1",
                  deploy="tests/integration/deploys/broken_php_pool.py")
    assert run.returncode != 0
    assert "PHP-FPM refuses the new pool wordpress configuration" in run.output, run.why()
    assert split.exec("web1", f"sha256sum {pool} {ini}")[1] == before
    code, _ = split.exec("web1", "ls /etc/php/*/fpm/pool.d/*.pwlb-* /etc/php/*/fpm/conf.d/*.pwlb-*",
                         check=False)
    assert code != 0, "copies were left behind"
    split.exec("web1", "systemctl is-active 'php*-fpm.service'")
    assert wp.title(wp.get(backends(split)["web1"], "/", bed=split).text) == TITLE
    assert beds.run(split).changed == 0


def test_a_wrong_checksum_stops_and_leaves_the_site_serving(split, beds):
    wrong = "sha256:" + "0" * 64
    run = beds.run(split, "--data", f"wordpress_checksum={wrong}")
    assert run.returncode != 0
    assert "0" * 64 in run.output and "wordpress_checksum" in run.output
    for name, base in backends(split).items():
        response = wp.get(base, "/", bed=split)
        assert response.status_code == 200 and wp.title(response.text) == TITLE, name
        # Nothing was unpacked, the served release is the same.
        _, releases = split.exec(name, "ls /var/www/wordpress/releases; "
                                       "readlink /var/www/wordpress/current")
        assert "000000000000" not in releases
    # Every web host failed that run, and each still serves: the balancers keep sending
    # to them (taking all out would leave no backend: a 502 for each uncached page).
    for lb in split.group("lb"):
        _, conf = split.exec(lb.name, "cat /etc/nginx/sites-available/wordpress-lb")
        assert " down;" not in conf, lb.name
    response = wp.get(split.site_url, "/?past-the-cache=1", bed=split)
    assert response.status_code == 200 and wp.title(response.text) == TITLE
    split.exec("web1", "rm -f /var/cache/wordpress-lb/wordpress-*-000000000000.tar.gz")
    split.exec("web2", "rm -f /var/cache/wordpress-lb/wordpress-*-000000000000.tar.gz")


def test_seed_bed_debian_12_serves_wordpress_downloaded_by_url(beds):
    bed, first, second = beds.deployed("seed", "12")
    assert any(op.startswith("WordPress | Download the WordPress") for op in first.changed_ops)
    assert second.changed == 0
    _, version = bed.exec("hostb", "php -r 'echo PHP_MAJOR_VERSION.\".\".PHP_MINOR_VERSION;'")
    assert version == "8.2"
    for web in bed.group("web"):
        # hosta is lb + web: until the balancer tier exists its vhost is on port 80.
        response = wp.get(f"http://{web.address}", "/", bed=bed)
        assert response.status_code == 200 and wp.title(response.text) == TITLE, web.name
    session = wp.login(f"http://{bed.host('hostb').address}", "admin",
                       wp.secrets(bed)["admin_password"], bed)
    assert wp.logged_in(session)


def test_the_pools_php_log_is_rotated(split):
    log = "/var/log/php-fpm-wordpress.log"
    split.exec("web1", f"echo 'a line to rotate' >> {log} && chown wordpress {log}")
    split.exec("web1", "logrotate -f /etc/logrotate.d/wordpress-lb")
    split.exec("web1", f"test -s {log}.1 && grep -q 'a line to rotate' {log}.1")
    _, owner = split.exec("web1", f"stat -c '%U %a' {log}")
    assert owner.split() == ["wordpress", "640"]


def test_wordpress_updates_by_itself_what_auto_updates_allows(split):
    """The default `chosen`: translations, and the plugins and themes an administrator
    chose; never core (the deploy's). What WordPress's own updater decides, asked on a
    web host (no update can be downloaded here)."""
    script = ("$_SERVER['HTTP_HOST'] = 'localhost'; require './wp-load.php'; "
              "require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php'; "
              "require_once ABSPATH . 'wp-admin/includes/update.php'; "
              "$u = new WP_Automatic_Updater(); echo json_encode(array("
              "'disabled' => $u->is_disabled(), "
              "'plugins_choosable' => wp_is_auto_update_enabled_for_type('plugin'), "
              "'core' => apply_filters('auto_update_core', true, (object) array()), "
              "'translations' => apply_filters('auto_update_translation', true, "
              "(object) array())));")
    _, out = split.exec("web1", "cd /var/www/wordpress/current && runuser -u wordpress -- "
                                f"php -r {shlex.quote(script)}")
    decided = json.loads(out.strip().splitlines()[-1])
    assert decided == {"disabled": False, "plugins_choosable": True, "core": False,
                       "translations": True}


def test_an_update_wordpress_makes_on_one_host_reaches_the_others(split):
    """What auto-updates do (WordPress's own Plugin_Upgrader, here from a local package: no
    update can be downloaded here), on web1: the new plugin files, and the removal of the
    old ones, reach web2 through the mesh."""
    plugins = "/var/www/wordpress/shared/wp-content/plugins"
    upgrade = ("$_SERVER['HTTP_HOST'] = 'localhost'; require './wp-load.php'; "
               "require_once ABSPATH . 'wp-admin/includes/admin.php'; "
               "require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php'; "
               "$u = new Plugin_Upgrader(new Automatic_Upgrader_Skin()); "
               "$r = $u->install($argv[1], array('overwrite_package' => true)); "
               "exit($r === true ? 0 : 1);")

    def package(version: int, extra: str) -> str:
        path = f"/tmp/pwlb-auto-{version}.zip"
        build = ("$z = new ZipArchive(); $z->open($argv[1], ZipArchive::CREATE); "
                 "$z->addFromString('pwlb-auto/pwlb-auto.php', \"<?php\\n/*\\n * Plugin Name: "
                 "pwlb-auto\\n * Version: \" . $argv[2] . \"\\n */\\n\"); "
                 "$z->addFromString('pwlb-auto/' . $argv[3], 'x'); $z->close();")
        split.exec("web1", f"rm -f {path}; php -r {shlex.quote(build)} {path} {version} {extra} "
                           f"&& chown wordpress {path}")
        return path

    def everywhere(check: str) -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all(split.exec(h, check, check=False)[0] == 0 for h in ("web1", "web2")):
                return True
            time.sleep(0.25)
        return False

    try:
        for version, extra in ((1, "old-file.txt"), (2, "new-file.txt")):
            zip_path = package(version, extra)
            split.exec("web1", "cd /var/www/wordpress/current && runuser -u wordpress -- "
                               f"php -r {shlex.quote(upgrade)} {zip_path}")
            assert everywhere(f"grep -q 'Version: {version}' {plugins}/pwlb-auto/pwlb-auto.php"
                              f" && test -f {plugins}/pwlb-auto/{extra}"), version
        # Version 2 no longer has version 1's file: removed on every host.
        assert everywhere(f"test ! -e {plugins}/pwlb-auto/old-file.txt")
    finally:
        split.exec("web1", f"rm -rf {plugins}/pwlb-auto /tmp/pwlb-auto-*.zip")
        everywhere(f"test ! -e {plugins}/pwlb-auto")
