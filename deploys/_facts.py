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

Facts that change by themselves but are asked once per site in a tier (an HTTP answer
in the verify tier; whether WordPress is installed, its database version) are ONCE:
asked with the rest of their tier in one command, and each answer given once (the
same fact asked again in the run goes to the host). The answer is at most as old as
the tier.

Fewer round trips still: each host remembers which of these facts each tier asked in
the last run (`<secrets file's stem>.facts.json` beside the secrets store: fact names
and arguments, no answers), and the first time a tier asks one of them in this run,
all of them are asked at once, in one command whose output is split and read by each
fact's own parser. Each remembered fact is asked that way at most once per run, so a
run that changes things (and forgets answers at each command) asks the rest one by one
as before. A no-op run asks each host about one round trip per tier (each costs ~50 ms
over SSH before the command even starts: sshd's session set-up).
"""

from __future__ import annotations

import atexit
import copy
import functools
import importlib
import json
import re
import shlex

from pyinfra.api import command as commands
from pyinfra.api import facts as pyinfra_facts
from pyinfra.api import host as pyinfra_host
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from paramiko import SSHException
from pyinfra.api.command import StringCommand
from pyinfra.facts import deb, files, mysql, server, systemd

from pyinfra_wordpress_lb.deploys._run import run
from pyinfra_wordpress_lb.facts import (
    files as own_files, http, mariadb, nftables, nginx, php, sysctl, wordpress,
)

# What only a command run on the host changes (or, for systemd, its units' own life; a
# database's accounts, its own clients).
KEPT = frozenset({
    files.File, files.Directory, files.Link, files.Sha1File, files.Sha256File, files.FileContents,
    files.FindInFile, server.Os, server.Users, server.Groups, server.Which,
    server.LinuxDistribution, deb.DebPackages, systemd.SystemdStatus, systemd.SystemdEnabled,
    own_files.Content, wordpress.Releases, nftables.Table, nginx.Loaded, nginx.Upstream,
    mariadb.Accounts,
    mariadb.Databases, mariadb.SchemaPrivileges, php.FpmVersion, sysctl.Setting,
    mysql.MysqlDatabases,
})

# What changes by itself, asked once per site: asked with its tier, each answer given once.
ONCE = frozenset({http.Response, wordpress.Installed, wordpress.DatabaseVersion})

MARK = "##PWLB-FACT##"
MISSING = "##PWLB-NOCMD##"


def install() -> None:
    """Keep fact answers for this process's runs (idempotent)."""
    if getattr(pyinfra_facts.get_fact, "pwlb_kept", False):
        return
    ask = pyinfra_facts.get_fact

    @functools.wraps(ask)
    def get_fact(state, host, cls, args=None, kwargs=None, ensure_hosts=None,
                 apply_failed_hosts=True):
        if (cls not in KEPT and cls not in ONCE) or not state.is_executing:
            return ask(state, host, cls, args, kwargs, ensure_hosts, apply_failed_hosts)
        fact_kwargs, global_kwargs = pyinfra_facts._handle_fact_kwargs(
            state, host, cls, args, kwargs)
        fact_kwargs = {k: v for k, v in fact_kwargs.items() if k != "self"}
        executor = {k: v for k, v in global_kwargs.items() if k in CONNECTOR_ARGUMENT_KEYS}
        key = _key(cls, fact_kwargs, executor)
        record = run(state)
        answers = record.answers.setdefault(host.name, {})
        tier = _tier(state, host, record)
        _remember(record, host, tier, cls, fact_kwargs, key)  # for the next run
        if cls in ONCE:
            if key not in answers:
                _ask_tier(state, host, tier, key, executor)
            given = record.once.setdefault(host.name, {})
            if key in given:
                return given.pop(key)
            return ask(state, host, cls, args, kwargs, ensure_hosts, apply_failed_hosts)
        if key not in answers:
            _ask_tier(state, host, tier, key, executor)
        if key not in answers:
            answers[key] = ask(state, host, cls, args, kwargs, ensure_hosts,
                               apply_failed_hosts)
        if cls is files.File and answers[key] is None:
            _remember_digest(record, host, tier, fact_kwargs, executor)
        return copied(answers[key])  # an operation may change what it was given

    get_fact.pwlb_kept = True
    pyinfra_facts.get_fact = pyinfra_host.get_fact = get_fact

    for kind in (commands.StringCommand, commands.FileUploadCommand,
                 commands.FileDownloadCommand, commands.FunctionCommand,
                 commands.RsyncCommand):
        kind.execute = _forgetting(kind.execute)
    atexit.register(_save_learned)


SCALARS = frozenset({str, int, float, bool, type(None), bytes})


def copied(value):
    """`copy.deepcopy` of a fact's answer (scalars, and dicts, lists, sets and tuples of
    them, as facts answer), without deepcopy's bookkeeping: ~4x faster on the answers a
    run gives again thousands of times. Anything else goes to deepcopy."""
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind is dict:
        return {k: v if type(v) in SCALARS else copied(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in SCALARS else copied(v) for v in value]
    if kind is set or kind is frozenset:
        return kind(value) if all(type(v) in SCALARS for v in value) else copy.deepcopy(value)
    if kind is tuple:
        return tuple(copied(v) for v in value)
    return copy.deepcopy(value)


def _key(cls, fact_kwargs: dict, executor: dict) -> tuple:
    return (cls, repr(sorted(fact_kwargs.items())), repr(sorted(executor.items())))


def _tier(state, host, record=None) -> str:
    op_hash = host.current_op_hash
    if not op_hash:
        return ""
    tiers = (record or run(state)).tiers  # (names are set before the run executes)
    tier = tiers.get(op_hash)
    if tier is None:
        names = sorted(state.get_op_meta(op_hash).names)
        tier = tiers[op_hash] = names[0].split(" | ")[0] if names and " | " in names[0] else ""
    if tier == BY_RUN:
        from pyinfra_wordpress_lb.deploys._util import quiet

        if quiet():  # it asks less then: a run that changes things asks the rest at once
            tier += QUIET
    return tier


# The tier that asks less when nothing changed in the run (deploys/verify.py): what it
# asked is remembered apart for either kind of run.
BY_RUN = "Verify"
QUIET = " (nothing changed)"


def _forgetting(execute):
    @functools.wraps(execute)
    def wrapper(self, state, host, *args, **kwargs):
        record = run(state)
        record.answers.pop(host.name, None)
        record.once.pop(host.name, None)
        try:
            return execute(self, state, host, *args, **kwargs)
        finally:
            record.answers.pop(host.name, None)
            record.once.pop(host.name, None)
    return wrapper


# What each tier asked in the last run, per host.

def _learned_path():
    from pyinfra_wordpress_lb.deploys import secrets

    return secrets.beside(".facts.json")


def _learned(record) -> dict:
    """{host: [{"tier", "fact", "kwargs"}]} from the last run (read once per run)."""
    if record.learned is None:
        record.learned = {}
        if record.plan is not None:  # a validated deploy (whose secrets store is known)
            record.learned_at = _learned_path()
            try:
                record.learned = json.loads(record.learned_at.read_text())
            except (OSError, ValueError):
                pass
    return record.learned


def _remember(record, host, tier: str, cls, fact_kwargs: dict, key) -> None:
    asked = record.asked.setdefault(host.name, {})
    if key not in asked:
        try:
            json.dumps(fact_kwargs)
        except TypeError:
            return  # not an argument a file can hold: asked one by one
        asked[key] = {"tier": tier, "fact": f"{cls.__module__}:{cls.__qualname__}",
                      "kwargs": fact_kwargs}


def _remember_digest(record, host, tier: str, fact_kwargs: dict, executor: dict) -> None:
    """A file this tier found missing is most often one it writes now (`files.put`,
    `files.template`): the next run finds it and asks its digest, one round trip per
    file (~1 s per site added to a 20-site bed). That digest is remembered with the
    tier, as if asked: the next run asks it in the tier's batch (a missing file's costs
    nothing there), and, being asked or not then, the run after knows."""
    _remember(record, host, tier, files.Sha1File, fact_kwargs,
              _key(files.Sha1File, fact_kwargs, executor))


def _ask_tier(state, host, tier: str, key, executor: dict) -> None:
    """Ask at once every fact this tier asked in the last run and this run did not ask
    in a batch yet, with the connection options of the fact asked now."""
    record = run(state)
    batched = record.batched.setdefault(host.name, set())
    if key in batched:
        return
    wanted = []
    entries = _learned(record).get(host.name, [])
    if tier.endswith(QUIET) and not any(e.get("tier") == tier for e in entries):
        tier = tier.removesuffix(QUIET)  # never run quietly yet: what it asks otherwise
    for entry in entries:
        if entry.get("tier") != tier:
            continue
        try:
            module, _, name = entry["fact"].partition(":")
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            continue
        entry_key = _key(cls, entry["kwargs"], executor)
        if (cls in KEPT or cls in ONCE) and entry_key not in batched:
            wanted.append((entry_key, cls, entry["kwargs"]))
    if key not in {k for k, _, _ in wanted}:
        return  # not asked last time: one by one
    batched.update(k for k, _, _ in wanted)
    found = ask_together(host, [(cls, kw) for _, cls, kw in wanted], executor,
                         keys=[k for k, _, _ in wanted])
    once = {k: v for k, v in found.items() if k[0] in ONCE}
    record.once.setdefault(host.name, {}).update(once)
    record.answers.setdefault(host.name, {}).update(
        {k: v for k, v in found.items() if k not in once})


# One command's length at most: the shell gets it as one argument (`sh -c`), and Linux
# refuses an argument over 128 KiB (a no-op with 20 sites asks ~150 KiB of facts).
CHUNK = 48 * 1024
SIDE_BY_SIDE = 4  # ONCE facts run at once: each may be a page WordPress renders


def ask_together(host, asked: list, executor: dict, keys: list) -> dict:
    """Facts asked together, in as few commands as their length allows: {key: answer}
    for each one that answered plainly (exit status 0; a fact that fails, or needs a
    command the host may lack, is left to be asked alone, with pyinfra's own handling).
    ONCE facts (an HTTP request, a PHP process each) run SIDE_BY_SIDE at a time, each
    into a file of a private directory; the others one after another. Facts of one kind
    that one command answers for many (see `_groups`) are asked that way."""
    facts, texts, groups = {}, {}, {}
    for members, text, split in _groups(asked):
        first = members[0]
        texts[first], groups[first] = text, (members, split)
        for index in members:
            facts[index] = _instance(*asked[index])
    for index, (cls, kwargs) in enumerate(asked):
        if index in facts:
            continue
        fact = cls()
        if fact.shell_executable:
            continue
        command = pyinfra_facts._make_command(fact.command, dict(kwargs))
        text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
        if cls is server.Users and not kwargs:
            text = USERS.replace("{pyinfra}", text)
        needs = pyinfra_facts._make_command(fact.requires_command, dict(kwargs))
        if needs:  # as pyinfra asks it: a missing command is told apart (and left alone)
            needs = needs.get_raw_value() if isinstance(needs, StringCommand) else str(needs)
            text = (f"if command -v {needs} >/dev/null 2>&1; then ( {text} ); "
                    f"else echo '{MISSING}'; fi")
        facts[index], texts[index] = fact, text
    # Facts whose commands are the same (one PHP run answers two facts of a site): run
    # once, its output read by each.
    same: dict[str, list[int]] = {}
    for index, text in texts.items():
        if index not in groups:
            same.setdefault(text, []).append(index)
    for members in same.values():
        if len(members) > 1:
            groups[members[0]] = (members, lambda lines, m=members: dict.fromkeys(m, lines))
            for index in members[1:]:
                del texts[index]
    chunks: list[list[int]] = [[]]
    size = 0
    for index, text in texts.items():
        if chunks[-1] and size + len(text) > CHUNK:
            chunks.append([])
            size = 0
        chunks[-1].append(index)
        size += len(text) + 80
    found: dict = {}
    for chunk in chunks:
        if not chunk:
            continue
        command = _together([(i, texts[i], type(facts[i]) in ONCE) for i in chunk])
        try:
            status, output = host.run_shell_command(StringCommand(command),
                                                    print_output=False, print_input=False,
                                                    **executor)
        except (TimeoutError, OSError, EOFError, SSHException):
            # The host is gone (killed, cut off): each fact is asked alone, and pyinfra's
            # own handling fails the host as for any fact it cannot load.
            return found
        found.update(_answers(output.stdout_lines, facts, keys, groups))
    return found


# pyinfra's Users runs ~15 processes per user (grep, lastlog, id...): with 20 sites'
# users on every host, ~0.3-0.9 s, the most of the first tier's batch. Where there is
# no lastlog (Debian 13), the same lines from one awk over the account files (a user's
# groups as `id -Gn` lists them from /etc/group: the primary first, then each group
# naming the user, in the file's order); elsewhere pyinfra's own script.
USERS = """if command -v lastlog >/dev/null 2>&1 || command -v lastlogin >/dev/null 2>&1; then
{pyinfra}
else
{ cat /etc/group; echo '##PWLB-SHADOW'; cat /etc/shadow 2>/dev/null; echo '##PWLB-PASSWD'
  cat /etc/passwd; } | awk -F: '
$0 == "##PWLB-SHADOW" { part = 1; next }
$0 == "##PWLB-PASSWD" { part = 2; next }
part == 0 { if (!($3 in gname)) gname[$3] = $1; group[++groups] = $0; next }
part == 1 { if (!($1 in password)) password[$1] = $2; next }
{
  primary = ($4 in gname) ? gname[$4] : $4; list = primary
  for (k = 1; k <= groups; k++) {
    split(group[k], g, ":")
    if (g[3] == $4) continue
    n = split(g[4], members, ",")
    for (j = 1; j <= n; j++) if (members[j] == $1) { list = list " " g[1]; break }
  }
  print $0 "|" primary "|" list "||" password[$1]
}'
fi"""


def _instance(cls, kwargs: dict):
    """A fact to read an answer with (a digest's reads the path its command was given)."""
    fact = cls()
    if isinstance(fact, files.HashFileFactBase):
        fact.command(**kwargs)
    return fact


def _groups(asked: list) -> list[tuple[list[int], str, object]]:
    """Facts of one kind asked as one command for all: (their indexes, the command,
    a function from its output to each one's own output: {index: lines}, or None when
    the output does not add up, and each is then asked alone).

    Each write of a file asks for its metadata and digest, each `systemd.service` for
    its unit's state and whether it is enabled: a tier with 20 sites asks ~1,000 such
    facts of a web host, a process or two each (~2.5 ms). One `stat`, `sha1sum` or
    `systemctl show` for all of them gives each the line its own command would have
    printed, read by the fact's own parser."""
    found = []
    for build, each in _kinds(asked).values():
        parts, size = [[]], 0
        for index, argument in each:
            # (an argument that is not a path: its arguments' length, and room for the
            # options its command gives each, as an HTTP request's)
            length = len(argument) if isinstance(argument, str) else len(repr(argument)) + 120
            if len(parts[-1]) == GROUP_MOST or size + length > CHUNK // 2:
                parts.append([])
                size = 0
            parts[-1].append((index, argument))
            size += length + 1
        for part in parts:
            if len(part) > 1:
                found.append(build([i for i, _ in part], [arg for _, arg in part], asked))
    return found


GROUP_MOST = 400  # members of one group's command (and their arguments, CHUNK / 2 at most)
SAFE_PATH = re.compile(r"/[A-Za-z0-9_.@%+=:,/-]*", re.ASCII)  # printed as given, no quoting
STAT_FACTS = (files.File, files.Directory, files.Link)
HASHES = {files.Sha1File: "sha1sum", files.Sha256File: "sha256sum"}
# `systemd.service` asks two facts of its one unit (its state, whether it is enabled).
UNIT_FACTS = (systemd.SystemdStatus, systemd.SystemdEnabled)


def _kinds(asked: list) -> dict:
    """{kind: (how its group is built, [(index, argument)])} for the facts that can be
    asked together: file facts of a plain absolute path, one-unit systemd facts."""
    kinds: dict = {}
    for index, (cls, kwargs) in enumerate(asked):
        path = kwargs.get("path") if set(kwargs) == {"path"} else None
        services = kwargs.get("services")
        if cls in STAT_FACTS and isinstance(path, str) and SAFE_PATH.fullmatch(path):
            kinds.setdefault("stat", (_stat_group, []))[1].append((index, path))
        elif cls in HASHES and isinstance(path, str) and SAFE_PATH.fullmatch(path):
            kinds.setdefault(cls, (_hash_group(HASHES[cls]), []))[1].append((index, path))
        elif cls is own_files.Content and isinstance(path, str) and SAFE_PATH.fullmatch(path):
            kinds.setdefault(cls, (_content_group, []))[1].append((index, path))
        elif cls is http.Response and _plain_request(kwargs):
            kinds.setdefault(cls, (_requests_group, []))[1].append((index, kwargs))
        elif cls is mariadb.SchemaPrivileges and set(kwargs) == {"user", "hostname"}:
            kinds.setdefault(cls, (_grants_group, []))[1].append((index, kwargs))
        elif cls in UNIT_FACTS and isinstance(services, (list, tuple)) \
                and len(services) == 1 and not kwargs.get("user_mode"):
            other = tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "services"))
            kinds.setdefault((UNIT_FACTS, other), (_unit_group, []))[1].append(
                (index, services[0]))
    return kinds


