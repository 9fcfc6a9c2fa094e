"""deploys/_speed.py: pyinfra's call-site helpers, cheap, with the same answers."""

from __future__ import annotations

import inspect
import sys


def test_where_an_operation_is_called_from_reads_the_same():
    import pyinfra.api.util as util

    from pyinfra_wordpress_lb.deploys import _speed

    _speed.install()
    frame = sys._getframe()
    fast, slow = util.getframeinfo(frame), inspect.getframeinfo(frame)
    assert (fast.filename, fast.lineno, fast.function) == (
        slow.filename, slow.lineno, slow.function)
    frames = util.stack()
    assert [f[0] for f in frames[:5]] == [f.frame for f in inspect.stack()[:5]]
    _speed.install()  # twice: the same
    assert util.pwlb_fast


def test_host_data_merged_once_reads_as_pyinfras_layers():
    """Override data (`--data`), the host's, its groups', the inventory's, then the
    current deploy's defaults: the first layer that has a key answers, as pyinfra's own
    lookup; a value set during the run (`host.data.x = ...`) wins; a key no layer has
    is pyinfra's AttributeError."""
    import pytest
    from pyinfra.api import Inventory

    from pyinfra_wordpress_lb.deploys import _speed

    inventory = Inventory(
        ([("one", {"a": "host", "b": "host"}), "two"], {"a": "all", "c": "all", "d": "all"}),
        web=(["one"], {"a": "group", "b": "group", "c": "group"}),
        override_data={"o": "override", "c": "override"},
    )
    def read():
        return {h.name: {k: getattr(h.data, k, None) for k in "abcdo"} for h in inventory}

    slow = read()
    _speed.fix_layers(inventory)
    fast = read()
    one, two = inventory.get_host("one"), inventory.get_host("two")
    assert slow == fast
    assert fast["one"] == {"a": "host", "b": "host", "c": "override",
                                          "d": "all", "o": "override"}
    assert fast["two"] == {"a": "all", "b": None, "c": "override", "d": "all", "o": "override"}
    one.data.a = "set"
    assert one.data.a == "set" and two.data.a == "all"
    with pytest.raises(AttributeError, match="has no data `zz`"):
        two.data.zz  # noqa: B018


def test_global_arguments_are_pyinfras():
    """The global arguments of an operation, as pyinfra's own function gives them: from
    the call, from host data (set, merged once, or absent), from the config."""
    import pyinfra.api.arguments as arguments
    from pyinfra.api import Config, Inventory, State

    from pyinfra_wordpress_lb.deploys import _speed

    _speed.install()
    slow_pop = _speed.PYINFRA_POP
    for name in ("arguments", "facts", "deploy", "operation"):  # where pyinfra calls it
        assert sys.modules[f"pyinfra.api.{name}"].pop_global_arguments \
            is _speed.pop_global_arguments
    inventory = Inventory(([("one", {"_sudo": True, "_env": {"A": "1"}}), "two"],
                           {"_serial": True}))
    state = State(inventory, Config(SUDO_USER="deploy"))
    for host in inventory:
        for kwargs in ({}, {"_sudo": False, "name": "x"}, {"_retries": 2}):
            slow = slow_pop(state, host, dict(kwargs))
            plain = _speed.pop_global_arguments(state, host, dict(kwargs))
            _speed.fix_layers(inventory)
            fixed = _speed.pop_global_arguments(state, host, dict(kwargs))
            assert slow == plain == fixed
    # Worked out once per host and config, and again after what could change them: a
    # `host.data` write, a deploy whose data names a global argument, another config.
    one = inventory.get_host("one")
    first, _ = _speed.pop_global_arguments(state, one, {})
    again, _ = _speed.pop_global_arguments(state, one, {})
    assert first == again and first["_env"] is not again["_env"]  # each call its own
    one.data._sudo = False
    assert _speed.pop_global_arguments(state, one, {})[0]["_sudo"] is False
    one.data.override_datas.clear()
    assert _speed.pop_global_arguments(state, one, {})[0]["_sudo"] is True
    one.current_deploy_data = {"_sudo_user": "other"}
    assert _speed.pop_global_arguments(state, one, {})[0]["_sudo_user"] == "other"
    assert slow_pop(state, one, {})[0]["_sudo_user"] == "other"
    one.current_deploy_data = None
    one.current_deploy_kwargs = {"_sudo": False, "_serial": True}  # a deploy's arguments
    for kwargs in ({}, {"_sudo": True, "_env": {"B": "2"}}, {"_if": [], "name": "x"}):
        assert slow_pop(state, one, dict(kwargs)) == \
            _speed.pop_global_arguments(state, one, dict(kwargs))
    one.current_deploy_kwargs = None
    import pytest
    from pyinfra.api.exceptions import ArgumentTypeError
    for pop in (slow_pop, _speed.pop_global_arguments):
        with pytest.raises(ArgumentTypeError, match="Invalid argument `_retries`"):
            pop(state, one, {"_retries": "many"})
    other = State(inventory, Config(SUDO_USER="another"))
    assert _speed.pop_global_arguments(other, one, {})[0]["_sudo_user"] == "another"
    assert _speed.pop_global_arguments(state, one, {})[0]["_sudo_user"] == "deploy"


