"""deploys/_facts.py: while a run executes, a host is asked a fact once until a command
runs on it (then every answer of that host is asked again)."""

from __future__ import annotations

from pyinfra.api import Config, Inventory, State, StringCommand
from pyinfra.api.connect import connect_all
from pyinfra.context import ctx_host, ctx_state
from pyinfra.facts.files import File
from pyinfra.facts.server import Command

from pyinfra_wordpress_lb.deploys import _facts

STAT = ("user=root group=root mode=-rw-r--r-- atime=1700000000 mtime=1700000000 "
        "ctime=1700000000 size=1234 '/etc/passwd'")


def _fake_host():
    inventory = Inventory((["@fake/one", "@fake/two"],
                           {"fake_delay": 0, "fake_delay_jitter": 0,
                            "fake_responses": {"/etc/passwd": STAT}}))
    state = State(inventory, Config())
    connect_all(state)
    asked: list[tuple[str, str]] = []
    for host in inventory:
        run = host.connector.run_shell_command

        def counting(command, *args, _run=run, _host=host, **kwargs):
            asked.append((_host.name, str(command)))
            return _run(command, *args, **kwargs)

        host.connector.run_shell_command = counting
    return state, inventory, asked


def test_a_fact_is_asked_once_until_a_command_runs_on_that_host():
    _facts.install()
    state, inventory, asked = _fake_host()
    one, two = inventory.get_host("@fake/one"), inventory.get_host("@fake/two")
    with ctx_state.use(state):
        with ctx_host.use(one):
            one.get_fact(File, path="/etc/hostname")  # loading the deploy: not kept
            one.get_fact(File, path="/etc/hostname")
        assert len(asked) == 2
        state.is_executing = True
        with ctx_host.use(one):
            one.get_fact(File, path="/etc/hostname")
            one.get_fact(File, path="/etc/hostname")
            assert len(asked) == 3  # kept
            one.get_fact(File, path="/etc/other")
            assert len(asked) == 4  # other arguments: asked
            one.get_fact(Command, command="date")
            one.get_fact(Command, command="date")
            assert len(asked) == 6  # not a kept fact: always asked
        with ctx_host.use(two):
            two.get_fact(File, path="/etc/hostname")
            assert len(asked) == 7  # another host: its own answers
            StringCommand("touch", "/etc/hostname").execute(state, two, {})
            assert len(asked) == 8
        with ctx_host.use(one):
            one.get_fact(File, path="/etc/hostname")
            assert len(asked) == 8  # a command on another host forgets nothing here
        with ctx_host.use(two):
            two.get_fact(File, path="/etc/hostname")
            assert len(asked) == 9  # a command on this host: asked again


def test_an_answer_cannot_be_changed_by_who_received_it():
    _facts.install()
    state, inventory, _ = _fake_host()
    one = inventory.get_host("@fake/one")
    state.is_executing = True
    with ctx_state.use(state), ctx_host.use(one):
        first = one.get_fact(File, path="/etc/passwd")
        assert first["size"] == 1234
        first["size"] = 0
        assert one.get_fact(File, path="/etc/passwd")["size"] == 1234