def _paths(paths: list[str]) -> str:
    return " ".join(dict.fromkeys(paths))  # each once, in order (SAFE_PATH: no quoting)


# pyinfra's File/Directory/Link: `stat -c '<format> %N' PATH` when something is there,
# nothing when not. One `stat` of every path, each line led by its path (`/` first: no
# line for it means this is not the `stat` the format is for).
STAT_FORMAT = "user=%U group=%G mode=%A atime=%X mtime=%Y ctime=%Z size=%s %N"


def _stat_group(members: list[int], paths: list[str], asked: list):
    text = f"stat -c '%n {STAT_FORMAT}' -- / {_paths(paths)} 2>/dev/null; true"

    def split(lines):
        by_path = dict(line.split(" ", 1) for line in lines if " " in line)
        if "/" not in by_path:
            return None
        return {i: [by_path[p]] if p in by_path else [] for i, p in zip(members, paths)}
    return members, text, split


def _hash_group(tool: str):
    """pyinfra's Sha1File/Sha256File: `<tool> PATH` of a file there, nothing otherwise
    (a directory: the tool fails, nothing printed). One run of the tool for every path
    (`/dev/null` first: its line says the tool ran)."""
    def build(members: list[int], paths: list[str], asked: list):
        text = f"{tool} -- /dev/null {_paths(paths)} 2>/dev/null; true"

        def split(lines):
            by_path = _digests(lines)
            if "/dev/null" not in by_path:
                return None
            return {i: [by_path[p]] if p in by_path else [] for i, p in zip(members, paths)}
        return members, text, split
    return build


