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


def _local_counting():
    """This machine as a pyinfra host (@local: a real shell), counting its commands."""
    inventory = Inventory((["@local"], {}))
    state = State(inventory, Config())
    connect_all(state)
    local = inventory.get_host("@local")
    asked: list[str] = []
    original = local.connector.run_shell_command

    def counting(command, *args, **kwargs):
        asked.append(str(command))
        return original(command, *args, **kwargs)

    local.connector.run_shell_command = counting
    return state, local, asked


def test_a_tier_asks_what_it_asked_last_time_in_one_command(tmp_path):
    """With what the last run asked (per host and tier), the first fact a tier asks
    brings every one of them in one round trip (here on this machine, @local: a real
    shell); each answer is read by the fact's own parser."""
    from pyinfra.facts.files import Directory

    from pyinfra_wordpress_lb.deploys._run import run

    _facts.install()
    (tmp_path / "a.txt").write_text("hello\n")
    state, local, asked = _local_counting()
    record = run(state)
    record.learned = {"@local": [
        {"tier": "", "fact": "pyinfra.facts.files:File", "kwargs": {"path": str(tmp_path / "a.txt")}},
        {"tier": "", "fact": "pyinfra.facts.files:Directory", "kwargs": {"path": str(tmp_path)}},
        {"tier": "", "fact": "pyinfra.facts.files:File", "kwargs": {"path": str(tmp_path / "none")}},
        {"tier": "Other", "fact": "pyinfra.facts.files:File", "kwargs": {"path": "/etc/passwd"}}]}
    record.learned_at = tmp_path / "hosts.facts.json"
    state.is_executing = True
    with ctx_state.use(state), ctx_host.use(local):
        assert isinstance(local.get_fact(Directory, path=str(tmp_path)), dict)
        assert len(asked) == 1 and "/etc/passwd" not in asked[0]  # the tier's three, at once
        assert local.get_fact(File, path=str(tmp_path / "a.txt"))["size"] == 6
        assert local.get_fact(File, path=str(tmp_path / "none")) is None
        assert len(asked) == 1
        single = local.get_fact(File, path=str(tmp_path / "a.txt"))
        StringCommand("true").execute(state, local, {})
        assert local.get_fact(File, path=str(tmp_path / "a.txt")) == single  # asked alone
        assert len(asked) == 3  # together once per run; then one by one
    paths = sorted((e["kwargs"]["path"], e["fact"]) for e in record.asked["@local"].values())
    # What this run asked, answered together or not, is what the next run asks together;
    # with the digest of the file found missing (see the next test).
    assert paths == [(str(tmp_path), "pyinfra.facts.files:Directory"),
                     (str(tmp_path / "a.txt"), "pyinfra.facts.files:File"),
                     (str(tmp_path / "none"), "pyinfra.facts.files:File"),
                     (str(tmp_path / "none"), "pyinfra.facts.files:Sha1File")]


def test_a_file_found_missing_has_its_digest_asked_with_its_tier_next_run(tmp_path):
    """A tier that writes a new file found it missing; the next run finds it and asks
    its digest (files.put/template). That digest comes with the tier's other facts,
    not in a round trip of its own."""
    from pyinfra.facts.files import Sha1File

    from pyinfra_wordpress_lb.deploys._run import run

    _facts.install()
    new = tmp_path / "new.conf"
    state, local, asked = _local_counting()
    record = run(state)
    record.learned, record.learned_at = {}, tmp_path / "hosts.facts.json"
    state.is_executing = True
    with ctx_state.use(state), ctx_host.use(local):
        assert local.get_fact(File, path=str(new)) is None
    learned = {"@local": list(record.asked["@local"].values())}
    new.write_text("written\n")  # the operation wrote it
    state, local, asked = _local_counting()
    record = run(state)
    record.learned, record.learned_at = learned, tmp_path / "hosts.facts.json"
    state.is_executing = True
    with ctx_state.use(state), ctx_host.use(local):
        assert local.get_fact(File, path=str(new))["size"] == 8
        assert local.get_fact(Sha1File, path=str(new)) == _sha1(new)
    assert len(asked) == 1  # the digest came with the tier


