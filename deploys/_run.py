"""What one run of pyinfra keeps while it goes on, in one place.

pyinfra loads the deploy once per host, side by side, and runs no deploy code between
its steps; what the hosts' deploys must share in a run (the plan built once, facts of
peers asked once, which hosts could not be reached, what was already said) lives in
one `Run` per pyinfra `State`, not in attributes added to pyinfra's objects nor in
module globals that a second run in the same process would inherit.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from pyinfra import state as current_state


@dataclass
class Run:
    facts: dict = field(default_factory=dict)  # (host, fact, args) -> answer at load
    answers: dict = field(default_factory=dict)  # host -> facts kept while it runs (_facts)
    asked: dict = field(default_factory=dict)  # host -> {key: fact asked}, for the next run
    batched: dict = field(default_factory=dict)  # host -> keys asked together in this run
    once: dict = field(default_factory=dict)  # host -> answers of ONCE facts, each given once
    tiers: dict = field(default_factory=dict)  # operation hash -> its tier (_facts)
    learned: dict | None = None  # what the last run asked (_facts)
    learned_at: Any = None  # where that is kept
    unreachable: dict[str, str] | None = None  # host -> why
    problems: list[str] | None = None  # validate's answer
    plan: Any = None  # deploys.plan.Cluster, once validated
    warned: set[str] = field(default_factory=set)  # hosts named as left out already
    status: dict = field(default_factory=dict)  # status.py: host -> its rows
    restore: str | None = None  # restore.py: the backup chosen
    restore_archive: str | None = None  # restore.py: its wp-content on this machine
    quiet: bool | None = None  # verify: nothing changed on any host in this run


_RUNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def run(state=None) -> Run:
    """This run's record (pyinfra's current state's)."""
    state = current_state._get_module() if state is None else state  # the object, not the proxy
    found = _RUNS.get(state)
    if found is None:
        found = _RUNS[state] = Run()
    return found
