"""Stopping one host's run with a message, the way a failed command does.

An ``OperationError`` raised while a deploy *runs* escapes pyinfra's per-host handling:
the whole run stops for every host, gevent prints a traceback, and hosts that were
half-way through a change stay there. A failed command only fails its own host, which
pyinfra then leaves out of the rest of the run (and names in its results). ``fail``
turns a check that fails into such a failed command; before the run (a dry run, the
planning pass) it raises, as nothing has changed yet.
"""

from __future__ import annotations

from pyinfra import logger
from pyinfra.api import FunctionCommand, OperationError
from pyinfra.context import state


def _report(state, host, message: str) -> bool:  # noqa: ARG001 - pyinfra's signature
    host.log_styled(message, fg="red", log_func=logger.error)
    return False


def fail(message: str):
    """Yield from an operation to fail this host with ``message`` (then ``return``)."""
    if not state.is_executing:
        raise OperationError(message)
    yield FunctionCommand(_report, (message,), {})
