"""Sync mesh (group `web`): what WordPress writes at run time (the shared `wp-content`:
uploads, plugins, themes, languages) is the same on every web host, kept so by
syncthing. Core and wp-config.php never travel by the mesh: the deploy puts them on
every host.

Why syncthing (measured, see README "The sync mesh" and `bench/`): each host keeps an
index of every file with a version vector, so a deletion is known as a deletion (a
host that was away never brings a deleted file back), what a host changed while no
peer heard it is sent when it returns, and the same path changed on two hosts ends
with one version everywhere (the newest; `maxConflicts` 0: no conflict copies).

Each web host runs syncthing as the `wordpress` user under systemd, listening on its
private address only; peers are pinned by device ID (the hash of each host's TLS
certificate, derived on the controller from the `mesh_secret` secret and the host's
name), with discovery, relays and NAT traversal off. At boot a web host's backend
answers 503 (the balancers send its requests to the others) until it holds what its
peers hold (`wordpress-lb-mesh catch-up`); a new web host waits for the same before
the deploy goes on, so it has every upload before any balancer sends it a request.
A web host that left the inventory stays a device of its peers until the balancers
no longer send to it (`unshare_departed_hosts`, after them).
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
import hashlib
import hmac
from base64 import b32encode

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from pyinfra import host
from pyinfra.api import HiddenValue, deploy
from pyinfra.facts.files import File
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import apt, files, server, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import backup, secrets, web
from pyinfra_wordpress_lb.deploys._util import TIDY, host_fact, host_facts, renamed
from pyinfra_wordpress_lb.deploys.plan import Node, Site, cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting
from pyinfra_wordpress_lb.facts.syncthing import Devices
from pyinfra_wordpress_lb.operations import syncthing, sysctl

UNIT = "syncthing-wordpress.service"
CATCH_UP_UNIT = "wordpress-lb-mesh-catch-up.service"
WATCH_UNIT = "wordpress-lb-mesh-watch.service"  # scans each change at once
CONFIG = "/etc/wordpress-lb/syncthing.xml"
FOLDER = "wp-content"
FLAG = web.MESH_FLAG  # the backend answers 503 while it exists
TOOL = "/usr/local/sbin/wordpress-lb-mesh"
API_PORT = 8384  # syncthing's local API, on 127.0.0.1 only
PACKAGES = ["syncthing", "inotify-tools", "python3"]
# The lsyncd mesh of earlier versions, retired on the first run of this one.
LEGACY_UNIT = "lsyncd-wordpress.service"
LEGACY_FILES = (f"/etc/systemd/system/{LEGACY_UNIT}", "/etc/lsyncd/wordpress.conf.lua")

SETTINGS = (
    Setting("mesh_root", None,
            "the directory the mesh mirrors; default `<docroot>/shared/wp-content`"),
    Setting("mesh_port", 22000, "TCP port syncthing listens on (private address, web peers only)"),
    Setting("mesh_delay", 1,
            "whole seconds syncthing's own watcher gathers file events before it scans them "
            "(`fsWatcherDelayS`): the fallback of `wordpress-lb-mesh-watch.service`, which "
            "asks for a scan of each change at once; below 1 s syncthing can spin a core "
            "after a directory is deleted (syncthing issue 9135)"),
    Setting("mesh_watch", True,
            "ask syncthing to scan each change at once (`wordpress-lb-mesh-watch.service`: "
            "writes reach the peers in a fraction of a second); false: syncthing's own "
            "watcher only (`mesh_delay`, 1-2 s)"),
    Setting("mesh_rescan", 3600,
            "seconds between full rescans (a safety net: file events trigger the sync)"),
    Setting("mesh_catch_up_timeout", 120,
            "seconds a web host back from an outage waits to hold what its peers hold "
            "before it serves anyway (it answers 503 meanwhile); a new web host waits as long in "
            "the deploy for every upload (raise it for a large tree)"),
    Setting("mesh_inotify_watches", 524288,
            "`fs.inotify.max_user_watches` at least (syncthing and the mesh's watcher each "
            "watch every directory); a host that refuses (a container) is named in the output"),
    Setting("mesh_excludes",
            ("/cache", "/upgrade", "/upgrade-temp-backup", "*.swp", "*~"),
            "paths the mesh never syncs (syncthing ignore patterns, `/` = the mesh's root)"),
)


def mesh_root(node: Node | None = None, site: Site | None = None) -> str:
    """The tree the mesh mirrors on a web host for a site (default the first):
    `mesh_root` for the first site, else the site's wp-content."""
    first = cluster().site
    site = first if site is None else site
    if site.name != first.name:
        return site.content
    node = here() if node is None else node
    if node.settings.mesh_root:
        return str(node.settings.mesh_root).rstrip("/")
    return site.content


