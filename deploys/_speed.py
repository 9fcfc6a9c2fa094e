"""pyinfra's pure helpers, made cheap (the same answers).

Each operation call asks where it was called from: pyinfra walks the stack with
`inspect.stack()` and `inspect.getframeinfo()`, which read each frame's source lines
(`findsource`, `getmodule`) only to be given the file name and the line number; and it
computes the global arguments' type hints, the same for every operation, each time. A
no-op with 20 sites spent ~8 s of its 22 s there. Installed once per process, by
`validate()` (and by the tests' fake runs).

Each lookup of a host's data (pyinfra asks ~30 global arguments no host sets for every
operation and fact: ~200,000 lookups in a 20-site no-op) called a function per layer,
merged the host's groups' data again and caught a KeyError per layer. `fix_layers`
merges the inventory's layers once per run (they do not change once the inventory is
loaded; only `host.data` writes and the current deploy's defaults do, both still read
at each lookup).
"""

from __future__ import annotations

import inspect
import shlex
import sys
from copy import copy
from functools import cache
from types import SimpleNamespace

import pyinfra.api.arguments as _arguments
from pyinfra.api.arguments import EXECUTION_KWARG_KEYS, all_argument_meta, default_sentinel
from pyinfra.api.exceptions import ArgumentTypeError
from pyinfra.api.util import raise_if_bad_type
from pyinfra.context import ctx_config


def install() -> None:
    import pyinfra.api.arguments as arguments
    import pyinfra.api.command as command
    import pyinfra.api.facts as facts
    import pyinfra.api.util as util

    if getattr(util, "pwlb_fast", False):
        return

    def stack():  # inspect.stack() without its source lookups: only the frames
        frames, frame = [], sys._getframe(1)
        while frame is not None:
            frames.append((frame,))
            frame = frame.f_back
        return frames

    def getframeinfo(frame):  # what pyinfra reads: the file name and the line number
        code = frame.f_code
        return inspect.Traceback(code.co_filename, frame.f_lineno, code.co_name, None, None)

    util.stack = stack
    util.getframeinfo = getframeinfo
    global PYINFRA_POP
    PYINFRA_POP = arguments.pop_global_arguments  # (the tests compare with it)
    # (`pyinfra.api.operation` and `.deploy` are also functions of `pyinfra.api`, which
    # `import ... as` would give: the modules are taken from sys.modules.)
    for name in ("arguments", "facts", "deploy", "operation"):
        sys.modules[f"pyinfra.api.{name}"].pop_global_arguments = pop_global_arguments
    # An operation's and a fact's parameters, read from its signature at every call
    # (~80 us each): each function's signature once.
    sys.modules["pyinfra.api.operation"].signature = _signature
    facts.getcallargs = getcallargs
    global PYINFRA_FACT_KWARGS
    PYINFRA_FACT_KWARGS = facts._handle_fact_kwargs  # (the tests compare with it)
    facts._handle_fact_kwargs = _handle_fact_kwargs
    operation = sys.modules["pyinfra.api.operation"]
    global PYINFRA_SOLVE
    PYINFRA_SOLVE = operation.solve_operation_consistency  # (the tests compare with it)
    operation.solve_operation_consistency = _hashes_counted(operation.make_hash)
    operations = sys.modules["pyinfra.api.operations"]
    operations._run_single_op = _only_its_hosts(operations._run_single_op)
    arguments.all_global_arguments = facts.all_global_arguments = cache(
        arguments.all_global_arguments)
    # pyinfra's file facts build their command from one long template, split with shlex
    # (~0.2 ms) at every ask: the same few templates, split once.
    split = cache(lambda string: tuple(shlex.split(string)))
    command.shlex = SimpleNamespace(split=split, quote=shlex.quote)
    util.pwlb_fast = True