def _digests(lines: list[str]) -> dict[str, str]:
    """`sha1sum`/`sha256sum` output: {path: its line}."""
    return {line.partition(" ")[2].lstrip(" *"): line for line in lines}


def _content_group(members: list[int], paths: list[str], asked: list):
    """facts.files.Content: a regular file's owner and digest, `other` for anything else
    there (a dangling link too), nothing when nothing is there."""
    listed = _paths(paths)
    text = (f"stat -L -c 'L %n %A owner=%U %G %a' -- / {listed} 2>/dev/null; "
            f"stat -c 'E %n' -- {listed} 2>/dev/null; sha256sum -- {listed} 2>/dev/null; true")

    def split(lines):
        kind: dict = {}
        owner, there, rest = {}, set(), []
        for line in lines:
            if line.startswith("L "):
                _, path, mode, owned = line.split(" ", 3)
                owner[path] = (mode, owned)
            elif line.startswith("E "):
                there.add(line[2:])
            else:
                rest.append(line)
        digests = _digests(rest)
        if "/" not in owner:
            return None
        for i, path in zip(members, paths):
            if path in owner and owner[path][0].startswith("-"):
                kind[i] = [owner[path][1]] + ([digests[path]] if path in digests else [])
            else:
                kind[i] = ["other"] if path in there or path in owner else []
        return kind
    return members, text, split