def home(site: Site | None = None) -> str:
    """syncthing's home (identity, index database, its copy of the configuration)."""
    return f"{(site or cluster().site).home}/syncthing"


@dataclass(frozen=True)
class Mesh:
    """One site's mesh on a web host: its own syncthing (as the site's user), units,
    configuration, tool, catching-up flag and ports. The one-site names for `main`;
    the others' follow their name, their ports their place among the other sites
    (`mesh_port` + 1, + 2, ...)."""
    site: Site
    slot: int  # 0 for `main`

    @classmethod
    def of(cls, site: Site) -> Mesh:
        return cls(site, cluster().slots.get(site.name, 0))

    @property
    def main(self) -> bool:
        return self.slot == 0

    def _named(self, one: str, stem: str, suffix: str = "") -> str:
        return self.site.variant(one, f"{stem}-{self.site.name}{suffix}")

    @property
    def unit(self) -> str:
        return self._named(UNIT, "syncthing-wordpress", ".service")

    @property
    def catch_up_unit(self) -> str:
        return self._named(CATCH_UP_UNIT, "wordpress-lb-mesh-catch-up", ".service")

    @property
    def watch_unit(self) -> str:
        return self._named(WATCH_UNIT, "wordpress-lb-mesh-watch", ".service")

    @property
    def config(self) -> str:
        return self._named(CONFIG, "/etc/wordpress-lb/syncthing", ".xml")

    @property
    def tool(self) -> str:
        return self._named(TOOL, TOOL)

    @property
    def flag(self) -> str:
        return web.mesh_flag(self.site)

    @property
    def flag_dir(self) -> str:
        return self.flag.rsplit("/", 1)[0]

    @property
    def tmpfiles(self) -> str:
        return self._named("/etc/tmpfiles.d/wordpress-lb-mesh.conf",
                           "/etc/tmpfiles.d/wordpress-lb-mesh", ".conf")

    @property
    def device(self) -> str:
        """What a host's device identity is derived from, with its name."""
        return "" if self.main else f"/{self.site.name}"

    def port(self, node: Node) -> int:
        return int(node.settings.mesh_port) + self.slot

    @property
    def api_port(self) -> int:
        return API_PORT + self.slot


def _hmac(secret: str, purpose: str, name: str) -> bytes:
    return hmac.new(secret.encode(), f"{purpose} {name}".encode(), hashlib.sha256).digest()


def _derived(purpose: str, name: str) -> bytes:
    return _hmac(secrets.raw("mesh_secret"), purpose, name)


def identity(name: str) -> tuple[str, str]:
    return _identity(secrets.raw("mesh_secret"), name)


@functools.lru_cache(maxsize=None)
def _identity(secret: str, name: str) -> tuple[str, str]:
    """(private key PEM, certificate PEM) of a web host's syncthing device, derived from
    the cluster's `mesh_secret` and the host's name: the same on every run (Ed25519
    signatures are deterministic), nothing to keep per host."""
    seed = _hmac(secret, "wordpress-lb syncthing device", name)
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncthing")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(int.from_bytes(seed[:8], "big") >> 1)
            .not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2999, 12, 31))
            .sign(key, None))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
            cert.public_bytes(serialization.Encoding.PEM).decode())


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _luhn32(chunk: str) -> str:
    factor, total = 1, 0
    for char in chunk:
        addend = factor * _B32.index(char)
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return _B32[(32 - total % 32) % 32]


@functools.lru_cache(maxsize=None)
def device_id(cert_pem: str) -> str:
    """syncthing's device ID of a certificate: base32 of its SHA-256, with a check
    character after every 13, in groups of 7."""
    der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(
        serialization.Encoding.DER)
    plain = b32encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    checked = "".join(plain[i:i + 13] + _luhn32(plain[i:i + 13]) for i in range(0, 52, 13))
    return "-".join(checked[i:i + 7] for i in range(0, 56, 7))


def _device(name: str, address: str, mesh: Mesh | None = None) -> dict:
    suffix = mesh.device if mesh else ""
    return {"name": name, "address": address, "id": device_id(identity(name + suffix)[1])}


def departing(mesh: Mesh | None = None) -> dict[str, str]:
    """Devices this host's mesh still has that are no web host any more: {name: address}."""
    current = set(cluster().web)
    config = mesh.config if mesh else CONFIG
    return {name: address for name, address in host_fact(host, Devices, path=config).items()
            if name not in current}


def _ignore_patterns() -> list[str]:
    # (lsyncd's `/cache/` style of earlier versions: syncthing wants no trailing slash.)
    return [str(p).rstrip("/") or "/" for p in here().settings.mesh_excludes]