def _only_its_hosts(run_single_op):
    """pyinfra runs each step on every host: a greenlet, callbacks and a "Skipped" line
    for each host the step is not for (4,100 of the 6,600 host-steps of a 20-site no-op,
    ~0.1 ms each). The step runs as pyinfra runs it, on the hosts it is for only; a host
    it is not for is passed by without a word. A step for every host is pyinfra's own."""
    def run(state, op_hash):
        inventory = state.inventory
        active = list(inventory.get_active_hosts())
        mine = [host for host in active if op_hash in state.ops[host]]
        if len(mine) == len(active):
            return run_single_op(state, op_hash)
        # (Only the step's own greenlets run meanwhile: the hosts it is for are the
        # active ones it sees. A host failing still goes through `state.fail_hosts`.)
        inventory.get_active_hosts = lambda: list(mine)
        try:
            return run_single_op(state, op_hash)
        finally:
            del inventory.get_active_hosts
    return run


def _hashes_counted(make_hash):
    """pyinfra's `solve_operation_consistency` (the same hash and order for each
    operation) without its search for a free hash: an operation called again from the
    same place (once per site) is given the hash, then `hash-0`, `hash-0-1`, ...,
    each tried against the host's list of hashes so far, so the k-th site's steps cost k
    scans of a list of ~900 (quadratic in sites: ~0.1 s a web host at 20 sites). The
    same names from a count per hash (a hash is 40 hex digits: no `-` ever makes one
    name another's), counted again from the host's list whenever it changed otherwise."""
    import pyinfra

    order_from_stack = sys.modules["pyinfra.api.operation"].get_operation_order_from_stack

    def solve_consistency(names, state, host):
        hashes = host.op_hash_order
        mine = getattr(host, "pwlb_hashes", None)  # (`host` may be pyinfra's context proxy)
        if mine is None or mine[0] != len(hashes):
            counts: dict[str, int] = {}
            for each in hashes:
                first = each.split("-", 1)[0]
                counts[first] = counts.get(first, 0) + 1
            mine = [len(hashes), counts]
            host.pwlb_hashes = mine
        if pyinfra.is_cli:
            op_order = order_from_stack(state)
            # pyinfra counts the line of every frame outside its own directory: this
            # function's too, unless this package sits where pyinfra takes it for its own
            # (installed beside it: `site-packages/pyinfra_wordpress_lb` starts with
            # `site-packages/pyinfra`).
            if not OWN_FILE.startswith(sys.modules["pyinfra.api.util"].PYINFRA_INSTALL_DIR):
                op_order.pop()
        else:
            op_order = [len(hashes)]
        if host.loop_position:
            op_order.extend(host.loop_position)
        first = make_hash(op_order)
        count = mine[1].get(first, 0)
        op_hash = first + "".join(f"-{i}" for i in range(count))
        mine[1][first] = count + 1
        hashes.append(op_hash)
        mine[0] += 1
        if count:
            op_order.append(count)
        return tuple(op_order), op_hash
    OWN_FILE = solve_consistency.__code__.co_filename
    return solve_consistency


_signature = cache(inspect.signature)


def getcallargs(func, *args, **kwargs) -> dict:
    """`inspect.getcallargs` (what pyinfra reads a fact's arguments with: a new instance's
    bound `command` each time), the function's signature worked out once, and the
    arguments of a call made before with the same values (hashable, of the same types)
    bound once."""
    function = getattr(func, "__func__", None)
    if function is None:
        return inspect.getcallargs(func, *args, **kwargs)
    signature = _signature(function)
    first = next(iter(signature.parameters))  # (the instance's: each call its own)
    try:
        key = (function, args, tuple(kwargs.items()), tuple(map(type, args)),
               tuple(map(type, kwargs.values())))
        bound = _BOUND.get(key)
    except TypeError:  # a list or dict among them: bound each time
        key = bound = None
    if bound is None:
        arguments = signature.bind(func.__self__, *args, **kwargs)
        arguments.apply_defaults()
        bound = {k: v for k, v in arguments.arguments.items() if k != first}
        if key is not None and len(_BOUND) < 100_000:
            _BOUND[key] = bound
    return {first: func.__self__, **bound}