def _sha1(path) -> str:
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_a_fact_needing_a_command_the_host_lacks_is_left_to_pyinfra(tmp_path):
    from pyinfra.facts.server import Which  # noqa: F401 (a kept fact without a requirement)

    class Needs(File):
        def requires_command(self, path):
            return "pwlb-no-such-command"

    host = type("Host", (), {})()
    outputs = []

    def run_shell_command(command, **kwargs):
        import subprocess

        from pyinfra.connectors.util import CommandOutput, OutputLine

        text = command.get_raw_value()
        outputs.append(text)
        done = subprocess.run(["sh", "-c", text], capture_output=True, text=True)
        return True, CommandOutput([OutputLine("stdout", line)
                                    for line in done.stdout.splitlines()])

    host.run_shell_command = run_shell_command
    (tmp_path / "a").write_text("x")
    found = _facts.ask_together(host, [(Needs, {"path": str(tmp_path / "a")}),
                                       (File, {"path": str(tmp_path / "a")})], {},
                                keys=["needs", "file"])
    assert list(found) == ["file"] and found["file"]["size"] == 1
    assert len(outputs) == 1


def test_a_host_lost_while_asked_together_is_left_to_pyinfra():
    """A connection lost during the batch: nothing is answered, nothing raised (each fact
    is then asked alone and pyinfra fails the host as for any fact it cannot load)."""
    class Gone:
        def run_shell_command(self, command, **kwargs):
            raise ConnectionResetError("connection to web2 was lost")

    assert _facts.ask_together(Gone(), [(File, {"path": "/etc/passwd"})], {}, keys=["k"]) == {}


def test_a_once_fact_comes_with_its_tier_and_each_answer_is_given_once(tmp_path):
    """Whether WordPress is installed changes by itself: asked with the tier's facts in
    one command, that answer is given once; asked again, the host is asked."""
    from pyinfra_wordpress_lb.deploys._run import run
    from pyinfra_wordpress_lb.facts.wordpress import Installed

    _facts.install()
    state, local, asked = _local_counting()
    record = run(state)
    record.learned = {"@local": [
        {"tier": "", "fact": "pyinfra.facts.files:Directory", "kwargs": {"path": str(tmp_path)}},
        {"tier": "", "fact": "pyinfra_wordpress_lb.facts.wordpress:Installed",
         "kwargs": {"docroot": str(tmp_path), "user": "nobody"}}]}
    record.learned_at = tmp_path / "hosts.facts.json"
    state.is_executing = True
    with ctx_state.use(state), ctx_host.use(local):
        assert local.get_fact(Installed, docroot=str(tmp_path), user="nobody") is False
        assert len(asked) == 1  # with the directory, at once (itself beside the others)
        assert "mktemp -d" in asked[0] and "xargs -P" in asked[0]
        from pyinfra.facts.files import Directory

        assert isinstance(local.get_fact(Directory, path=str(tmp_path)), dict)
        assert len(asked) == 1
        assert local.get_fact(Installed, docroot=str(tmp_path), user="nobody") is False
        assert len(asked) == 2  # given once: then asked


def _shell_host(outputs: list):
    import subprocess

    from pyinfra.connectors.util import CommandOutput, OutputLine

    host = type("Host", (), {})()

    def run_shell_command(command, **kwargs):
        text = command.get_raw_value()
        outputs.append(text)
        done = subprocess.run(["sh", "-c", text], capture_output=True, text=True)
        return True, CommandOutput([OutputLine("stdout", line)
                                    for line in done.stdout.splitlines()])

    host.run_shell_command = run_shell_command
    return host


def test_many_facts_are_asked_in_commands_the_shell_accepts(tmp_path):
    """A no-op with 20 sites asks ~150 KiB of facts at once: Linux refuses one argument
    over 128 KiB, so they go in several commands, each answered."""
    (tmp_path / "a").write_text("x")
    outputs: list[str] = []
    asked = [(File, {"path": str(tmp_path / "a") + "/" * n}) for n in range(0, 1200, 2)]
    found = _facts.ask_together(_shell_host(outputs), asked, {}, keys=list(range(len(asked))))
    assert len(outputs) > 1 and all(len(text) < 128 * 1024 for text in outputs)
    assert len(found) == len(asked)