def _config(devices: list[dict], mesh: Mesh) -> HiddenValue:
    major = host_fact(host, LinuxDistribution).get("major") or 13
    version = 36 if major < 13 else 37  # (syncthing 1.19 on Debian 12, 1.29 on 13)
    node = here()
    s = node.settings
    text = templates.render(
        "syncthing/config.xml.j2", version=version, folder=FOLDER,
        root=mesh_root(site=mesh.site),
        rescan=int(s.mesh_rescan), delay=int(s.mesh_delay), devices=devices,
        port=mesh.port(node), api_port=mesh.api_port, address=node.address,
        api_key=_derived("wordpress-lb syncthing api", host.name + mesh.device).hex()[:32])
    return HiddenValue(text)


@deploy("Sync mesh")
def sync() -> None:
    plan = cluster()
    s = here().settings
    apt.packages(name="Install syncthing", packages=PACKAGES, no_recommends=True)
    # One inotify watch per directory: too few and changes wait for the next rescan.
    sysctl.at_least(name="Let the mesh watch every directory",
                    key="fs.inotify.max_user_watches", value=int(s.mesh_inotify_watches))
    files.directory(name="Create the mesh's configuration directory", path="/etc/wordpress-lb",
                    mode="755")  # (every site's)
    meshes = [Mesh.of(site) for site in plan.sites]
    host_facts(host, Devices, [{"path": mesh.config} for mesh in meshes])  # in one round trip
    for mesh in meshes:  # each site its own mesh, as its own user
        _mesh(mesh)


def _mesh(mesh: Mesh) -> None:
    plan = cluster()
    s = here().settings
    site, tag = mesh.site, mesh.site.tag
    user = site.user
    root = mesh_root(site=site)
    peers = [n for n in plan.group("web") if n.name != host.name]
    leaving = departing(mesh)
    patterns = _ignore_patterns()
    files.directory(name="Create the mesh's root" + tag, path=root, user=user, group=user,
                    mode="755")
    # syncthing refuses to sync a folder without its marker (an unmounted disk is never
    # taken for "everything deleted").
    files.directory(name="Mark the mesh's root for syncthing" + tag, path=f"{root}/.stfolder",
                    user=user, group=user, mode="755")
    files.template(name="Write what the mesh never syncs" + tag,
                   src=templates.path("syncthing/stignore.j2"),
                   dest=f"{root}/.stignore",
                   create_remote_dir=False, user=user, group=user, mode="644",
                   patterns=patterns, jinja_env_kwargs=TIDY)
    files.directory(name="Create the mesh's home" + tag, path=home(site), user=user,
                    group=user, mode="700")
    key, cert = identity(host.name + mesh.device)
    ident = syncthing.identity(name="Install this host's mesh identity" + tag,
                               home=home(site), key=HiddenValue(key), cert=cert, user=user)
    devices = [_device(n.name, n.address, mesh) for n in plan.group("web")] + \
        [_device(name, address, mesh) for name, address in sorted(leaving.items())]
    config = syncthing.config(name="Write the mesh configuration" + tag, path=mesh.config,
                              content=_config(devices, mesh), group=user)
    tool = files.template(name="Install the mesh's status, catch-up and watch tool" + tag,
                          src=templates.path("sbin/wordpress-lb-mesh.j2"), dest=mesh.tool,
                          create_remote_dir=False, mode="755",
                          config=mesh.config, folder=FOLDER, flag=mesh.flag, root=root,
                          excludes=patterns)
    unit = files.template(name="Install the mesh unit" + tag,
                          src=templates.path("systemd/syncthing-wordpress.service.j2"),
                          dest=f"/etc/systemd/system/{mesh.unit}",
                          create_remote_dir=False, mode="644", run_as=user,
                          config=mesh.config, home=home(site))
    catch_up = files.template(
        name="Install the unit that holds the backend until it caught up" + tag,
        src=templates.path("systemd/wordpress-lb-mesh-catch-up.service.j2"),
        dest=f"/etc/systemd/system/{mesh.catch_up_unit}",
        create_remote_dir=False, mode="644",
        run_as=user, flag=mesh.flag, mesh_unit=mesh.unit, tool=mesh.tool,
        timeout=int(s.mesh_catch_up_timeout))
    watch = files.template(name="Install the unit that sends each change at once" + tag,
                           src=templates.path("systemd/wordpress-lb-mesh-watch.service.j2"),
                           dest=f"/etc/systemd/system/{mesh.watch_unit}",
                           create_remote_dir=False, mode="644",
                           run_as=user, mesh_unit=mesh.unit, tool=mesh.tool)
    files.template(name="Raise the catching-up flag at every boot" + tag,
                   src=templates.path("tmpfiles/wordpress-lb-mesh.conf.j2"),
                   dest=mesh.tmpfiles,
                   create_remote_dir=False, mode="644",
                   run_as=user, flag=mesh.flag, flag_dir=mesh.flag_dir)
    # The same directory now (at boot, tmpfiles makes it): its user removes the flag. (A
    # host booted with the shared directory of earlier versions had it owned by another
    # site's user, and this site's catch-up failed.)
    files.directory(name="Give the catching-up flag's directory to the site's user" + tag,
                    path=mesh.flag_dir, user=user, group=user, mode="755")
    if mesh.main:
        _retire_lsyncd()
    systemd.daemon_reload(name="Reload systemd for the mesh units" + tag,
                          _if=lambda: unit.did_change() or catch_up.did_change()
                          or watch.did_change())
    restart = lambda: bool(peers) and (  # noqa: E731
        config.did_change() or unit.did_change() or ident.did_change())
    systemd.service(name="Restart the mesh for its new configuration" + tag,
                    service=mesh.unit, restarted=True, _if=restart)
    running = systemd.service(name=("Keep the mesh running and enabled" if peers
                                    else "Stop the mesh: there is no other web host") + tag,
                              service=mesh.unit, running=bool(peers), enabled=bool(peers))
    watching = bool(peers) and s.mesh_watch is True
    systemd.service(name="Restart the watcher for its new tool or unit" + tag,
                    service=mesh.watch_unit, restarted=True,
                    _if=lambda: watching and (tool.did_change() or watch.did_change()))
    systemd.service(name=("Keep the watcher running and enabled" if watching
                          else "Stop the watcher: there is no other web host" if not peers
                          else "Stop the watcher (mesh_watch is off)") + tag,
                    service=mesh.watch_unit, running=watching, enabled=watching)
    # Blocks until this host holds what its peers hold (a new host: every upload); again
    # whenever this run (re)started the mesh (a host re-added with an empty tree).
    first = systemd.service(name=("Wait until this host holds what its peers hold" if peers
                                  else "No catching up without peers") + tag,
                            service=mesh.catch_up_unit, running=bool(peers),
                            enabled=bool(peers))
    systemd.service(
        name="Wait again until this host holds what its peers hold (the mesh restarted)" + tag,
        service=mesh.catch_up_unit, restarted=True,
        _if=lambda: bool(peers) and not first.did_change()
        and (restart() or running.did_change()))
    backup_access(user, root, site)