def _grants_group(members: list[int], accounts: list[dict], asked: list):
    """facts.mariadb.SchemaPrivileges: one query for every account (each site's, from
    each web host: 40 with 20 sites), its rows led by the account (a last row says the
    query ran)."""
    grantees = [mariadb.grantee_of(a["user"], a["hostname"]) for a in accounts]
    sql = ("SELECT GRANTEE, TABLE_SCHEMA, PRIVILEGE_TYPE FROM "
           "information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE IN ("
           + ", ".join(mariadb.sql_literal(g) for g in dict.fromkeys(grantees))
           + "); SELECT '##PWLB-DONE'")
    text = (f"command -v mariadb >/dev/null 2>&1 || exit 1; "
            f"mariadb --batch --skip-column-names -e {shlex.quote(sql)}")

    def split(lines):
        if not lines or lines[-1].strip() != "##PWLB-DONE":
            return None
        rows: dict = {}
        for line in lines[:-1]:
            grantee, _, rest = line.partition("\t")
            rows.setdefault(grantee, []).append(rest)
        return {i: rows.get(g, []) for i, g in zip(members, grantees)}
    return members, text, split


def _plain_request(kwargs: dict) -> bool:
    """An HTTP question asked once (not again while nothing answers: `wait`), of plain
    string arguments."""
    return (isinstance(kwargs.get("url"), str) and not kwargs.get("wait")
            and set(kwargs) <= {"url", "host_header", "connect_to", "wait"}
            and all(kwargs.get(k) is None or isinstance(kwargs[k], str)
                    for k in ("host_header", "connect_to")))