def test_once_facts_run_a_few_at_a_time(tmp_path):
    from pyinfra_wordpress_lb.facts.wordpress import Installed

    outputs: list[str] = []
    asked = [(Installed, {"docroot": str(tmp_path / str(n)), "user": "nobody"})
             for n in range(10)]
    found = _facts.ask_together(_shell_host(outputs), asked, {}, keys=list(range(10)))
    assert found == {n: False for n in range(10)}  # no wp-config.php there
    # Each a script of its own, run by a pool of 4 (the next as soon as one ends).
    assert outputs[0].count("<<'PWLB_FACT_END'") == 10
    assert outputs[0].count("xargs -P 4 ") == 1


FAKE_SYSTEMCTL = """#!/bin/sh
# systemctl show --all --property Id [--property <state>]... <unit>...: a block per unit,
# each property on a line of its own.
shift 2; states=""
while [ "$1" = --property ]; do [ "$2" = Id ] || states="$states $2"; shift 2; done
for unit in "$@"; do
  case "$unit" in a.*) on=running; file=enabled ;; *) on=dead; file=disabled ;; esac
  [ "$unit" = short.service ] && continue  # a unit it skips: the blocks do not add up
  printf 'Id=%s\\n' "$unit"
  for state in $states; do
    [ "$state" = SubState ] && value=$on || value=$file
    printf '%s=%s\\n' "$state" "$value"
  done
  echo
done
"""


def test_one_unit_systemd_facts_are_one_systemctl_for_both_kinds(tmp_path, monkeypatch):
    """`systemd.service` asks its unit's state and whether it is enabled: with many sites
    a tier asks hundreds. Asked together, both kinds are one `systemctl show` of all the
    units (each once) with both properties, each block read as that unit's own answer
    (the same as asked alone)."""
    from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

    tool = tmp_path / "bin" / "systemctl"
    tool.parent.mkdir()
    tool.write_text(FAKE_SYSTEMCTL)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}:{__import__('os').environ['PATH']}")
    units = ["a.service", "b.timer", "a-2.service"]
    asked = [(kind, {"services": [unit]}) for kind in (SystemdStatus, SystemdEnabled)
             for unit in units] + [(File, {"path": "/etc/passwd"})]
    outputs: list[str] = []
    found = _facts.ask_together(_shell_host(outputs), asked, {}, keys=list(range(len(asked))))
    assert len(outputs) == 1 and outputs[0].count("systemctl show") == 1
    assert "--property SubState --property UnitFileState" in outputs[0]
    assert outputs[0].count("a-2.service") == 1
    alone = {i: _facts.ask_together(_shell_host([]), [asked[i]], {}, keys=[i])[i]
             for i in range(len(units) * 2)}
    assert {i: found[i] for i in alone} == alone
    assert found[0] == {"a.service": True} and found[1] == {"b.timer": False}
    assert found[3] == {"a.service": True} and found[4] == {"b.timer": False}
    # Output that does not add up to a block per unit answers none of them (asked alone).
    asked = [(SystemdStatus, {"services": [u]}) for u in ("a.service", "short.service")]
    assert _facts.ask_together(_shell_host([]), asked, {}, keys=[0, 1]) == {}


def _tree(tmp_path) -> list[str]:
    """Every kind of path a file fact meets: a file, a directory, links to each, a
    dangling link, nothing, something under a file, a path given with a trailing slash."""
    (tmp_path / "file").write_text("x" * 100)
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "file")
    (tmp_path / "dirlink").symlink_to(tmp_path / "dir")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "private").write_text("secret")
    (tmp_path / "private").chmod(0o600)
    names = ["file", "dir", "link", "dirlink", "dangling", "gone", "file/under", "dir/",
             "private"]
    return [str(tmp_path / name) for name in names]


