"""The mesh's identities are derived on the controller (deploys/sync.py): the same on every
run, one per host, and named the way syncthing names them."""

import time

from cryptography import x509

from pyinfra_wordpress_lb.deploys.sync import _identity, device_id

# A certificate whose device ID syncthing 1.29 itself printed (`syncthing --device-id`).
CERT = """-----BEGIN CERTIFICATE-----
MIHdMIGQoAMCAQICCHSIL/CWzZ0mMAUGAytlcDAUMRIwEAYDVQQDDAlzeW5jdGhp
bmcwIBcNMjAwMTAxMDAwMDAwWhgPMjk5OTEyMzEwMDAwMDBaMBQxEjAQBgNVBAMM
CXN5bmN0aGluZzAqMAUGAytlcAMhANBbFzgKRt/x2bxstksGB5b3bj1TyThNP2+H
X6ulBTxCMAUGAytlcANBAHh1aWXPpNKWlIFxW5HZ8OSWQQi4kbNQVThVc4xHooHA
hD9d2+p6QBbnPEB9HmzcWW3qyofbEwnTOedExWqC7QI=
-----END CERTIFICATE-----
"""


def test_device_ids_are_syncthings():
    assert device_id(CERT) == "DYCQ5NJ-PNO4BBD-OCAYIRV-LHH64QL-PWAM7L3-MSEGAPV-NC5SUG7-GEGEPAQ"


def test_each_host_has_its_own_identity_the_same_on_every_run():
    web1 = _identity("s3cret", "web1")
    assert web1 == _identity.__wrapped__("s3cret", "web1")  # not only the cache's answer
    assert device_id(web1[1]) != device_id(_identity("s3cret", "web2")[1])
    assert device_id(web1[1]) != device_id(_identity("other", "web1")[1])
    assert "PRIVATE KEY" in web1[0]
    cert = x509.load_pem_x509_certificate(web1[1].encode())
    assert cert.not_valid_after_utc.year == 2999


MONOTONIC = time.monotonic  # (the tool's clock is patched below: the same module)


def _tool(tmp_path, monkeypatch, answers, answering=True):
    """The rendered `wordpress-lb-mesh` tool, its API answered by `answers(path, query)`."""
    import importlib.util

    from pyinfra_wordpress_lb import templates

    flag = tmp_path / "catching-up"
    flag.write_text("")
    config = tmp_path / "syncthing.xml"
    config.write_text('<gui enabled="true"><address>127.0.0.1:8384</address>'
                      '<apikey>k</apikey></gui><device id="ME" name="web1"></device>'
                      '<device id="PEER" name="web2"></device>')
    script = tmp_path / "wordpress-lb-mesh.py"
    script.write_text(templates.render("sbin/wordpress-lb-mesh.j2", config=config,
                                       folder="wp-content", flag=flag, root="/srv/wp-content",
                                       excludes=["/cache", "/upgrade-temp-backup", "*.swp"]))
    spec = importlib.util.spec_from_file_location("mesh_tool", script)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "_get", lambda base, key, path, **query: answers(path, query))
    monkeypatch.setattr(tool.time, "sleep", lambda s: None)
    monkeypatch.setattr(tool, "_any_peer_answers", lambda: answering)
    clock = iter(range(0, 100000))
    monkeypatch.setattr(tool.time, "monotonic", lambda: next(clock) * 0.5)
    return tool, flag


def test_catching_up_waits_for_a_peer_and_for_nothing_left_to_pull(tmp_path, monkeypatch):
    state = {"polls": 0}

    def answers(path, query):
        if path == "/rest/system/status":
            return {"myID": "ME"}
        if path == "/rest/system/connections":
            state["polls"] += 1
            return {"connections": {"PEER": {"connected": state["polls"] > 4}}}
        if path == "/rest/db/status":  # pulling at first, then done
            return {"state": "idle" if state["polls"] > 12 else "syncing",
                    "needTotalItems": 0 if state["polls"] > 12 else 3}
        raise AssertionError(path)

    tool, flag = _tool(tmp_path, monkeypatch, answers)
    assert tool.catch_up(120) == 0
    assert state["polls"] >= 15 and not flag.exists()


def test_with_no_peer_answering_it_serves_alone_soon(tmp_path, monkeypatch):
    def answers(path, query):
        return {"myID": "ME"} if path == "/rest/system/status" else {"connections": {}}

    tool, flag = _tool(tmp_path, monkeypatch, answers, answering=False)
    assert tool.catch_up(120) == 0
    assert not flag.exists()


def test_a_peer_that_answers_but_sends_nothing_fails_it_after_the_timeout(tmp_path, monkeypatch):
    def answers(path, query):
        return {"myID": "ME"} if path == "/rest/system/status" else {"connections": {}}

    tool, flag = _tool(tmp_path, monkeypatch, answers)
    assert tool.catch_up(10) == 1
    assert not flag.exists()


def test_the_peers_mesh_ports_come_from_the_configuration(tmp_path, monkeypatch):
    tool, _ = _tool(tmp_path, monkeypatch, lambda path, query: {})
    (tmp_path / "syncthing.xml").write_text(
        "<device id=\"A\" name=\"web1\"><address>tcp://10.0.0.11:22000</address></device>"
        "<device id=\"B\" name=\"web2\"><address>tcp://10.0.0.12:22000</address></device>"
        "<options><listenAddress>tcp://10.0.0.11:22000</listenAddress></options>")
    assert tool._peer_ports() == [("10.0.0.12", 22000)]