GROUP_MARK = "##PWLB-REQUEST##"


def _requests_group(members: list[int], asked_kwargs: list[dict], asked: list):
    """facts.http.Response: one `curl` for every request (4 at a time, `--parallel`),
    not a curl each (its start, ~10 ms of CPU, was most of a no-op's verify tier with
    20 sites). Each transfer's headers and body go to files of a private directory, its
    status, time and exit code to a line of its own; each request's lines are then the
    ones its own command prints, read by the fact's own parser."""
    transfers = []
    for n, kwargs in enumerate(asked_kwargs):
        transfers.append(
            f"-s -m 10 -D \"$d/{n}.h\" -o \"$d/{n}\" "
            f"-w '{GROUP_MARK} {n} %{{http_code}} %{{time_total}} %{{exitcode}}\\n'"
            f"{http.request_options(kwargs.get('host_header'), kwargs.get('connect_to'))} "
            f"{shlex.quote(kwargs['url'])}")
    count = len(asked_kwargs)
    text = (
        "command -v curl >/dev/null 2>&1 || exit 1; d=$(mktemp -d) || exit 1; "
        "curl --parallel --parallel-max 4 " + " --next ".join(transfers) + " >\"$d/w\"; "
        f"n=0; while [ $n -lt {count} ]; do echo \"{GROUP_MARK} $n\"; "
        "cat \"$d/$n.h\" \"$d/$n\" 2>/dev/null | grep -a -i -o -E "
        f"'<title>[^<]*</title>|{http.HEADERS}'; "
        f"grep \"^{GROUP_MARK} $n \" \"$d/w\" | while read -r _ _ code took rc; do "
        "echo \"PWLB-STATUS:$code\"; echo \"PWLB-TIME:$took\"; echo \"PWLB-EXIT:$rc\"; done; "
        "n=$((n+1)); done; rm -rf \"$d\""
    )

    def split(lines):
        parts: dict[int, list[str]] = {}
        current = None
        for line in lines:
            if line.startswith(GROUP_MARK + " "):
                current = int(line.split()[1])
                parts[current] = []
            elif current is not None:
                parts[current].append(line)
        if sorted(parts) != list(range(count)) or \
                any(sum(x.startswith("PWLB-EXIT:") for x in p) != 1 for p in parts.values()):
            return None
        return {members[n]: part for n, part in parts.items()}
    return members, text, split


