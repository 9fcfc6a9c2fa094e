"""Ordering across hosts."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from pyinfra_wordpress_lb.facts.network import Answers


@operation()
def barrier(reason: str):
    """
    A point every host reaches before any host goes on. pyinfra 3 runs each host's own
    list of operations in order, but one host's 12th operation may run beside another's
    12th whatever they are; only an operation called from the same place for every host
    is one step shared by all. Call this unconditionally, for every host, where a later
    step of one host needs earlier steps of others (the balancer's check needs every
    backend ready). Every host answers afresh here, so one that died since its last
    command fails at the barrier. Changes nothing.

    + reason: what every host has done by then (shown in the log)

    **Example:**

    .. code:: python

        cluster.barrier(name="Every host has its tiers", reason="tiers deployed")
    """
    # Each host answers afresh here (see roll_call): one that died since its last
    # command fails at the barrier, before the others decide what comes after it.
    if host.get_fact(Answers):
        host.noop(f"waited for every host: {reason}")
    return
    yield  # an operation is a generator, even one that never changes anything


@operation()
def roll_call(reason: str):
    """
    Every host of this step answers now: a fresh round trip, never an answer kept from
    earlier in the run (deploys/_facts.py). A host that died since its last command
    fails here, so a decision the next step takes for the whole cluster (`_if` on
    whether any host failed) knows it. Changes nothing.

    + reason: what the cluster decides next (shown in the log)

    **Example:**

    .. code:: python

        cluster.roll_call(name="Every web host answers", reason="the release switch")
    """
    if host.get_fact(Answers):
        host.noop(f"answers, before {reason}")
    return
    yield  # an operation is a generator, even one that never changes anything