_BOUND: dict = {}


def _handle_fact_kwargs(state, host, cls, args, kwargs):
    """pyinfra's split of a fact's arguments into its own and the global ones (its
    connection: sudo, environment...). Asked by an operation, with no global argument
    of its own, a fact's global arguments are the operation's (pyinfra works them all
    out again, ~30, from a copy of the operation's: the same values); else pyinfra's."""
    current = host.current_op_global_arguments
    kwargs = kwargs or {}
    if not current or not _order().keys().isdisjoint(kwargs):
        return PYINFRA_FACT_KWARGS(state, host, cls, args, kwargs)
    # (pyinfra takes the execution arguments out of an operation's: those are worked
    # out as for a call that does not give them.)
    missing = [key for key in _order() if key not in current]
    if any(key not in EXECUTION_KWARG_KEYS for key in missing):
        return PYINFRA_FACT_KWARGS(state, host, cls, args, kwargs)
    fact_kwargs = dict(kwargs)
    if args or fact_kwargs:
        fact_kwargs = getcallargs(cls().command, *(args or ()), **fact_kwargs)
    found = {key: copy(value) if isinstance(value, (dict, list, set)) else value
             for key, value in current.items()}
    if missing:
        if _MISSING[0] is not current or _MISSING[1] is not host:
            rest, _ = pop_global_arguments(state, host, {})  # (once per operation and host)
            _MISSING[:] = [current, host, {key: rest[key] for key in missing}]
        found.update((key, copy(value) if isinstance(value, (dict, list, set)) else value)
                     for key, value in _MISSING[2].items())
    return fact_kwargs, found


# The execution arguments worked out for the facts of the operation running on a host:
# its global arguments (the same object while it runs), the host, {key: value}.
_MISSING: list = [None, None, {}]


class NoData(AttributeError):
    """pyinfra's error for a host data key no layer has (its message written only when
    read: most lookups are of keys no host sets)."""

    def __str__(self):
        return f"Host `{self.args[0]}` has no data `{self.args[1]}`"


def _merged_value(data, key: str):
    """A key of a host's data from its layers merged once (see fix_layers), or
    `default_sentinel` when no layer has it."""
    if key in data.override_datas:  # (HostData.__setattr__ writes there)
        return copy(data.override_datas[key])
    merged = data.__dict__["merged"]
    if key in merged:
        return copy(merged[key])
    deploy_data = data.host.get_deploy_data()
    return copy(deploy_data[key]) if key in deploy_data else default_sentinel


def _lookup(self, key: str):
    if "merged" in self.__dict__:
        found = _merged_value(self, key)
        if found is default_sentinel:
            raise NoData(self.host, key)
        return found
    for data in self.datas:
        if callable(data):
            data = data()
        if key in data:
            return copy(data[key])
    raise AttributeError(f"Host `{self.host}` has no data `{key}`")


def fix_layers(inventory) -> None:
    """Each host's inventory layers (override, host, groups, global) merged once, the
    first layer winning, instead of functions fetching and merging them at every
    lookup (idempotent: a host's layers are merged once)."""
    from pyinfra.api.host import HostData

    HostData.__getattr__ = _lookup
    for host in inventory:
        data = host.data
        if "merged" in data.__dict__:
            continue
        fixed = (inventory.get_override_data(), inventory.get_host_data(host.name),
                 inventory.get_groups_data(host.groups), inventory.get_data())
        merged: dict = {}
        for layer in reversed(fixed):
            merged.update(layer)
        data.__dict__["datas"] = (data.override_datas, *fixed, host.get_deploy_data)
        data.__dict__["merged"] = merged


PYINFRA_POP = PYINFRA_SOLVE = PYINFRA_FACT_KWARGS = None