def _unit_blocks(lines: list[str], count: int) -> list[list[str]] | None:
    """`systemctl show` of several units: each unit's lines (None unless one block each)."""
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    return blocks if len(blocks) == count else None


def _unit_group(members: list[int], units: list[str], asked: list):
    """One `systemctl show` of every unit, with each property asked (a unit's state,
    whether it is enabled: systemd loads each unit once for both, ~1.7 ms a unit): its
    output has one block per unit in the order asked, each read as that unit's own
    answer by each fact's parser (which reads its own property, and skips the other)."""
    kinds = sorted({asked[i][0] for i in members}, key=lambda kind: kind.state_key)
    first, kwargs = kinds[0], asked[members[0]][1]
    listed = list(dict.fromkeys(units))
    command = pyinfra_facts._make_command(first().command, {**kwargs, "services": listed})
    text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
    asking = f" --property {first.state_key} "
    if len(kinds) > 1 and asking in text:
        text = text.replace(asking, asking + "".join(
            f"--property {kind.state_key} " for kind in kinds[1:]), 1)
    elif len(kinds) > 1:
        return members, "false", lambda lines: None  # not the command expected: each alone

    def split(lines):
        blocks = _unit_blocks(lines, len(listed))
        if blocks is None:
            return None
        of_unit = dict(zip(listed, blocks))
        return {i: of_unit[unit] for i, unit in zip(members, units)}
    return members, text, split


