"""Facts about MariaDB accounts, read as root over the unix socket."""

from __future__ import annotations

from pyinfra.api import FactBase


class Accounts(FactBase[dict]):
    """
    Returns every account as ``{"user@host": {"plugin": ..., "auth": ...}}``, where
    ``auth`` is the stored password hash (``*`` + 40 hex digits for
    ``mysql_native_password``), never the password. No server gives ``{}``.

    .. code:: python

        {"wordpress@10.0.0.6": {"plugin": "mysql_native_password", "auth": "*2470C0C0..."}}
    """

    default = dict
    requires_command = "mariadb"

    def command(self) -> str:
        return (
            "mariadb --batch --skip-column-names -e "
            "'SELECT user, host, plugin, authentication_string FROM mysql.user'"
        )

    def process(self, output: list[str]) -> dict[str, dict[str, str]]:
        accounts = {}
        for line in output:
            fields = line.split("\t")
            if len(fields) != 4:
                continue
            user, hostname, plugin, auth = fields
            accounts[f"{user}@{hostname}"] = {"plugin": plugin, "auth": auth}
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
