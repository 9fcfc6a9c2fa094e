"""Facts about MariaDB accounts, read as root over the unix socket."""

from __future__ import annotations

import hashlib
import shlex

from pyinfra.api import FactBase


def password_digest(user: str, hostname: str, stored: str) -> str:
    """What the `Accounts` fact gives for an account whose stored password hash is
    `stored`: a digest salted with the account's name ("" for no password). It shows
    whether a password is the expected one, and is worth nothing to log in with."""
    if not stored:
        return ""
    return hashlib.sha256(f"pwlb:{user}@{hostname}:{stored}".encode()).hexdigest()


class Accounts(FactBase[dict]):
    """
    Returns every account as ``{"user@host": {"plugin": ..., "digest": ...}}``. The
    password hash never leaves the server (a mysql_native_password hash is as good as
    the password to its protocol, and pyinfra prints fact output at ``-vvv``): ``digest``
    is SHA-256 of ``pwlb:user@host:`` and the stored hash (``password_digest``), ``""``
    without a password. No server gives ``{}``.

    .. code:: python

        {"wordpress@10.0.0.6": {"plugin": "mysql_native_password", "digest": "5f0c..."}}
    """

    default = dict
    requires_command = "mariadb"

    def command(self) -> str:
        return (
            "mariadb --batch --skip-column-names -e "
            "'SELECT user, host, plugin, IF(authentication_string = \"\", \"\", "
            "SHA2(CONCAT(\"pwlb:\", user, \"@\", host, \":\", authentication_string), 256)) "
            "FROM mysql.user'"
        )

    def process(self, output: list[str]) -> dict[str, dict[str, str]]:
        accounts = {}
        for line in output:
            fields = line.split("\t")
            if len(fields) != 4:
                continue
            user, hostname, plugin, digest = fields
            accounts[f"{user}@{hostname}"] = {"plugin": plugin, "digest": digest}
        return accounts


class Databases(FactBase[list]):
    """
    Returns the names of the databases, sorted.

    .. code:: python

        ["information_schema", "mysql", "performance_schema", "sys", "wordpress"]
    """

    default = list
    requires_command = "mariadb"

    def command(self) -> str:
        return "mariadb --batch --skip-column-names -e 'SHOW DATABASES'"

    def process(self, output: list[str]) -> list[str]:
        return sorted(line.strip() for line in output if line.strip())


class Connections(FactBase[dict]):
    """
    Returns the connections MariaDB holds now and the most it allows; ``{}`` without a
    server that answers.

    .. code:: python

        {"connected": 12, "max": 151}
    """

    default = dict
    requires_command = "mariadb"

    def command(self) -> str:
        return ("mariadb --batch --skip-column-names -e "
                "\"SHOW GLOBAL STATUS LIKE 'Threads_connected'; "
                "SHOW GLOBAL VARIABLES LIKE 'max_connections'\" 2>/dev/null || true")

    def process(self, output: list[str]) -> dict:
        found: dict = {}
        for line in output:
            key, _, number = line.strip().partition("\t")
            if number.isdigit():
                if key.lower() == "threads_connected":
                    found["connected"] = int(number)
                elif key.lower() == "max_connections":
                    found["max"] = int(number)
        return found


class SchemaPrivileges(FactBase[dict]):
    """
    Returns the privileges an account holds on each database (``GRANT ... ON db.*``), as
    ``{database: [privilege, ...]}`` sorted, from ``information_schema``: unlike
    ``SHOW GRANTS`` (pyinfra's ``MysqlUserGrants``), no password hash is read. An account
    that does not exist gives ``{}``.

    .. code:: python

        {"wordpress": ["ALTER", "CREATE", "DELETE", "DROP", "INDEX", "INSERT", "SELECT"]}
    """

    default = dict
    requires_command = "mariadb"

    def command(self, user: str, hostname: str) -> str:
        grantee = grantee_of(user, hostname)
        sql = ("SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
               f"WHERE GRANTEE = {sql_literal(grantee)}")
        return f"mariadb --batch --skip-column-names -e {shlex.quote(sql)}"

    def process(self, output: list[str]) -> dict[str, list[str]]:
        found: dict[str, set[str]] = {}
        for line in output:
            fields = line.split("\t")
            if len(fields) == 2:
                found.setdefault(fields[0], set()).add(fields[1])
        return {schema: sorted(privileges) for schema, privileges in found.items()}


def grantee_of(user: str, hostname: str) -> str:
    """An account as information_schema's GRANTEE column writes it: 'user'@'host'."""
    return "'" + user.replace("'", "''") + "'@'" + hostname.replace("'", "''") + "'"