def test_status_names_what_a_peer_away_lacks(tmp_path, monkeypatch):
    def answers(path, query):
        return {
            "/rest/system/status": {"myID": "ME"},
            "/rest/db/status": {"state": "idle", "needTotalItems": 0, "errors": 0, "pullErrors": 0},
            "/rest/system/connections": {"connections": {"PEER": {"connected": False}}},
            "/rest/db/completion": {"needItems": 1, "needDeletes": 1},
            "/rest/db/remoteneed": {"files": [{"name": "uploads/a.jpg"}, {"name": "old"}]},
        }[path]

    tool, flag = _tool(tmp_path, monkeypatch, answers)
    assert tool.status() == {"state": "idle", "needs": 0, "errors": 0, "catching_up": True,
                             "peers": {"web2": {"connected": False, "lacks": 2,
                                                "lacking": ["uploads/a.jpg", "old"]}}}


def test_the_watcher_names_written_paths_and_skips_what_syncthing_ignores(tmp_path, monkeypatch):
    tool, _ = _tool(tmp_path, monkeypatch, lambda path, query: {})
    event = tool._event
    assert event("CLOSE_WRITE,CLOSE /srv/wp-content/uploads/2026/a b.jpg\n") == "uploads/2026/a b.jpg"
    assert event("MOVED_TO /srv/wp-content/plugins/x/y.php\n") == "plugins/x/y.php"
    assert event("DELETE,ISDIR /srv/wp-content/plugins/old\n") == "plugins/old"
    assert event("CREATE,ISDIR /srv/wp-content/uploads/2027\n") == "uploads/2027"
    assert event("CREATE /srv/wp-content/uploads/c.jpg\n") is None  # its CLOSE_WRITE follows
    for ignored in ("cache/page/index.html", "upgrade-temp-backup/plugins/x.php",
                    "uploads/.a.jpg.swp", "uploads/.syncthing.a.jpg.tmp", ".stfolder",
                    ".stignore"):
        assert event(f"CLOSE_WRITE,CLOSE /srv/wp-content/{ignored}\n") is None, ignored
    assert event("CLOSE_WRITE,CLOSE /srv/wp-content/uploads/cache/x.jpg\n") == "uploads/cache/x.jpg"
    assert event("CLOSE_WRITE,CLOSE /elsewhere/x\n") is None
    assert tool._pulled("MOVED_FROM /srv/wp-content/uploads/.syncthing.a b.jpg.tmp\n") == "uploads/a b.jpg"
    assert tool._pulled("MOVED_FROM /srv/wp-content/uploads/a.jpg\n") is None
    assert tool._pulled("DELETE /srv/wp-content/uploads/.syncthing.a.jpg.tmp\n") is None
    assert tool._unwatched() == [
        "--exclude", r"^/srv/wp-content/(cache|upgrade-temp-backup)(/|$)"]


def test_the_watcher_batches_paths_into_few_scans(tmp_path, monkeypatch):
    tool, _ = _tool(tmp_path, monkeypatch, lambda path, query: {})
    assert tool._batch({"uploads/a", "uploads", "plugins/x/y", "plugins/x"}) == [
        "plugins/x", "uploads"]
    many = {f"uploads/2026/{i}.jpg" for i in range(150)} | {"plugins/p.php"}
    assert tool._batch(many) == ["plugins", "uploads/2026"]  # parents once over MOST
    assert tool._batch({f"top{i}" for i in range(150)}) == []  # the whole folder


def test_the_watcher_asks_syncthing_to_scan_what_changed(tmp_path, monkeypatch):
    tool, _ = _tool(tmp_path, monkeypatch, lambda path, query: {})
    monkeypatch.setattr(tool.time, "monotonic", MONOTONIC)
    lines = ["CLOSE_WRITE,CLOSE /srv/wp-content/uploads/a.jpg\n",
             "CLOSE_WRITE,CLOSE /srv/wp-content/cache/x.html\n",
             "DELETE,ISDIR /srv/wp-content/plugins/old\n",
             # syncthing itself wrote b.jpg (pulled from a peer): nothing to scan
             "CLOSE_WRITE,CLOSE /srv/wp-content/uploads/.syncthing.b.jpg.tmp\n",
             "MOVED_FROM /srv/wp-content/uploads/.syncthing.b.jpg.tmp\n",
             "MOVED_TO /srv/wp-content/uploads/b.jpg\n"]

    class Watcher:
        stdout = iter(lines)
        args: list = []

        def __init__(self, args, **kwargs):
            Watcher.args = args

        def wait(self):
            return 0

    scans = []
    failures = iter([OSError("connection refused")])

    def scan(base, key, paths):
        scans.append((base, key, paths))
        error = next(failures, None)
        if error:
            raise error

    monkeypatch.setattr(tool.subprocess, "Popen", Watcher)
    monkeypatch.setattr(tool, "_scan", scan)
    assert tool.watch() == 1  # inotifywait ended: systemd starts it again
    assert Watcher.args[:2] == ["inotifywait", "-m"] and Watcher.args[-1] == "/srv/wp-content"
    assert scans == [("http://127.0.0.1:8384", "k", ["plugins/old", "uploads/a.jpg"])]
