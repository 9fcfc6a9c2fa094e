"""When a host fails during a run: say so at once, and once more after the results.

pyinfra leaves a host whose operation failed out of the rest of the run and exits
non-zero at the end; its results table counts errors but names neither the host nor
the step. This report does, and says what the cluster does about it (see README,
"When a host fails during a deploy").
"""

from __future__ import annotations

import atexit
import functools
import sys

import pyinfra
from pyinfra import logger
from pyinfra.api.state import BaseStateCallback

WHAT_FOLLOWS = ("it takes no further part in this run; no web host switches to a new "
                "release while another has failed, and the balancers keep a failed web "
                "host out of their pool until a deploy succeeds on it. Run the deploy "
                "again once the host is back.")


class FailureReport(BaseStateCallback):
    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []

    def operation_host_error(self, state, host, op_hash, retry_attempt=0, max_retries=0):
        self._failed(state, host, op_hash)

    def operation_end(self, state, op_hash):
        # A host can also fail without an operation error: a fact it could not load
        # while the step ran (its connection lost) fails it directly.
        for host in sorted(state.failed_hosts, key=lambda h: h.name):
            self._failed(state, host, op_hash)

    def _failed(self, state, host, op_hash) -> None:
        if any(name == host.name for name, _ in self.failures):
            return
        step = ", ".join(sorted(state.get_op_meta(op_hash).names)) or "an operation"
        self.failures.append((host.name, step))
        logger.error(f"--> {host.name} failed at {step!r}: {WHAT_FOLLOWS}")

    def summary(self) -> str:
        return "\n".join(f"--> {name} failed at {step!r}" for name, step in self.failures)

    def print_summary(self) -> None:
        if self.failures:
            print(f"{self.summary()}\n--> {WHAT_FOLLOWS[0].upper()}{WHAT_FOLLOWS[1:]}",
                  file=sys.stderr)


def _connection_lost_is_an_os_error(method):
    """paramiko raises EOFError when a host's SSH connection dies under it (a host
    killed mid-run); pyinfra handles OSError there (the host fails, the run goes on) but
    not EOFError (an internal error that stops every host). Same failure, handled."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except EOFError as exc:
            raise ConnectionResetError(f"the SSH connection to {self.host.name} was lost") \
                from exc
    wrapper.pwlb_wrapped = True
    return wrapper


def _handle_lost_connections() -> None:
    from pyinfra.connectors.ssh import SSHConnector

    for name in ("run_shell_command", "put_file", "get_file"):
        method = getattr(SSHConnector, name)
        if not getattr(method, "pwlb_wrapped", False):
            setattr(SSHConnector, name, _connection_lost_is_an_os_error(method))


def report_failures(state) -> None:
    """Register the report on this run's state (once), and make a lost SSH connection
    fail its host like any other failure."""
    _handle_lost_connections()
    if any(isinstance(h, FailureReport) for h in state.callback_handlers):
        return
    report = FailureReport()
    state.add_callback_handler(report)
    if pyinfra.is_cli:
        atexit.register(report.print_summary)