def _together(parts: list[tuple[int, str, bool]]) -> str:
    """One shell script asking these facts, each answer between two MARK lines (the
    second with its exit status). The ONCE ones are written to files of a private
    directory and run by a pool of SIDE_BY_SIDE (`xargs -P`: the next starts as soon
    as one ends), beside the others; read once all answered."""
    now, scripts, pooled, later = [], [], [], []
    for index, text, once in parts:
        if once and not any(line.strip() == END for line in text.splitlines()):
            scripts.append(f"cat > \"$d/{index}.sh\" <<'{END}'\n{text}\n{END}")
            pooled.append(str(index))
            later.append(f"echo '{MARK} {index}'; cat \"$d/{index}\"; "
                         f"echo '{MARK} {index}' $(cat \"$d/{index}.rc\")")
        else:
            now.append(f"echo '{MARK} {index}'; ( {text} ) </dev/null; "
                       f"echo '{MARK} {index}' $?")
    if pooled:  # started first, read once the others answered
        pool = (f"printf '%s\\n' {' '.join(pooled)} | xargs -P {SIDE_BY_SIDE} -I % "
                "sh -c 'sh \"$0/%.sh\" </dev/null >\"$0/%\"; echo $? >\"$0/%.rc\"' \"$d\" &")
        now = ["d=$(mktemp -d)", *scripts, pool, *now, "wait", *later, 'rm -rf "$d"']
    return "\n".join(now)


END = "PWLB_FACT_END"  # (a ONCE fact's script ends at this line)


def _answers(stdout_lines, facts: dict, keys: list, groups: dict | None = None) -> dict:
    found: dict = {}
    lines: list[str] = []
    for line in stdout_lines:
        if not line.startswith(MARK):
            lines.append(line)
            continue
        fields = line[len(MARK):].split()
        if len(fields) == 1:
            lines = []
        elif len(fields) == 2 and fields[1] == "0" and int(fields[0]) in facts \
                and lines != [MISSING]:
            index = int(fields[0])
            parts = {index: lines}
            if groups and index in groups:  # one command for them all: each its part
                try:
                    parts = groups[index][1](lines) or {}
                except Exception:  # noqa: BLE001 - not what was expected: each alone
                    parts = {}
            for member, part in parts.items():
                fact = facts[member]
                try:
                    found[keys[member]] = fact.process(part) if part else fact.default()
                except Exception:  # noqa: BLE001 - asked alone, pyinfra reports it
                    pass
    return found


def _save_learned() -> None:
    """Keep what each host asked in this run for the next (not in a dry run)."""
    from pyinfra_wordpress_lb.deploys import _run, secrets

    if secrets.dry_run():
        return
    for record in list(_run._RUNS.values()):
        if not record.asked or record.learned_at is None:
            continue
        learned = dict(record.learned or {})
        for name, asked in record.asked.items():
            # A tier this run did not reach (or asked nothing of) keeps what it asked
            # before: a no-op's verify tier does not forget what a changing run asks.
            tiers = {entry["tier"] for entry in asked.values()}
            learned[name] = [e for e in learned.get(name, [])
                             if isinstance(e, dict) and e.get("tier") not in tiers]
            learned[name] += list(asked.values())
        try:
            record.learned_at.write_text(json.dumps(learned, indent=1, sort_keys=True))
        except OSError:
            pass