def test_file_facts_of_many_paths_are_one_command_each_kind_and_answer_as_alone(tmp_path):
    """A tier with 20 sites asks ~1,000 file facts of a web host (metadata and digest of
    each file it writes): asked together, each kind is one `stat` or digest tool for all
    paths, and each answer is the one the fact gives asked alone."""
    from pyinfra.facts.files import Directory, Link, Sha1File, Sha256File

    from pyinfra_wordpress_lb.facts.files import Content

    paths = _tree(tmp_path)
    kinds = (File, Directory, Link, Sha1File, Sha256File, Content)
    asked = [(kind, {"path": path}) for kind in kinds for path in paths]
    outputs: list[str] = []
    found = _facts.ask_together(_shell_host(outputs), asked, {}, keys=list(range(len(asked))))
    assert len(outputs) == 1
    assert outputs[0].count("stat -c") == 2  # File/Directory/Link at once, Content's lstat
    assert outputs[0].count("sha1sum") == 1 and outputs[0].count("sha256sum") == 2
    alone = {}
    for index, (kind, kwargs) in enumerate(asked):
        single = _facts.ask_together(_shell_host([]), [(kind, kwargs)], {}, keys=[index])
        alone.update(single)
    assert len(alone) == len(asked)
    assert found == alone
    by = dict(zip(((kind, path) for kind, kwargs in asked for path in [kwargs["path"]]),
                  (found[i] for i in range(len(asked)))))
    assert by[(File, paths[0])]["size"] == 100 and by[(Directory, paths[0])] is False
    assert by[(Link, paths[4])]["link_target"].endswith("gone")
    assert by[(Content, paths[4])]["sha256"] is None and by[(Content, paths[5])] is None
    assert by[(Content, paths[2])]["sha256"] == by[(Sha256File, paths[0])]


def test_file_facts_asked_of_another_stat_are_each_asked_alone(tmp_path, monkeypatch):
    """A `stat` or digest tool that does not answer as GNU's does (no line for `/`, for
    `/dev/null`): none of the group is answered, each is then asked alone."""
    from pyinfra.facts.files import Sha1File

    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("stat", "sha1sum"):
        (tools / name).write_text("#!/bin/sh\nexit 1\n")
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{__import__('os').environ['PATH']}")
    asked = [(kind, {"path": path}) for kind in (File, Sha1File) for path in ("/etc", "/x")]
    assert _facts.ask_together(_shell_host([]), asked, {}, keys=[0, 1, 2, 3]) == {}


def test_facts_with_the_same_command_run_it_once(tmp_path):
    """Whether WordPress is installed and its database version are one PHP run: asked
    together, it runs once and each fact reads its own line."""
    from pyinfra_wordpress_lb.facts.wordpress import DatabaseVersion, Installed

    (tmp_path / "wp-config.php").write_text("")
    outputs: list[str] = []
    asked = [(kind, {"docroot": str(tmp_path / name), "user": "nobody"})
             for name in ("a", "b") for kind in (Installed, DatabaseVersion)]
    found = _facts.ask_together(_shell_host(outputs), asked, {}, keys=[0, 1, 2, 3])
    assert found == {0: False, 1: None, 2: False, 3: None}  # no wp-config.php there
    assert outputs[0].count(" php -n ") == 2  # a PHP run per docroot, not per fact


def test_what_a_tier_asked_is_kept_for_the_runs_that_do_not_reach_it(tmp_path):
    """A no-op asks the verify tier less than a changing run does, under a name of its
    own: each run keeps what the tiers it did not ask asked before, so a changing run
    after a no-op still asks its tier's facts at once."""
    import json

    from pyinfra_wordpress_lb.deploys import _run

    _facts.install()
    state, local, asked = _local_counting()
    record = _run.run(state)
    old = {"tier": "Verify", "fact": "pyinfra.facts.files:File", "kwargs": {"path": "/a"}}
    gone = {"tier": "Web", "fact": "pyinfra.facts.files:File", "kwargs": {"path": "/b"}}
    record.learned = {"@local": [old, gone], "@other": [gone]}
    record.learned_at = tmp_path / "hosts.facts.json"
    now = {"tier": "Verify (nothing changed)", "fact": "pyinfra.facts.files:File",
           "kwargs": {"path": "/c"}}
    web = {"tier": "Web", "fact": "pyinfra.facts.files:File", "kwargs": {"path": "/d"}}
    record.asked = {"@local": {"k1": now, "k2": web}}
    _facts._save_learned()
    saved = json.loads(record.learned_at.read_text())
    assert saved["@local"] == [old, now, web] and saved["@other"] == [gone]
    _run._RUNS.pop(state)