def test_a_facts_arguments_read_as_inspect_reads_them():
    """pyinfra merges a fact's positional and keyword arguments with
    `inspect.getcallargs(cls().command, ...)`: the same answer, and the same refusal."""
    import pytest
    from pyinfra.facts import files, server

    from pyinfra_wordpress_lb.deploys import _speed
    from pyinfra_wordpress_lb.facts import http, nginx, wordpress

    calls = [
        (files.File, (), {"path": "/etc/x"}),
        (files.FindInFile, ("/etc/x",), {"pattern": "a", "extended_regex": True}),
        (server.Command, ("true",), {}),
        (nginx.Upstream, (), {"path": "/etc/x"}),
        (http.Response, (), {"url": "http://a/", "wait": 3}),
        (wordpress.Installed, ("/var/www/x",), {}),
    ]
    from pyinfra.facts import systemd

    calls += [
        (files.File, (), {"path": "/etc/x"}),  # again: its binding kept from the first
        (http.Response, (), {"url": "http://a/", "wait": 1}),
        (http.Response, (), {"url": "http://a/", "wait": True}),  # equal to 1, not the same
        (systemd.SystemdStatus, (), {"services": ["a.service"]}),  # a list: bound each time
    ]
    for cls, args, kwargs in calls * 2:
        command = cls().command
        fast, slow = _speed.getcallargs(command, *args, **kwargs), \
            inspect.getcallargs(command, *args, **kwargs)
        assert fast.keys() == slow.keys()  # (pyinfra sorts them wherever it reads them)
        assert {k: v for k, v in fast.items() if k != "self"} == \
            {k: v for k, v in slow.items() if k != "self"}
        assert {k: type(v) for k, v in fast.items()} == {k: type(v) for k, v in slow.items()}
        assert fast["self"] is command.__self__  # (the instance asked, never a kept one)
        assert type(fast["self"]) is cls
    with pytest.raises(TypeError):
        _speed.getcallargs(files.File().command)  # its path is missing
    with pytest.raises(TypeError):
        _speed.getcallargs(files.File().command, path="/x", nothing=1)


import pytest  # noqa: E402


@pytest.mark.parametrize("installed", [False, True])
def test_operations_get_pyinfras_order_and_hashes(tmp_path, monkeypatch, installed):
    """The steps of a plan with several sites (an operation called again from the same
    place once per site) in the same order, each host the same operations, as with
    pyinfra's own `solve_operation_consistency`; also `installed` from a wheel beside
    pyinfra, where pyinfra takes our package's frames for its own (CI of session 12: the
    wheel's deploy stopped on two steps given one hash)."""
    import os

    import pyinfra.api.util as util

    from tests import fakedeploy

    from pyinfra_wordpress_lb.deploys import _speed

    _speed.install()
    operation = sys.modules["pyinfra.api.operation"]
    ours = operation.solve_operation_consistency
    groups = {"lb": ["lb1", "lb2"], "web": ["web1", "web2"], "db": ["db1"]}
    sites = {"lb_vip": "10.0.0.100", "sites": [
        {"name": "main", "site_url": "https://a.example.com"},
        {"name": "shop", "site_url": "https://shop.example.com"},
        {"name": "news", "site_url": "https://news.example.com"}]}

    def plan(name):
        secrets = tmp_path / f"{name}.secrets.json"
        return fakedeploy._plan(groups, secrets, data=sites)

    if installed:  # (the tiers' frames and ours are then not counted, deploy.py's are;
        # pyinfra tests a frame's file with `startswith`, which takes a tuple too)
        monkeypatch.setattr(util, "PYINFRA_INSTALL_DIR",
                            (util.PYINFRA_INSTALL_DIR, os.path.dirname(_speed.__file__)))
    try:
        operation.solve_operation_consistency = _speed.PYINFRA_SOLVE
        theirs = plan("theirs")
    finally:
        operation.solve_operation_consistency = ours
    mine = plan("mine")
    assert mine.order == theirs.order and len(mine.order) > 200
    assert {h: [name for name, _ in ops] for h, ops in mine.items()} == \
        {h: [name for name, _ in ops] for h, ops in theirs.items()}


def test_a_facts_global_arguments_are_pyinfras():
    """A fact asked by an operation gets the operation's global arguments, as pyinfra
    works them out again; with global arguments of its own, pyinfra's own split."""
    from pyinfra.api import Config, Inventory, State
    from pyinfra.facts import files

    from pyinfra_wordpress_lb.deploys import _speed
    from pyinfra_wordpress_lb.facts import http

    _speed.install()
    inventory = Inventory(([("one", {"_sudo": True, "_env": {"A": "1"}})], {}))
    state = State(inventory, Config(SUDO_USER="deploy"))
    one = inventory.get_host("one")
    from pyinfra.api.arguments import EXECUTION_KWARG_KEYS
    cases = [({}, ()), ({"_sudo": False, "_env": {"B": "2"}}, EXECUTION_KWARG_KEYS),
             ({"_su_user": "x", "_serial": True}, EXECUTION_KWARG_KEYS), ({}, ("_sudo",))]
    for op_kwargs, taken_out in cases:  # (pyinfra takes the execution ones out of an op's)
        one.current_op_global_arguments = {
            k: v for k, v in _speed.pop_global_arguments(state, one, dict(op_kwargs))[0].items()
            if k not in taken_out}
        one.current_deploy_kwargs = {"_serial": True} if taken_out else None
        for cls, args, kwargs in ((files.File, (), {"path": "/x"}),
                                  (http.Response, ("http://a/",), {"wait": 2}),
                                  (files.File, (), {"path": "/x", "_sudo": False}),
                                  (server_facts().Os, (), {})):
            fast = _speed._handle_fact_kwargs(state, one, cls, args, dict(kwargs))
            slow = _speed.PYINFRA_FACT_KWARGS(state, one, cls, args, dict(kwargs))
            assert {k: v for k, v in fast[0].items() if k != "self"} == \
                {k: v for k, v in slow[0].items() if k != "self"}
            assert fast[1] == slow[1], (op_kwargs, kwargs)
    one.current_op_global_arguments = one.current_deploy_kwargs = None


def server_facts():
    from pyinfra.facts import server
    return server
