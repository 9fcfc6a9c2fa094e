"""nftables: load a table of our own from its file (pyinfra has no nftables operations).

The file replaces the table atomically (`table …; delete table …; table … { … }` in one
`nft -f` transaction): other tables, such as a container engine's or fail2ban's, stay
as they are, and a file nft rejects changes nothing.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.context import state

from pyinfra_wordpress_lb.facts.nftables import STAMP_DIR, Table, stamp_path
from pyinfra_wordpress_lb.operations._fail import fail


@operation()
def table_loaded(family: str, table: str, path: str):
    """
    Make the kernel's nftables table ``family table`` the one the file at ``path``
    defines: loaded when the table is missing or the file changed since it was last
    loaded here (checked with ``nft -c`` first), nothing otherwise.

    + family: the table's family (``inet``, ``ip``, ...)
    + table: the table's name
    + path: the file that defines it (written before, e.g. by ``files.template``)

    **Example:**

    .. code:: python

        nftables.table_loaded(
            name="Load the firewall",
            family="inet", table="wordpress_lb", path="/etc/wordpress-lb/firewall.nft",
        )
    """
    current = host.get_fact(Table, family=family, table=table, path=path)
    if current.get("loaded") and current.get("file") and current["file"] == current.get("stamp"):
        host.noop(f"nftables table {family} {table} is the one {path} defines")
        return
    if not current.get("file") and state.is_executing:
        yield from fail(f"{path} is missing: nothing to load table {family} {table} from")
        return
    q_path = shlex.quote(path)
    yield (f"nft -c -f {q_path} && nft -f {q_path} && mkdir -p {STAMP_DIR} && "
           f"sha256sum {q_path} | cut -d' ' -f1 > {shlex.quote(stamp_path(table))}")


@operation()
def table_absent(family: str, table: str, path: str):
    """
    Remove the nftables table ``family table`` (and the record of its last load) if the
    kernel has it; other tables stay.

    + family, table: the table
    + path: the file that defined it (its record of the last load goes)

    **Example:**

    .. code:: python

        nftables.table_absent(name="Remove the firewall", family="inet",
                              table="wordpress_lb", path="/etc/wordpress-lb/firewall.nft")
    """
    if not host.get_fact(Table, family=family, table=table, path=path).get("loaded"):
        host.noop(f"no nftables table {family} {table}")
        return
    yield (f"nft delete table {shlex.quote(family)} {shlex.quote(table)} && "
           f"rm -f {shlex.quote(stamp_path(table))}")