def test_users_asked_together_are_pyinfras_lines_from_one_awk(tmp_path):
    """Without lastlog (Debian 13), the accounts asked with a tier come from one awk
    over the account files: the same lines as pyinfra's own script, byte for byte."""
    import os
    import shutil
    import subprocess

    from pyinfra.facts.server import Users

    tools = tmp_path / "bin"  # what both scripts use, and no lastlog
    tools.mkdir()
    for name in ("sh", "cat", "awk", "grep", "cut", "tr", "id"):
        (tools / name).symlink_to(shutil.which(name))
    env = {**os.environ, "PATH": str(tools)}
    ours = _facts.USERS.replace("{pyinfra}", "exit 9")
    theirs = Users().command()
    fast = subprocess.run(["sh", "-c", ours], capture_output=True, text=True, env=env)
    slow = subprocess.run(["sh", "-c", theirs], capture_output=True, text=True, env=env)
    assert fast.returncode == 0 and fast.stdout and fast.stdout == slow.stdout
    with_lastlog = _facts.USERS.replace("{pyinfra}", "echo theirs")
    (tools / "lastlog").symlink_to(shutil.which("true"))
    assert subprocess.run(["sh", "-c", with_lastlog], capture_output=True, text=True,
                          env=env).stdout == "theirs\n"


FAKE_MARIADB = """#!/usr/bin/env python3
# mariadb --batch --skip-column-names -e SQL: the grants of two accounts, as MariaDB
# prints them for one account (WHERE GRANTEE = ...) or several (GRANTEE IN (...)).
import re, sys
sql = sys.argv[-1]
rows = {"'wp_a'@'10.0.0.1'": [("wp_a", "SELECT"), ("wp_a", "INSERT")],
        "'wp_b'@'10.0.0.1'": [("wp_b", "SELECT")]}
asked = [g.replace("\\\\'", "'") for g in re.findall(r"'((?:[^'\\\\]|\\\\.)*)'", sql)]
for grantee in asked:
    for schema, privilege in rows.get(grantee, []):
        print((grantee + "\\t" if "GRANTEE IN" in sql else "") + schema + "\\t" + privilege)
if "##PWLB-DONE" in sql:
    print("##PWLB-DONE")
"""


def test_grants_of_many_accounts_are_one_query(tmp_path, monkeypatch):
    """Each site's account from each web host: one query for all, each account's rows
    read by the fact's own parser (an account without grants: {})."""
    from pyinfra_wordpress_lb.facts.mariadb import SchemaPrivileges

    tool = tmp_path / "bin" / "mariadb"
    tool.parent.mkdir()
    tool.write_text(FAKE_MARIADB)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}:{__import__('os').environ['PATH']}")
    asked = [(SchemaPrivileges, {"user": user, "hostname": "10.0.0.1"})
             for user in ("wp_a", "wp_b", "wp_c")]
    outputs: list[str] = []
    found = _facts.ask_together(_shell_host(outputs), asked, {}, keys=[0, 1, 2])
    assert outputs[0].count("mariadb --batch") == 1
    assert found == {0: {"wp_a": ["INSERT", "SELECT"]}, 1: {"wp_b": ["SELECT"]}, 2: {}}
    alone = {i: _facts.ask_together(_shell_host([]), [asked[i]], {}, keys=[i])[i]
             for i in range(3)}
    assert alone == found


