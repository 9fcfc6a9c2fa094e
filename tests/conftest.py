"""pyinfra's CLI patches the standard library for gevent when it is first imported (the
@fake harness imports it). Patched after `ssl` was imported (by requests, in the
integration tests), TLS clients recurse forever (gevent issue 1016): a test run of
tests/integration alone failed every HTTPS request made after test_examples was
collected. Patch first, as pyinfra's CLI itself does."""

from gevent import monkey

monkey.patch_all()
