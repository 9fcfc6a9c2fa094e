"""Ask a host each fact once, until something changes on it.

pyinfra 3.10 asks a fact again every time an operation wants it (a round trip to the
host each time, ~50-60 ms over SSH with sudo): a file written by `files.template` asks
for its parent directory, itself and its digest; every `apt.packages` lists every
installed package; every `systemd.service` asks for the state of its unit. A no-op run
of the split bed asked web1 107 facts, about half of them asked before with the same
arguments and nothing changed on the host in between.

While the run executes, the answers of the facts below are kept per host and given
again for the same fact, arguments and connection options, until a command of an
operation runs on that host (any command: it may have changed what the facts
describe), which forgets every answer of that host. A no-op run, where no command
runs, asks each such fact once per host. Facts that change by themselves (a service's
HTTP answer, the mesh's state, a backup's progress) are not in the list and are always
asked. A host's state changed by another host (the mesh writing wp-content) is seen at
the latest after that host's next command; the operations concerned write the same
content either way.
"""

from __future__ import annotations

import copy
import functools

from pyinfra.api import command as commands
from pyinfra.api import facts as pyinfra_facts
from pyinfra.api import host as pyinfra_host
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.facts import deb, files, server, systemd

from pyinfra_wordpress_lb.deploys._run import run
from pyinfra_wordpress_lb.facts import files as own_files, wordpress

# What only a command run on the host changes (or, for systemd, its units' own life).
KEPT = frozenset({
    files.File, files.Directory, files.Link, files.Sha1File, files.Sha256File,
    files.FindInFile, server.Os, server.Users, server.Groups, server.Which,
    server.LinuxDistribution, deb.DebPackages, systemd.SystemdStatus, systemd.SystemdEnabled,
    own_files.Content, wordpress.Releases,
})


def install() -> None:
    """Keep fact answers for this process's runs (idempotent)."""
    if getattr(pyinfra_facts.get_fact, "pwlb_kept", False):
        return
    ask = pyinfra_facts.get_fact

    @functools.wraps(ask)
    def get_fact(state, host, cls, args=None, kwargs=None, ensure_hosts=None,
                 apply_failed_hosts=True):
        if cls not in KEPT or not state.is_executing:
            return ask(state, host, cls, args, kwargs, ensure_hosts, apply_failed_hosts)
        fact_kwargs, global_kwargs = pyinfra_facts._handle_fact_kwargs(
            state, host, cls, args, kwargs)
        key = (cls, repr(sorted((k, v) for k, v in fact_kwargs.items() if k != "self")),
               repr(sorted((k, v) for k, v in global_kwargs.items()
                           if k in CONNECTOR_ARGUMENT_KEYS)))
        answers = run(state).answers.setdefault(host.name, {})
        if key not in answers:
            answers[key] = ask(state, host, cls, args, kwargs, ensure_hosts,
                               apply_failed_hosts)
        return copy.deepcopy(answers[key])  # an operation may change what it was given

    get_fact.pwlb_kept = True
    pyinfra_facts.get_fact = pyinfra_host.get_fact = get_fact

    for kind in (commands.StringCommand, commands.FileUploadCommand,
                 commands.FileDownloadCommand, commands.FunctionCommand,
                 commands.RsyncCommand):
        kind.execute = _forgetting(kind.execute)


def _forgetting(execute):
    @functools.wraps(execute)
    def wrapper(self, state, host, *args, **kwargs):
        answers = run(state).answers
        answers.pop(host.name, None)
        try:
            return execute(self, state, host, *args, **kwargs)
        finally:
            answers.pop(host.name, None)
    return wrapper
