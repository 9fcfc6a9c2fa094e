"""MariaDB accounts: what pyinfra's `mysql` operations don't do.

pyinfra's `mysql.user` puts the password on the `mysql` command line, reads the password
hashes back (`MysqlUsers`, printed at `-vvv`) and never changes an existing password;
nothing removes accounts that the inventory no longer has. These operations do both,
with no secret on a command line. They run the `mariadb` client as root over the unix
socket (with `_sudo` when not root).
"""

from __future__ import annotations

import hashlib

from pyinfra import host
from pyinfra.api import HiddenValue, QuoteString, StringCommand, operation

from pyinfra_wordpress_lb.facts.mariadb import (
    Accounts, Databases, SchemaPrivileges, password_digest,
)
from pyinfra_wordpress_lb.operations._content import (
    MAKE_PRIVATE_DIR, PRIVATE_DIR, unmasked, upload_secret,
)


def native_password_hash(password: str) -> str:
    """What `PASSWORD()` stores for mysql_native_password: '*' + SHA1(SHA1(pw)) in hex."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _account(user: str, hostname: str) -> str:
    return f"{_sql_string(user)}@{_sql_string(hostname)}"


def _execute(sql: str | StringCommand) -> StringCommand:
    return StringCommand("mariadb", "--batch", "-e", QuoteString(sql))


@operation()
def account(user: str, hostname: str, password: str | HiddenValue):
    """
    Ensure an account exists with this password (mysql_native_password): created when
    missing, its password changed when it differs. Whether it differs is told by a
    salted digest of the stored hash (the ``Accounts`` fact): neither the password nor
    its hash is read back. The statement carrying the password never appears on a
    command line (``ps``, sudo's log) nor in pyinfra's output: it reaches the host in
    a file only root can read, which the ``mariadb`` client reads and which is removed
    at once.

    + user, hostname: the account (``'user'@'hostname'``)
    + password: the password, preferably a ``HiddenValue``

    **Example:**

    .. code:: python

        mariadb.account(
            name="Add web1's database account",
            user="wordpress",
            hostname="10.0.0.6",
            password=HiddenValue("..."),
        )
    """
    raw = unmasked(password)
    account = host.get_fact(Accounts).get(f"{user}@{hostname}")
    if account is not None and account["plugin"] == "mysql_native_password" and account[
            "digest"] == password_digest(user, hostname, native_password_hash(raw)):
        host.noop(f"account {user}@{hostname} exists with its password")
        return
    verb = "CREATE" if account is None else "ALTER"
    sql = (f"{verb} USER {_account(user, hostname)} IDENTIFIED VIA mysql_native_password "
           f"USING PASSWORD({_sql_string(raw)});\n")
    name = hashlib.sha1(f"{user}@{hostname}".encode()).hexdigest()[:12]
    yield from _execute_secret(sql, f"account-{name}")


def _execute_secret(sql: str, name: str):
    """Run SQL that carries a secret: from a file only root reads, removed right after."""
    path = f"{PRIVATE_DIR}/{name}.sql"
    yield MAKE_PRIVATE_DIR
    yield from upload_secret(path, sql.encode(), user="root", group="root", mode=600)
    quoted = QuoteString(path)
    yield StringCommand("mariadb", "--batch", "<", quoted, ";", "rc=$?;", "rm", "-f", quoted,
                        ";", "exit", "$rc")


# What `GRANT ALL PRIVILEGES ON db.*` gives on MariaDB 10.11 and 11.8 (the server adds a
# few more by version; these are the ones WordPress and its plugins use).
ALL_ON_A_DATABASE = (
    "ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES",
    "CREATE VIEW", "DELETE", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES",
    "REFERENCES", "SELECT", "SHOW VIEW", "TRIGGER", "UPDATE",
)


@operation()
def grant_all(user: str, hostname: str, database: str):
    """
    Ensure an account holds all privileges on one database (``GRANT ALL PRIVILEGES ON
    db.*``), read from ``information_schema`` (no password hash is read, unlike pyinfra's
    ``mysql.privileges``). Privileges on other databases are not touched.

    + user, hostname: the account (``'user'@'hostname'``)
    + database: the database

    **Example:**

    .. code:: python

        mariadb.grant_all(
            name="Let web1 use the wordpress database",
            user="wordpress",
            hostname="10.0.0.6",
            database="wordpress",
        )
    """
    held = set(host.get_fact(SchemaPrivileges, user=user, hostname=hostname).get(database, []))
    if set(ALL_ON_A_DATABASE) <= held:
        host.noop(f"{user}@{hostname} holds all privileges on {database}")
        return
    q_db = "`" + database.replace("`", "``") + "`"
    yield _execute(f"GRANT ALL PRIVILEGES ON {q_db}.* TO {_account(user, hostname)}")


@operation()
def accounts_absent(user: str, keep_hosts: list[str]):
    """
    Remove the accounts of ``user`` whose host is not in ``keep_hosts``: when a web
    host leaves the inventory, its database account goes with it.

    + user: the account name to prune
    + keep_hosts: the hosts (addresses) whose accounts stay

    **Example:**

    .. code:: python

        mariadb.accounts_absent(
            name="Drop database accounts of departed web hosts",
            user="wordpress",
            keep_hosts=["10.0.0.6", "10.0.0.7"],
        )
    """
    stale = sorted(
        key.rsplit("@", 1)[1]
        for key in host.get_fact(Accounts)
        if key.rsplit("@", 1)[0] == user and key.rsplit("@", 1)[1] not in keep_hosts
    )
    if not stale:
        host.noop(f"no stale accounts of {user}")
        return
    for hostname in stale:
        yield _execute(f"DROP USER {_account(user, hostname)}")


@operation()
def secure_installation():
    """
    What ``mariadb-secure-installation`` does, kept true on every run: no anonymous
    accounts, root only on localhost (Debian's root logs in through the unix socket),
    no ``test`` database nor grants on it.

    **Example:**

    .. code:: python

        mariadb.secure_installation(name="Keep MariaDB's default accounts locked down")
    """
    accounts = host.get_fact(Accounts)
    statements = []
    for key in sorted(accounts):
        user, hostname = key.rsplit("@", 1)
        if user == "" or (user == "root" and hostname != "localhost"):
            statements.append(f"DROP USER {_account(user, hostname)}")
    if "test" in host.get_fact(Databases):
        statements.append("DROP DATABASE test")
        statements.append("DELETE FROM mysql.db WHERE Db='test' OR Db='test\\_%'")
    if not statements:
        host.noop("no anonymous accounts, no remote root, no test database")
        return
    for statement in statements:
        yield _execute(statement)
    yield _execute("FLUSH PRIVILEGES")


GRASTATE = "/var/lib/mysql/grastate.dat"
# Wait until this node is synced with the cluster (4), at most `timeout` seconds: a
# restart one node at a time must not take the next one down before this one is back.
_WAIT_SYNCED = (
    "i=0; while [ $i -lt {timeout} ]; do "
    "s=$(mariadb --batch --skip-column-names -e \"SELECT VARIABLE_VALUE FROM "
    "information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'\" "
    "2>/dev/null); [ \"$s\" = 4 ] && exit 0; i=$((i+1)); sleep 1; done; "
    "echo 'MariaDB is not synced with the Galera cluster after {timeout} s' >&2; exit 1"
)


def _wait_synced(timeout: int) -> StringCommand:
    return StringCommand("sh", "-c", QuoteString(_WAIT_SYNCED.format(timeout=int(timeout))))


@operation(is_idempotent=False)
def galera_new_cluster(timeout: int = 600):
    """
    Start a new Galera cluster from this node, with the data it holds: MariaDB stopped
    (a fresh install runs it standalone), this node marked safe to start from (the
    plan chose it: the most advanced, or the only one with data), then
    ``galera_new_cluster``. Only for a node the plan chose (``plan.galera_plan``):
    started from a stale node, a cluster loses what the others committed after it.

    **Example:**

    .. code:: python

        mariadb.galera_new_cluster(name="Start the Galera cluster on this node")
    """
    yield "systemctl stop mariadb.service"
    yield (f"if [ -f {GRASTATE} ]; then sed -i "
           f"'s/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' {GRASTATE}; fi")
    yield "galera_new_cluster"
    yield _wait_synced(timeout)


@operation(is_idempotent=False)
def galera_join(timeout: int = 1800):
    """
    (Re)start MariaDB so that it joins the running Galera cluster: it catches up from
    a member's write-set cache (IST) or, new or away too long, receives a full copy
    (SST, mariadb-backup: the donor keeps serving). Waits until it is synced.

    **Example:**

    .. code:: python

        mariadb.galera_join(name="Join the Galera cluster")
    """
    yield "systemctl restart mariadb.service"
    yield _wait_synced(timeout)


@operation(is_idempotent=False)
def galera_restart(timeout: int = 1800):
    """
    Restart a member of the Galera cluster and wait until it is synced again; run it
    with ``_serial=True`` so that nodes restart one at a time and the cluster keeps a
    majority.

    **Example:**

    .. code:: python

        mariadb.galera_restart(name="Restart MariaDB, one node at a time", _serial=True)
    """
    yield "systemctl restart mariadb.service"
    yield _wait_synced(timeout)