def _retire_lsyncd() -> None:
    """The lsyncd mesh of earlier versions (its unit, configuration, status and key) goes."""
    if not host_fact(host, File, path=LEGACY_FILES[0]):
        return
    home_dir = cluster().site.home
    server.shell(
        name="Retire the lsyncd mesh of earlier versions",
        commands=[f"systemctl disable --now {LEGACY_UNIT} || true",
                  "rm -f " + " ".join((*LEGACY_FILES, f"{home_dir}/lsyncd.status",
                                       f"{home_dir}/.ssh/mesh_ed25519")),
                  "systemctl daemon-reload"],
    )


def backup_access(user: str, root: str, site: Site | None = None):
    """The database host's backups read the shared tree over SSH (a key of their own,
    read-only, from that host only)."""
    site = site or cluster().site
    ssh_dir = f"{site.home}/.ssh"
    files.directory(name="Create the SSH directory for the backups' access" + site.tag,
                    path=ssh_dir, user=user, group=user, mode="700")
    return files.template(
        name="Let the backups read the shared tree, from the database host only" + site.tag,
        src=templates.path("ssh/authorized_keys.j2"),
        dest=f"{ssh_dir}/authorized_keys", create_remote_dir=False,
        user=user, group=user, mode="600",
        root=root, reader=backup.reader_key(), jinja_env_kwargs=TIDY,
    )


@deploy("Sync mesh")
def unshare_departed_hosts() -> None:
    """After the balancers stopped sending requests to a web host that left the
    inventory: the mesh shares with it no more."""
    plan = cluster()
    if not [n for n in plan.web if n != host.name]:
        return
    for site in plan.sites:
        mesh = Mesh.of(site)
        if not departing(mesh):
            continue
        devices = [_device(n.name, n.address, mesh) for n in plan.group("web")]
        config = syncthing.config(name="Share the mesh with the current web hosts only" + site.tag,
                                  path=mesh.config, content=_config(devices, mesh),
                                  group=site.user)
        systemd.service(name="Restart the mesh without the departed hosts" + site.tag,
                        service=mesh.unit, restarted=True, _if=config.did_change)


prune_departed = renamed(unshare_departed_hosts, "prune_departed")  # the name before 0.2