def pop_global_arguments(state, host, kwargs: dict):
    """pyinfra 3.10's `arguments.pop_global_arguments` (the same steps, the same
    answers), with each host data key looked up without an exception when no layer has
    it: pyinfra asks ~30 global arguments per operation and fact, nearly none set. Each
    argument's default for a host (its config default or the host's data) is worked out
    once per host and config while no `host.data` write and no deploy's data names a
    global argument (else at each call, as pyinfra); then only the arguments given (by
    the call or its deploy), with a handler or with a mutable default are worked on."""
    config = state.config
    if ctx_config.isset():
        config = ctx_config.get()
        assert config is not None
    meta_kwargs = host.current_deploy_kwargs or {}
    rows, base, special = _defaults(host.data, config)
    arguments = dict(base)
    found_keys = sorted((key for key in kwargs if key in rows), key=_order().__getitem__)
    for key in special.union(found_keys, _differing(meta_kwargs, base)):
        type_, handler, default = rows[key]
        if key in kwargs:
            value = kwargs.pop(key)
        else:
            value = meta_kwargs.get(key, default)
            if value is default and isinstance(value, (dict, list, set)):
                value = copy(value)  # (each call its own, as pyinfra's)
        if handler:
            value = handler(config, value)
        if value != default:
            _check_type(key, value, type_)
        arguments[key] = value
    return arguments, found_keys


_DIFFERING: list = [None, None, ()]  # the last deploy's arguments, its defaults, the keys


def _differing(meta_kwargs: dict, base: dict) -> tuple:
    """The keys a deploy's arguments (`host.current_deploy_kwargs`: every global argument,
    set by pyinfra once per deploy call, never changed after) give another value than the
    defaults: the others are the defaults already."""
    if _DIFFERING[0] is meta_kwargs and _DIFFERING[1] is base:
        return _DIFFERING[2]
    keys = tuple(k for k, v in meta_kwargs.items() if k in base and not _same(v, base[k]))
    _DIFFERING[:] = [meta_kwargs, base, keys]
    return keys


def _same(value, default) -> bool:
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # (a value that cannot be compared is worked on)
        return False


_CHECKED: set = set()  # (key, type, value) found of their type (hashable values only)


def _check_type(key: str, value, type_) -> None:
    """pyinfra's type check of an argument (typeguard: ~30 us), once per hashable value."""
    try:
        seen = (key, type_, type(value), value)
        if seen in _CHECKED:
            return
    except TypeError:  # unhashable: checked every time
        seen = None
    raise_if_bad_type(value, type_, ArgumentTypeError, f"Invalid argument `{key}`:")
    if seen is not None:
        _CHECKED.add(seen)


@cache
def _order() -> dict[str, int]:
    """Each global argument's place in pyinfra's order (of the keys found)."""
    return {key: i for i, (key, _) in enumerate(_arguments.all_global_arguments())}


def _defaults(data, config) -> tuple[dict, dict, frozenset]:
    """For a host's data: each global argument's (type, handler, default), the arguments
    as they are when nothing gives them, and those worked on at every call anyway."""
    merged = "merged" in data.__dict__
    kept = data.__dict__.get("pwlb_defaults") if merged else None
    steady = (merged and not data.override_datas
              and _order().keys().isdisjoint(data.host.get_deploy_data()))
    if steady and kept is not None and kept[0] is config:
        return kept[1]
    rows, base, special = {}, {}, set()
    for key, type_ in _arguments.all_global_arguments():
        argument_meta = all_argument_meta[key]
        default = argument_meta.default(config)
        host_default = (_merged_value(data, key) if merged
                        else getattr(data, key, default_sentinel))
        if host_default is not default_sentinel:
            default = host_default
        rows[key] = (type_, argument_meta.handler, default)
        base[key] = default
        if argument_meta.handler or isinstance(default, (dict, list, set)):
            special.add(key)
    table = (rows, base, frozenset(special))
    if steady:
        data.__dict__["pwlb_defaults"] = (config, table)
    return table
