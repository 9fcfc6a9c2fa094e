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