def test_an_answer_given_again_is_a_copy_as_deepcopy_makes():
    """Each ask of a kept answer gets its own copy (an operation may change what it was
    given): equal to deepcopy's, sharing nothing mutable with the kept one."""
    import copy
    import datetime

    from pyinfra_wordpress_lb.deploys._facts import copied

    answers = [
        None, "text", 3, 1.5, True, b"raw",
        {"user": "root", "mode": 644, "mtime": datetime.datetime(2026, 12, 3)},
        {"nginx": ["1.26.3-3"], "php8.4-fpm": ["8.4.11-1"]},  # DebPackages
        [{"name": "a", "groups": ["x", "y"]}], {"a", "b"}, frozenset({1}),
        ("a", ["b"]), {"nested": {"set": {1, 2}, "list": [[1], [2]]}},
    ]
    for answer in answers:
        given = copied(answer)
        assert given == copy.deepcopy(answer) and type(given) is type(answer)
    kept = {"nginx": ["1.26"], "deep": {"list": [1]}, "set": {1}}
    given = copied(kept)
    given["nginx"].append("x")
    given["deep"]["list"].append(2)
    given["set"].add(2)
    assert kept == {"nginx": ["1.26"], "deep": {"list": [1]}, "set": {1}}


def test_http_requests_asked_together_are_one_curl_and_answer_as_alone(tmp_path):
    """A no-op's verify tier asks a balancer ~25 requests with 20 sites: one `curl` for
    all of them (4 at a time) gives each the answer its own curl gives (here against a
    server on 127.0.0.1: a page, a redirect, a refused port, another name's address)."""
    import functools
    import http.server
    import shutil
    import socket
    import threading

    import pytest

    from pyinfra_wordpress_lb.facts.http import Response

    if not shutil.which("curl"):
        pytest.skip("curl is not installed on this machine")
    (tmp_path / "dir").mkdir()
    (tmp_path / "index.html").write_text("<html><title>The page</title></html>\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = closed.getsockname()[1]
    port = server.server_address[1]
    try:
        asked = [(Response, {"url": f"http://127.0.0.1:{port}/"}),
                 (Response, {"url": f"http://127.0.0.1:{port}/dir"}),  # a 301, its location
                 (Response, {"url": f"http://127.0.0.1:{refused}/"}),
                 (Response, {"url": "http://site.invalid/", "host_header": "site.invalid",
                             "connect_to": f"127.0.0.1:{port}"}),
                 (Response, {"url": f"http://127.0.0.1:{port}/", "wait": 1})]  # alone
        outputs: list[str] = []
        found = _facts.ask_together(_shell_host(outputs), asked, {}, keys=list(range(5)))
        assert len(outputs) == 1 and outputs[0].count("curl --parallel") == 1
        assert outputs[0].count("$(curl ") == 1  # (the one that waits: its own)
        alone = {i: _facts.ask_together(_shell_host([]), [asked[i]], {}, keys=[i])[i]
                 for i in range(5)}
    finally:
        server.shutdown()

    def same(answer):
        return {**answer, "seconds": answer["seconds"] is not None}
    assert {i: same(a) for i, a in found.items()} == {i: same(a) for i, a in alone.items()}
    assert found[0]["status"] == 200 and found[0]["title"] == "The page"
    assert found[1]["status"] == 301 and found[1]["location"].endswith("/dir/")
    assert found[2]["status"] == 0 and found[2]["error"] == "connection refused"
    assert found[3]["title"] == "The page"


def test_many_http_requests_are_curls_the_shell_accepts():
    """Requests asked together are one `curl` per group, each group's command short
    enough for the shell (an argument of 128 KiB at most)."""
    from pyinfra_wordpress_lb.facts.http import Response

    asked = [(Response, {"url": f"https://site-{n}.example/?pwlb-verify",
                         "connect_to": "127.0.0.1:443"}) for n in range(600)]
    groups = _facts._groups(asked)
    assert len(groups) > 1 and sum(len(m) for m, _, _ in groups) == 600
    assert all(len(text) < _facts.CHUNK for _, text, _ in groups)
