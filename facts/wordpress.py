"""Facts about WordPress on a web host: its releases, whether it is installed, whether its
database needs an upgrade."""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase

from pyinfra_wordpress_lb.facts._lines import TO_UTC, key_values


class Releases(FactBase[dict]):
    """
    Returns the WordPress releases under a base directory (``<base>/releases/<id>``,
    newest first, each with the ``"<version> <checksum>"`` it records), the one
    ``<base>/current`` points at, and whether ``<base>`` still holds the single-docroot
    layout of earlier versions (core files right in it).

    .. code:: python

        {
            "current": "6.8.12-acf9b39c5f55",
            "releases": {"6.8.12-acf9b39c5f55": "6.8.12 sha256:acf9b3...",
                         "6.1.9-2b1e6f0c3d4a": "6.1.9 sha256:2b1e6f..."},
            "order": ["6.8.12-acf9b39c5f55", "6.1.9-2b1e6f0c3d4a"],
            "legacy": False,
        }
    """

    @staticmethod
    def default() -> dict:
        return {"current": None, "releases": {}, "order": [], "legacy": False}

    def command(self, base: str) -> str:
        root = shlex.quote(base)
        # (Few processes: each site's base is asked at every run, 20 of them on a host.)
        return (
            f"cd {root} 2>/dev/null || exit 0; "
            "c=$(readlink current 2>/dev/null); echo \"current=${c#releases/}\"; "
            "[ -d wp-includes ] && echo legacy=yes; "
            "ls -1t releases 2>/dev/null | while read -r id; do r=; "
            "[ -f \"releases/$id/.pwlb-release\" ] && read -r r < \"releases/$id/.pwlb-release\"; "
            "echo \"release=$id $r\"; done; true"
        )

    def process(self, output: list[str]) -> dict:
        result = self.default()
        for line in output:
            line = line.strip()
            if line.startswith("current="):
                result["current"] = line.split("=", 1)[1] or None
            elif line == "legacy=yes":
                result["legacy"] = True
            elif line.startswith("release="):
                release_id, _, recorded = line.split("=", 1)[1].partition(" ")
                if release_id.endswith(".tmp"):
                    continue  # an unpack that did not finish
                result["releases"][release_id] = recorded.strip() or None
                result["order"].append(release_id)
        return result


class DatabaseVersion(FactBase[dict | None]):
    """
    Returns the database schema version WordPress's code in a docroot expects (``core``,
    ``$wp_db_version``) and the one the database has (``db``, the ``db_version``
    option): ``db`` below ``core`` means a database upgrade is due. ``None`` when it
    cannot tell (no configuration yet, database unreachable).

    .. code:: python

        {"core": 60421, "db": 53496}
    """

    default = type(None)

    def command(self, docroot: str, user: str = "wordpress") -> str:
        return _database_command(docroot, user)

    def process(self, output: list[str]) -> dict | None:
        for line in reversed(output):
            match = re.match(r"^core=(\d+) db=(\d*)$", line.strip())
            if match:
                return {"core": int(match.group(1)), "db": int(match.group(2) or 0)}
        return None


class Installed(FactBase[bool | None]):
    """
    Is WordPress installed in the database this docroot's ``wp-config.php`` points at
    (and, for a network, ``PWLB_MULTISITE`` in it, the network with its first site)?
    ``True``/``False``; ``False`` too when there is no ``wp-config.php`` yet; ``None``
    when it cannot tell (PHP missing, database unreachable).

    .. code:: python

        True
    """

    default = type(None)

    def command(self, docroot: str, user: str = "wordpress") -> str:
        return _database_command(docroot, user)

    def process(self, output: list[str]) -> bool | None:
        for line in reversed(output):
            if line.strip() == "installed":
                return True
            if line.strip() in ("not-installed", "no-config"):
                return False
        return None


# Where a site user's PHP runs outside PHP-FPM keep their compiled scripts (OPcache's
# file cache), under that user's home (WordPress's questions here, WP-Cron's runs).
PHP_CACHE = ".cache/wordpress-lb-php"


