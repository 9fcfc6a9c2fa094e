"""Restoring the site from a backup: the database, and the shared wp-content."""

from __future__ import annotations

import shlex

from pyinfra.api import operation

from pyinfra_wordpress_lb.facts.mariadb import sql_literal


@operation(is_idempotent=False)
def restore_database(dump: str, database: str):
    """
    Replace a database with the one in a ``mariadb-dump`` file (gzip): the database is
    dropped, created again (utf8mb4) and loaded. Accounts and their grants on it stay.
    Check the dump first (``backup.Verified``): nothing here can undo it.

    + dump: the ``.sql.gz`` file on the database host
    + database: the database to replace

    **Example:**

    .. code:: python

        backup.restore_database(
            name="Restore the database",
            dump="/var/backups/wordpress/20261130T040000Z/database.sql.gz",
            database="wordpress",
        )
    """
    q_db = "`" + database.replace("`", "``") + "`"
    sql = (f"DROP DATABASE IF EXISTS {q_db}; "
           f"CREATE DATABASE {q_db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    # pipefail: a dump that breaks off mid-way fails the load (and this host's run).
    load = (f"mariadb -e {shlex.quote(sql)} && "
            f"zcat {shlex.quote(dump)} | mariadb {shlex.quote(database)}")
    yield f"bash -o pipefail -c {shlex.quote(load)}"


@operation(is_idempotent=False)
def caught_up(database: str):
    """
    Wait until this Galera node has applied every write the cluster had committed when
    it asks (``wsrep_sync_wait``: a restore loaded on another node), then check that
    the database holds tables; fails if it does not.

    + database: the database the load replaced

    **Example:**

    .. code:: python

        backup.caught_up(name="Wait for the restore", database="wordpress")
    """
    sql = ("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM information_schema.tables "
           f"WHERE table_schema = {sql_literal(database)}")
    yield f"mariadb -N -B -e {shlex.quote(sql)} | grep -qvx 0"


@operation(is_idempotent=False)
def restore_content(archive: str, root: str, user: str = "wordpress"):
    """
    Make a shared ``wp-content`` tree hold exactly what an archive holds (files added
    since are removed), owned by the pool user; the mesh's own temp dir is kept. The
    archive is unpacked beside the tree first, so a broken archive changes nothing.

    + archive: the ``wp-content.tar.gz`` on the host
    + root: the shared ``wp-content`` directory
    + user: its owner

    **Example:**

    .. code:: python

        backup.restore_content(
            name="Restore wp-content",
            archive="/var/lib/wordpress-lb/restore/wp-content.tar.gz",
            root="/var/www/wordpress/shared/wp-content",
        )
    """
    staging = shlex.quote(root.rstrip("/") + ".restore")
    q_root = shlex.quote(root.rstrip("/"))
    yield (f"rm -rf {staging} && mkdir -p {staging} && "
           f"tar -xzf {shlex.quote(archive)} -C {staging} --no-same-owner")
    yield (f"rsync -a --delete --exclude=/.mesh-tmp/ --chown={shlex.quote(f'{user}:{user}')} "
           f"{staging}/ {q_root}/ "
           f"&& rm -rf {staging}")
