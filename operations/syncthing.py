"""syncthing: a device's identity and its configuration, never shown and never readable
by anyone but root and the user syncthing runs as."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import HiddenValue, operation

from pyinfra_wordpress_lb.operations._content import put_content, unmasked


@operation()
def identity(home: str, key: str | HiddenValue, cert: str, user: str):
    """
    Ensure a syncthing home holds this device's TLS key (``key.pem``, mode 600) and
    certificate (``cert.pem``): the certificate's hash is the device ID its peers know.
    The key is never shown.

    + home: syncthing's home directory (``--home``)
    + key: the private key (PEM), preferably a ``HiddenValue``
    + cert: the certificate (PEM)
    + user: owner (and group) of both files

    **Example:**

    .. code:: python

        syncthing.identity(
            name="Install this host's mesh identity",
            home="/var/lib/wordpress/syncthing",
            key=HiddenValue("-----BEGIN PRIVATE KEY-----..."),
            cert="-----BEGIN CERTIFICATE-----...",
            user="wordpress",
        )
    """
    commands = list(put_content(f"{home}/key.pem", unmasked(key), user=user, group=user,
                                mode=600, secret=True))
    commands += list(put_content(f"{home}/cert.pem", cert, user=user, group=user, mode=644))
    if not commands:
        host.noop(f"{home} holds this device's identity")
    yield from commands


@operation()
def config(path: str, content: str | HiddenValue, group: str):
    """
    Ensure syncthing's managed configuration (it holds the local API key) is this, owned
    by root and readable by ``group`` only (mode 640). The content is never shown.

    + path: the managed file (the unit copies it to syncthing's home at each start)
    + content: the whole ``config.xml``, preferably a ``HiddenValue``
    + group: the group syncthing runs as

    **Example:**

    .. code:: python

        syncthing.config(
            name="Write the mesh configuration",
            path="/etc/wordpress-lb/syncthing.xml",
            content=HiddenValue("<configuration version=\\"37\\">..."),
            group="wordpress",
        )
    """
    commands = list(put_content(path, unmasked(content), user="root", group=group, mode=640,
                                secret=True))
    if not commands:
        host.noop(f"{path} is up to date")
    yield from commands