def _database_command(docroot: str, user: str) -> str:
    """One PHP run answering both `Installed` and `DatabaseVersion` (the same command:
    asked together, it runs once). PHP without its ini files, only the database
    extension loaded: it starts in ~5 ms, not ~30 (Debian's CLI loads ~35 extensions),
    and WordPress's SHORTINIT needs no other."""
    root, cache = shlex.quote(docroot), ""
    if re.fullmatch(r"[a-z_][a-z0-9_-]*", user):
        # PHP's compiled scripts kept between runs (~35 -> ~20 ms a run), in the user's
        # own home: only that user (and root) can write what that user runs.
        cache = (f"c=~{user}/{PHP_CACHE}; [ -d \"$c\" ] || runuser -u {user} -- "
                 "mkdir -p -m 700 \"$c\" 2>/dev/null; ")
        cache_options = ("-d zend_extension=opcache -d opcache.enable_cli=1 "
                         "-d opcache.file_cache=\"$c\" -d opcache.file_cache_only=1 ")
    return (
        f"if [ ! -f {root}/wp-config.php ]; then echo no-config; else "
        f"{cache}cd {root} && runuser -u {shlex.quote(user)} -- "
        f"php -n -d extension=mysqlnd -d extension=mysqli {cache_options if cache else ''}"
        f"-d display_errors=stderr "
        f"-r {shlex.quote(_DATABASE_PHP)} 2>/dev/null | tail -n 2; fi; true"
    )


# Loads the least of WordPress that answers (SHORTINIT: its database and options, no
# plugin or theme; a quarter of a full load's time), as the pool user, with
# WP_INSTALLING so that WordPress neither redirects to its installer nor dies on missing
# tables. PWLB_NETWORK_SETUP: a network's wp-config.php reads the database as one site
# (its network tables may not be there yet): a network is installed once its first
# site is in them.
_DATABASE_PHP = (
    "define('SHORTINIT', true); define('WP_INSTALLING', true); "
    "define('PWLB_NETWORK_SETUP', true); $_SERVER['HTTP_HOST'] = 'localhost'; "
    "require './wp-load.php'; $ok = is_blog_installed(); "
    "if ($ok && defined('PWLB_MULTISITE')) { global $wpdb; $wpdb->suppress_errors(); "
    "$ok = (bool) $wpdb->get_var(\"SELECT blog_id FROM {$wpdb->base_prefix}blogs "
    "WHERE blog_id = 1\"); } "
    "global $wp_db_version; $db = get_option('db_version'); "
    "echo $ok ? 'installed' : 'not-installed', PHP_EOL, "
    "'core=', $wp_db_version, ' db=', $db, PHP_EOL;"
)


_CRON_PHP = (  # (a network: its main site's events)
    "define('PWLB_NETWORK_SETUP', true); "
    "$_SERVER['HTTP_HOST'] = 'localhost'; require './wp-load.php'; $late = 0; "
    "foreach ((array) _get_cron_array() as $at => $hooks) { "
    "if ($at < time() - {grace}) { $late += count($hooks); } } echo 'overdue=', $late, PHP_EOL;"
)


class Cron(FactBase[dict]):
    """
    Returns the state of WordPress's scheduled events as the system runs them
    (``wordpress-cron.timer``, or ``<unit>.timer`` of another site): whether the timer is active, when its last run started
    (UTC, ``None`` before the first) and whether it succeeded, and how many events are
    overdue (due more than ``grace`` seconds ago; ``None`` when PHP cannot tell).

    .. code:: python

        {"timer": True, "last_run": "2026-11-30T07:41:02+00:00", "last_ok": True,
         "overdue": 0}
    """

    default = dict

    def command(self, docroot: str, user: str = "wordpress", grace: int = 600,
                unit: str = "wordpress-cron") -> str:
        script = _CRON_PHP.replace("{grace}", str(int(grace)))
        unit = shlex.quote(unit)
        return (
            f"echo timer=$(systemctl is-active {unit}.timer); "
            "echo last=$(systemctl show -p ExecMainStartTimestamp --value "
            f"{unit}.service | {TO_UTC}); "
            f"echo result=$(systemctl show -p Result --value {unit}.service); "
            f"cd {shlex.quote(docroot)} 2>/dev/null && runuser -u {shlex.quote(user)} -- "
            f"php -d display_errors=stderr -r {shlex.quote(script)} 2>/dev/null | tail -n 1; true"
        )

    def process(self, output: list[str]) -> dict:
        found = key_values(output)
        result, overdue = found.get("result"), found.get("overdue", "")
        return {"timer": found.get("timer") == "active", "last_run": found.get("last") or None,
                "last_ok": result == "success" if result else None,
                "overdue": int(overdue) if overdue.isdigit() else None}


class ServedSites(FactBase[list]):
    """
    Returns the sites beside the first (``main``) a web host has an nginx backend vhost
    for (``/etc/nginx/sites-available/wp-<name>``, written by deploys/web.py), by name.

    .. code:: python

        ["shop", "blog"]
    """

    default = list

    def command(self) -> str:
        return "ls -1 /etc/nginx/sites-available 2>/dev/null | grep '^wp-' || true"

    def process(self, output: list[str]) -> list:
        return sorted(line.strip()[3:] for line in output
                      if line.strip().startswith("wp-") and "." not in line)

