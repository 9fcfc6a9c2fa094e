"""pyinfra's CLI patches the standard library for gevent when it is first imported (the
@fake harness imports it). Patched after `ssl` was imported (by requests, in the
integration tests), TLS clients recurse forever (gevent issue 1016): a test run of
tests/integration alone failed every HTTPS request made after test_examples was
collected. Patch first, as pyinfra's CLI itself does."""

from gevent import monkey

monkey.patch_all()


def _connectors_listed_once() -> None:
    """pyinfra lists its connectors from the installed packages' entry points each time
    an Inventory is made (a scan of every package's metadata, ~5 ms); the unit tests
    make a few hundred inventories from the same installed packages."""
    from functools import cache

    import pyinfra.api.connectors as connectors
    import pyinfra.api.inventory as inventory

    listed = cache(connectors.get_all_connectors)

    def get_all_connectors():
        return dict(listed())

    connectors.get_all_connectors = inventory.get_all_connectors = get_all_connectors


_connectors_listed_once()