def sql_literal(value: str) -> str:
    """A string as a MariaDB string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


GALERA_STATUS = ("wsrep_cluster_status", "wsrep_local_state", "wsrep_ready",
                 "wsrep_cluster_size", "wsrep_cluster_state_uuid", "wsrep_last_committed")
NO_HISTORY = "00000000-0000-0000-0000-000000000000"


class GaleraNode(FactBase[dict]):
    """
    Returns what a database host knows of its Galera membership, without changing
    anything: whether MariaDB runs (``active``), its ``wsrep_*`` status when it does
    (lower-case names, e.g. ``wsrep_cluster_status``: ``Primary`` in a cluster that
    takes writes, ``Disconnected`` without Galera), the saved state in ``grastate.dat``
    (``uuid``, ``seqno``, ``safe_to_bootstrap``), whether the datadir holds ``database``
    (``has_database``) and whether ``config`` (our Galera configuration) exists. When
    MariaDB is stopped after a crash (``seqno`` -1), the position it reached is
    recovered from its InnoDB log (``galera_recovery``, a read-only start of the server
    in recovery mode): ``recovered``. A host without MariaDB gives ``{"active": False}``.

    .. code:: python

        {"active": True, "wsrep_cluster_status": "Primary", "wsrep_local_state": "4",
         "uuid": "8d3f...", "seqno": -1, "safe_to_bootstrap": 0, "has_database": True,
         "config": True}
    """

    default = dict

    def command(self, database: str, config: str) -> str:
        datadir = "/var/lib/mysql"
        names = ", ".join(f"'{n}'" for n in GALERA_STATUS)
        sql = ("SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM "
               f"information_schema.GLOBAL_STATUS WHERE LOWER(VARIABLE_NAME) IN ({names})")
        return "; ".join([
            "state=$(systemctl is-active mariadb.service 2>/dev/null)",
            'echo "active=$state"',
            f"test -r {datadir}/grastate.dat && sed -n -e 's/^uuid:[[:space:]]*/uuid=/p' "
            "-e 's/^seqno:[[:space:]]*/seqno=/p' "
            f"-e 's/^safe_to_bootstrap:[[:space:]]*/safe_to_bootstrap=/p' {datadir}/grastate.dat",
            f"test -d {shlex.quote(datadir + '/' + database)} && echo has_database=1",
            f"test -f {shlex.quote(config)} && echo config=1",
            'if [ "$state" = active ]; then mariadb --batch --skip-column-names -e '
            f"{shlex.quote(sql)} 2>/dev/null | tr '\\t' '='; "
            f"elif [ \"$state\" != activating ] && test -f {shlex.quote(config)} && "
            f"grep -q '^seqno:[[:space:]]*-1' {datadir}/grastate.dat 2>/dev/null && "
            "command -v galera_recovery >/dev/null; then galera_recovery 2>/dev/null "
            "| sed -n 's/.*--wsrep_start_position=[^:]*:\\(-\\{0,1\\}[0-9]*\\).*/recovered=\\1/p'; "
            "fi",
            "true",
        ])

    def process(self, output: list[str]) -> dict:
        found: dict = {}
        for line in output:
            key, sep, value = line.strip().partition("=")
            if not sep:
                continue
            if key == "active":
                found["active"] = value == "active"
                found["activating"] = value == "activating"
            elif key in ("seqno", "safe_to_bootstrap", "recovered"):
                try:
                    found[key] = int(value)
                except ValueError:
                    pass
            elif key in ("has_database", "config"):
                found[key] = True
            else:
                found[key] = value
        return found


class RiskyTables(FactBase[dict]):
    """
    Returns the tables of a database that Galera replicates badly (plugins create
    them): ``not_innodb`` (MyISAM, Aria, ...: not replicated) and ``no_primary_key``
    (deletes on them are not replicated safely), each a sorted list; ``{}`` when there
    are none or no server answers.

    .. code:: python

        {"not_innodb": ["wp_old_stats"], "no_primary_key": ["wp_plugin_log"]}
    """

    default = dict
    requires_command = "mariadb"

    def command(self, database: str) -> str:
        schema = sql_literal(database)
        sql = (f"SELECT 'not_innodb', TABLE_NAME FROM information_schema.TABLES "
               f"WHERE TABLE_SCHEMA = {schema} AND TABLE_TYPE = 'BASE TABLE' "
               "AND ENGINE <> 'InnoDB' UNION ALL "
               "SELECT 'no_primary_key', t.TABLE_NAME FROM information_schema.TABLES t "
               "LEFT JOIN information_schema.TABLE_CONSTRAINTS c ON c.TABLE_SCHEMA = "
               "t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = "
               f"'PRIMARY KEY' WHERE t.TABLE_SCHEMA = {schema} AND t.TABLE_TYPE = "
               "'BASE TABLE' AND c.CONSTRAINT_NAME IS NULL")
        return (f"mariadb --batch --skip-column-names -e {shlex.quote(sql)} 2>/dev/null "
                "|| true")

    def process(self, output: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for line in output:
            kind, sep, table = line.strip().partition("\t")
            if sep and kind in ("not_innodb", "no_primary_key"):
                found.setdefault(kind, []).append(table)
        return {kind: sorted(tables) for kind, tables in found.items()}
