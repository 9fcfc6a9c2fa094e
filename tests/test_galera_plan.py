"""Which node starts a Galera cluster, which join it, and when the deploy refuses to
guess (deploys/plan.py: galera_plan). Pure: each node's GaleraNode fact in."""

from __future__ import annotations

from pyinfra_wordpress_lb.deploys.plan import HostInput, build, galera_plan

NODES = ("db1", "db2", "db3")
UUID = "8d3f0c4e-0000-11ef-8000-0a0b0c0d0e0f"


def member(size=3):
    return {"active": True, "wsrep_cluster_status": "Primary", "wsrep_local_state": "4",
            "wsrep_cluster_size": str(size), "uuid": UUID, "seqno": -1, "config": True,
            "has_database": True}


def standalone(data=False):
    return {"active": True, "wsrep_cluster_status": "Disconnected",
            **({"has_database": True} if data else {})}


def stopped(seqno=-1, recovered=None, safe=0, uuid=UUID):
    fact = {"active": False, "uuid": uuid, "seqno": seqno, "safe_to_bootstrap": safe,
            "config": True, "has_database": True}
    if recovered is not None:
        fact["recovered"] = recovered
    return fact


def test_a_new_cluster_starts_on_the_first_node_and_the_others_join():
    g = galera_plan(NODES, {"db1": standalone(), "db2": standalone(), "db3": {}})
    assert (g.bootstrap, g.joining, g.problem) == ("db1", ("db2", "db3"), None)
    assert g.states == {"db1": "standalone", "db2": "standalone", "db3": "fresh"}
    assert g.applier == "db1"


def test_growing_from_one_database_host_keeps_its_data():
    """db2 held the site alone; db1 and db3 are new: db2 starts the cluster."""
    g = galera_plan(NODES, {"db1": {}, "db2": standalone(data=True), "db3": {}})
    assert (g.bootstrap, g.joining) == ("db2", ("db1", "db3"))


def test_two_hosts_with_their_own_data_are_refused():
    g = galera_plan(NODES, {"db1": standalone(data=True), "db2": standalone(data=True),
                            "db3": {}})
    assert g.bootstrap is None and g.joining == ()
    assert "db1, db2 each hold a database of the site" in g.problem


def test_a_running_cluster_is_left_alone_and_a_stopped_node_rejoins():
    g = galera_plan(NODES, {"db1": member(2), "db2": member(2), "db3": stopped()})
    assert (g.bootstrap, g.joining, g.problem) == (None, ("db3",), None)
    assert g.applier == "db1"


def test_an_unreachable_node_does_not_stop_a_running_cluster():
    g = galera_plan(NODES, {"db1": None, "db2": member(2), "db3": member(2)})
    assert (g.bootstrap, g.joining, g.problem) == (None, (), None)
    assert g.states["db1"] == "unknown" and g.applier == "db2"


def test_a_standalone_copy_beside_a_running_cluster_is_not_overwritten():
    g = galera_plan(NODES, {"db1": member(2), "db2": member(2),
                            "db3": standalone(data=True)})
    assert "db3: holds its own copy of the site's database" in g.problem


def test_after_a_clean_stop_of_all_the_last_one_out_starts_first():
    g = galera_plan(NODES, {"db1": stopped(seqno=40), "db2": stopped(seqno=42, safe=1),
                            "db3": stopped(seqno=40)})
    assert (g.bootstrap, g.joining) == ("db2", ("db1", "db3"))


def test_after_a_crash_of_all_the_most_advanced_starts_first():
    g = galera_plan(NODES, {"db1": stopped(recovered=41), "db2": stopped(recovered=40),
                            "db3": stopped(recovered=41)})
    assert (g.bootstrap, g.joining) == ("db1", ("db2", "db3"))
    g = galera_plan(NODES, {"db1": stopped(recovered=39), "db2": stopped(recovered=40),
                            "db3": stopped(recovered=41)})
    assert g.bootstrap == "db3"


def test_a_node_that_never_was_in_the_cluster_never_starts_it():
    g = galera_plan(NODES, {"db1": {}, "db2": stopped(recovered=7), "db3": stopped(seqno=5)})
    assert (g.bootstrap, g.joining) == ("db2", ("db1", "db3"))


def test_whole_cluster_down_with_a_node_unreachable_is_refused():
    g = galera_plan(NODES, {"db1": stopped(recovered=41), "db2": None,
                            "db3": stopped(recovered=41)})
    assert g.bootstrap is None and g.joining == ()
    assert "db2 cannot be reached" in g.problem


def test_whole_cluster_down_with_an_unreadable_position_is_refused():
    g = galera_plan(NODES, {"db1": stopped(recovered=41), "db2": stopped(),
                            "db3": stopped(recovered=41)})
    assert "position of db2 cannot be read: run `galera_recovery` there" in g.problem


def test_nodes_of_different_clusters_are_refused():
    g = galera_plan(NODES, {"db1": stopped(recovered=1), "db2": stopped(recovered=2),
                            "db3": stopped(recovered=3, uuid="11111111-2222-3333-4444-555555555555")})
    assert "were in different Galera clusters" in g.problem


def test_a_node_still_starting_is_named_with_the_command():
    g = galera_plan(NODES, {"db1": {"activating": True, "active": False, "uuid": UUID},
                            "db2": stopped(recovered=2), "db3": stopped(recovered=3)})
    assert "db1 is still starting" in g.problem and "systemctl stop mariadb" in g.problem


def _hosts(dbs, facts, data=None):
    layout = {"lb1": ("lb",), "web1": ("web",), "web2": ("web",)}
    layout.update({name: ("db",) for name in dbs})
    return [HostInput(name=name, groups=frozenset(roles), data=data or {},
                      address=f"10.0.0.{10 + i}", galera=facts.get(name),
                      releases={"current": None} if "web" in roles else None)
            for i, (name, roles) in enumerate(layout.items())]


def test_one_db_host_is_no_cluster():
    plan = build(_hosts(["db1"], {}))
    assert plan.galera is None and plan.backup_host == "db1"
    assert plan.db_endpoint == "10.0.0.13"


def test_three_db_hosts_are_a_cluster_reached_through_the_local_proxy():
    plan = build(_hosts(NODES, {n: standalone() for n in NODES}))
    assert plan.galera.nodes == NODES and plan.galera.bootstrap == "db1"
    assert plan.db_endpoint == "127.0.0.1:3307"
    assert plan.backup_host == "db3"  # the node least likely to take writes
    plan = build(_hosts(NODES, {}, data={"db_proxy_port": 3399}))
    assert plan.db_endpoint == "127.0.0.1:3399"


def test_two_db_hosts_and_an_arbitrator_are_a_cluster():
    plan = build(_hosts(["db1", "db2"], {}, data={"db_arbitrator": "lb1"}))
    assert plan.galera.nodes == ("db1", "db2") and plan.galera.arbitrator == "lb1"
