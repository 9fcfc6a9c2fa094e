"""Throwaway Debian hosts in containers: the integration test bed and `make demo`.

No image registry is reachable here, so base images are built with debootstrap and
`docker import`, cached by tag (the tag carries a hash of the recipe, so a changed
recipe builds a new image and an unchanged one is never rebuilt).

Each container boots systemd as PID 1, runs sshd with host keys made at first boot (so
every host has its own keys and machine id), and has a non-root `deploy` user with
passwordless sudo reachable with a key made per bed. The bed writes a `hosts.toml` in
the format `inventory.py` reads, so pyinfra reaches the hosts over SSH exactly as an
operator would.

Command line (from the repository root):
    python -m tests.testbed up split [--release 13] [--name NAME] [--port 8080]
    python -m tests.testbed down [NAME ...]      # no NAME: every bed
    python -m tests.testbed build [--release 13]
    python -m tests.testbed status
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import NotFound

LABEL = "io.github.pyinfra-wordpress-lb.testbed"
ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("PWLB_TESTBED_DIR", ROOT / ".testbed"))

RELEASES = {"13": "trixie", "12": "bookworm"}
IMAGE_REPO = "pwlb-debian"
DEPLOY_USER = "deploy"
DEPLOY_UID = 1000

# Hosts of each topology, with their inventory groups. The first `lb` host publishes
# port 80 on 127.0.0.1.
# A host in group "acme" is not part of the inventory: it runs an ACME test server.
TOPOLOGIES: dict[str, list[tuple[str, list[str]]]] = {
    # Two balancers sharing an address, HTTPS with the cluster's own CA (`make demo`).
    "split": [("lb1", ["lb"]), ("lb2", ["lb"]), ("web1", ["web"]), ("web2", ["web"]),
              ("db1", ["db"])],
    "seed": [("hosta", ["lb", "web", "db"]), ("hostb", ["web"])],
    # For destructive mesh tests: a third web host to add and remove.
    "mesh": [("lb1", ["lb"]), ("web1", ["web"]), ("web2", ["web"]), ("web3", ["web"]),
             ("db1", ["db"])],
    # For examples/: bare hosts that the example projects deploy to.
    "examples": [("lb1", ["lb"]), ("web1", ["web"]), ("web2", ["web"])],
    # The edge under fire: ACME certificates from a pebble server on the bed, balancers
    # killed, stopped and cut off from each other.
    "edge": [("lb1", ["lb"]), ("lb2", ["lb"]), ("web1", ["web"]), ("db1", ["db"]),
             ("acme", ["acme"])],
}
# The database as a Galera cluster of three (its own bed: nodes are killed).
TOPOLOGIES["galera"] = [("lb1", ["lb"]), ("web1", ["web"]), ("web2", ["web"]),
                        ("db1", ["db"]), ("db2", ["db"]), ("db3", ["db"])]
# A whole HA site on three machines: each is balancer, web host and database node.
TOPOLOGIES["trio"] = [(f"host{i}", ["lb", "web", "db"]) for i in (1, 2, 3)]
TOPOLOGIES["scale"] = ([("lb1", ["lb"])] + [(f"web{i}", ["web"]) for i in range(1, 7)]
                       + [("db1", ["db"])])  # `make bench`'s study of the mesh's size
# Topologies whose balancers share an address (the bed's .100).
SHARED_ADDRESS = {"split", "edge", "trio"}
# The site's name on the edge bed (pebble resolves it to the shared address).
EDGE_SITE = "www.pwlb.test"
EDGE_ALIAS = "pwlb.test"  # the edge bed's site also answers it (a redirect to EDGE_SITE)

PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "ca-certificates",
    "iproute2", "procps",
]

# Host keys are made at first boot, so no two containers share them.
HOSTKEYS_UNIT = """\
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""

APT_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: {codename} {codename}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: {codename}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

# Units that only make noise (or fail) inside a container.
MASKED_UNITS = [
    "getty@tty1.service", "console-getty.service", "systemd-remount-fs.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "systemd-firstboot.service", "systemd-udevd.service", "systemd-modules-load.service",
]

RUN_OPTIONS = dict(
    cap_add=["SYS_ADMIN", "NET_ADMIN", "NET_RAW"],
    security_opt=["seccomp=unconfined"],
    volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
    tmpfs={"/run": "", "/run/lock": ""},
    stop_signal="SIGRTMIN+3",  # systemd shuts down cleanly on it
    detach=True,
)


class TestbedError(RuntimeError):
    pass


def release_codename(release: str) -> str:
    release = str(release)
    if release in RELEASES:
        return RELEASES[release]
    if release in RELEASES.values():
        return release
    raise TestbedError(f"unknown Debian release {release!r}: use one of {sorted(RELEASES)}")


def _recipe_hash(codename: str) -> str:
    recipe = json.dumps(
        [codename, PACKAGES, HOSTKEYS_UNIT, APT_SOURCES, MASKED_UNITS, DEPLOY_USER, DEPLOY_UID],
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:10]


def image_tag(release: str) -> str:
    codename = release_codename(release)
    return f"{IMAGE_REPO}:{codename}-{_recipe_hash(codename)}"


def client() -> docker.DockerClient:
    try:
        c = docker.from_env()
        c.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine
        raise TestbedError(
            f"no Docker engine answers ({exc}). Install Debian's docker.io and start dockerd "
            "(make test / make demo do this when run as root)."
        ) from exc
    return c


def _sh(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, **kw)


def build_image(release: str = "13", force: bool = False) -> str:
    """Build the base image for a release unless an image with its tag exists."""
    tag = image_tag(release)
    c = client()
    if not force:
        try:
            c.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
    if os.geteuid() != 0:
        raise TestbedError(f"building {tag} needs root (debootstrap)")
    if not shutil.which("debootstrap"):
        raise TestbedError("debootstrap is not installed: apt-get install debootstrap")
    codename = release_codename(release)
    print(f"testbed: building {tag} with debootstrap (about a minute)", flush=True)
    work = Path(tempfile.mkdtemp(prefix=f"pwlb-{codename}-"))
    rootfs = work / "rootfs"
    try:
        _sh([
            "debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
            "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg",
            codename, str(rootfs), "http://deb.debian.org/debian",
        ], stdout=subprocess.DEVNULL)
        _customise_rootfs(rootfs, codename)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        _sh([
            "docker", "import",
            "-c", 'CMD ["/sbin/init"]',
            "-c", "ENV container=docker",
            "-c", f"LABEL {LABEL}=image",
            "-", tag,
        ], stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            raise TestbedError("tar of the rootfs failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tag


def _customise_rootfs(rootfs: Path, codename: str) -> None:
    def chroot(*cmd: str) -> None:
        _sh(["chroot", str(rootfs), *cmd], stdout=subprocess.DEVNULL)

    # Identity must differ per container: drop baked host keys and machine id.
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)

    unit = rootfs / "etc/systemd/system/ssh-hostkeys.service"
    unit.write_text(HOSTKEYS_UNIT)
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "ssh-hostkeys.service").unlink(missing_ok=True)
    (wants / "ssh-hostkeys.service").symlink_to("/etc/systemd/system/ssh-hostkeys.service")
    for name in MASKED_UNITS:
        target = rootfs / "etc/systemd/system" / name
        target.unlink(missing_ok=True)
        target.symlink_to("/dev/null")

    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
        APT_SOURCES.format(codename=codename))

    chroot("useradd", "--uid", str(DEPLOY_UID), "--create-home", "--shell", "/bin/bash",
           DEPLOY_USER)
    ssh_dir = rootfs / "home" / DEPLOY_USER / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    os.chown(ssh_dir, DEPLOY_UID, DEPLOY_UID)
    sudoers = rootfs / "etc/sudoers.d" / DEPLOY_USER
    sudoers.write_text(f"{DEPLOY_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    chroot("apt-get", "clean")
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)


CACHE_DIR = STATE_DIR / "cache"

# wordpress.org is out of reach here: the bed's release archive is built offline from
# Debian's `wordpress` package and its default theme, symlinks dereferenced, Debian's
# wp-config.php and .htaccess left out, laid out like an upstream archive (wordpress/).
# Each release's default theme is a package of its own.
DEFAULT_THEMES = {"trixie": "wordpress-theme-twentytwentyfive",
                  "bookworm": "wordpress-theme-twentytwentythree"}
ARCHIVE_SCRIPT = """\
set -e
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
    wordpress {theme} >/dev/null
version=$(dpkg-query -W -f='${{Version}}' wordpress | sed 's/+.*//')
tar -C /usr/share -chzf /out/archive.tar.gz --owner=0 --group=0 \\
    --exclude=wordpress/wp-config.php --exclude=wordpress/.htaccess wordpress
echo "$version" > /out/version
"""


@dataclass
class Archive:
    path: Path
    version: str
    sha256: str

    @property
    def checksum(self) -> str:
        return f"sha256:{self.sha256}"


def wordpress_archive(release: str = "13") -> Archive:
    """A WordPress release archive built offline from Debian's package (cached)."""
    codename = release_codename(release)
    out = CACHE_DIR / f"wordpress-debian-{codename}"
    archive, version_file = out / "archive.tar.gz", out / "version"
    if not (archive.exists() and version_file.exists()):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        print(f"testbed: building a WordPress archive from Debian {codename}'s package",
              flush=True)
        client().containers.run(
            build_image(release),
            ["sh", "-c", ARCHIVE_SCRIPT.format(theme=DEFAULT_THEMES[codename])], remove=True,
            labels=_labels("archive-builder"), volumes={str(out): {"bind": "/out", "mode": "rw"}},
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    return Archive(archive, version_file.read_text().strip(), digest)


@dataclass
class Host:
    name: str
    groups: list[str]
    address: str
    container: str


@dataclass
class Bed:
    name: str
    topology: str
    release: str
    subnet: str
    port: int
    hosts: list[Host] = field(default_factory=list)
    vip: str | None = None

    @property
    def dir(self) -> Path:
        return STATE_DIR / self.name

    @property
    def gateway(self) -> str:
        """This machine's address on the bed's network (where the deploy connects from)."""
        return f"{self.subnet.rsplit('.', 1)[0]}.1"

    @property
    def https_port(self) -> int:
        """Where the first balancer's 443 is published on 127.0.0.1 (8080 -> 8443)."""
        return self.port - 80 + 443

    @property
    def site_url(self) -> str:
        """The site's URL as this machine reaches it: https on the shared address (which
        answers from here directly), else plain HTTP on the published port."""
        if self.topology == "edge":
            return f"https://{EDGE_SITE}"
        if self.vip:
            return f"https://{self.vip}"
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the site's certificate (the self-signed mode writes it
        beside the hosts file; on the edge bed it is pebble's issuing root)."""
        if self.topology == "edge":
            return self.dir / "pebble-roots.pem"
        return self.dir / "hosts.ca.crt"

    @property
    def inventory_hosts(self) -> list[Host]:
        return [h for h in self.hosts if "acme" not in h.groups]

    @property
    def hosts_file(self) -> Path:
        return self.dir / "hosts.toml"

    @property
    def key_file(self) -> Path:
        return self.dir / "id_ed25519"

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def group(self, group: str) -> list[Host]:
        return [h for h in self.hosts if group in h.groups]

    def exec(self, host: str, command: str, check: bool = True,
             user: str = "root") -> tuple[int, str]:
        """Run a shell command inside a host's container (as root by default)."""
        container = client().containers.get(self.host(host).container)
        result = container.exec_run(["sh", "-c", command], user=user)
        output = result.output.decode(errors="replace")
        if check and result.exit_code != 0:
            raise TestbedError(f"{host}: `{command}` exited {result.exit_code}: {output}")
        return result.exit_code, output

    def container(self, host: str):
        return client().containers.get(self.host(host).container)

    def wait_booted(self, host: str) -> None:
        _wait_booted(self.container(host))

    def to_json(self) -> dict:
        return {
            "name": self.name, "topology": self.topology, "release": self.release,
            "subnet": self.subnet, "port": self.port, "vip": self.vip,
            "hosts": [h.__dict__ for h in self.hosts],
        }

    @classmethod
    def load(cls, name: str) -> "Bed":
        data = json.loads((STATE_DIR / name / "bed.json").read_text())
        hosts = [Host(**h) for h in data.pop("hosts")]
        return cls(hosts=hosts, **data)


def _subnet(c: docker.DockerClient, name: str) -> str:
    """A fixed subnet per bed name (away from docker's default 172.17-172.28 pools),
    moved to the next free one if another network holds it."""
    taken = {
        pool.get("Subnet")
        for network in c.networks.list()
        for pool in (network.attrs.get("IPAM") or {}).get("Config") or []
    }
    start = zlib.crc32(name.encode()) % 250
    for offset in range(250):
        subnet = f"172.30.{(start + offset) % 250 + 1}.0/24"
        if subnet not in taken:
            return subnet
    raise TestbedError("no free 172.30.x.0/24 subnet for a bed")


def _labels(bed: str) -> dict[str, str]:
    return {LABEL: "1", f"{LABEL}.bed": bed}


def down(name: str | None = None) -> None:
    """Remove every container and network of one bed (or of every bed) by label."""
    c = client()
    selector = f"{LABEL}.bed={name}" if name else f"{LABEL}.bed"
    for container in c.containers.list(all=True, filters={"label": selector}):
        container.remove(force=True, v=True)
    for network in c.networks.list(filters={"label": selector}):
        network.remove()
    if name:
        shutil.rmtree(STATE_DIR / name, ignore_errors=True)
    elif STATE_DIR.exists():
        for bed_dir in STATE_DIR.iterdir():
            if (bed_dir / "bed.json").exists():
                shutil.rmtree(bed_dir, ignore_errors=True)


def _make_key(path: Path) -> str:
    path.unlink(missing_ok=True)
    _sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pwlb-testbed", "-f", str(path)])
    return path.with_suffix(".pub").read_text()


def _put_file(container, path: str, content: str, mode: int, uid: int) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(os.path.basename(path))
        data = content.encode()
        info.size, info.mode, info.uid, info.gid = len(data), mode, uid, uid
        tar.addfile(info, io.BytesIO(data))
    container.put_archive(os.path.dirname(path), buf.getvalue())


def _wait_booted(container, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        container.reload()
        if container.status != "running":
            raise TestbedError(f"{container.name} stopped: {container.logs()[-2000:]!r}")
        result = container.exec_run(["systemctl", "is-system-running"])
        state = result.output.decode().strip()
        if state in ("running", "degraded"):
            ssh = container.exec_run(["systemctl", "is-active", "ssh.service"])
            if ssh.output.decode().strip() == "active":
                return
        time.sleep(1)
    raise TestbedError(f"{container.name}: systemd not up after {timeout}s (state {state!r})")


def _running(name: str, topology: str, release: str, port: int) -> Bed | None:
    """The bed of this name if it exists as asked and all its containers run."""
    try:
        bed = Bed.load(name)
    except (OSError, ValueError):
        return None
    if (bed.topology, bed.release, bed.port) != (topology, str(release), port):
        return None
    c = client()
    for host in bed.hosts:
        try:
            if c.containers.get(host.container).status != "running":
                return None
        except NotFound:
            return None
    return bed


def up(topology: str = "split", release: str = "13", name: str | None = None,
       port: int = 8080, reuse: bool = False, backend_port: int | None = None) -> Bed:
    """Start a fresh bed (removing any previous bed of the same name) and return it.
    With reuse, a bed of that name that is already up as asked is kept as it is.
    With backend_port, the first web-only host's port 80 is published there too
    (on 127.0.0.1), for benchmarks that compare the balancer with one backend."""
    if topology not in TOPOLOGIES:
        raise TestbedError(f"unknown topology {topology!r}: use one of {sorted(TOPOLOGIES)}")
    name = name or topology
    if reuse and (bed := _running(name, topology, release, port)):
        bed.hosts_file.write_text(hosts_toml(bed))
        return bed
    tag = build_image(release)
    down(name)
    c = client()
    subnet = _subnet(c, name)
    bed = Bed(name=name, topology=topology, release=str(release), subnet=subnet, port=port,
              vip=f"{subnet.rsplit('.', 1)[0]}.100" if topology in SHARED_ADDRESS else None)
    bed.dir.mkdir(parents=True, exist_ok=True)
    pubkey = _make_key(bed.key_file)

    prefix = bed.subnet.rsplit(".", 1)[0]
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet=bed.subnet, gateway=bed.gateway)])
    network = c.networks.create(f"pwlb-{name}", driver="bridge", ipam=ipam,
                                labels=_labels(name))
    containers = []
    published = backend_published = False
    for index, (host, groups) in enumerate(TOPOLOGIES[topology]):
        address = f"{prefix}.{10 + index}"
        ports = {}
        if "lb" in groups and not published:
            ports = {"80/tcp": ("127.0.0.1", port), "443/tcp": ("127.0.0.1", bed.https_port)}
            published = True
        elif groups == ["web"] and backend_port and not backend_published:
            ports = {"80/tcp": ("127.0.0.1", backend_port)}
            backend_published = True
        container = c.containers.create(
            tag, name=f"pwlb-{name}-{host}", hostname=host, labels=_labels(name),
            ports=ports, **{k: v for k, v in RUN_OPTIONS.items() if k != "detach"},
        )
        network.connect(container, ipv4_address=address)
        c.networks.get("bridge").disconnect(container)
        _put_file(container, f"/home/{DEPLOY_USER}/.ssh/authorized_keys", pubkey, 0o600,
                  DEPLOY_UID)
        container.start()
        containers.append(container)
        bed.hosts.append(Host(host, groups, address, container.name))

    known_hosts = []
    for host, container in zip(bed.hosts, containers):
        _wait_booted(container)
        keys = container.exec_run(["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"])
        for line in keys.output.decode().splitlines():
            key_type, key = line.split()[:2]
            known_hosts.append(f"{host.address} {key_type} {key}")
    (bed.dir / "known_hosts").write_text("\n".join(known_hosts) + "\n")
    if any("acme" in h.groups for h in bed.hosts):
        start_pebble(bed)
    bed.hosts_file.write_text(hosts_toml(bed))
    (bed.dir / "bed.json").write_text(json.dumps(bed.to_json(), indent=2))
    return bed


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def hosts_toml(bed: Bed) -> str:
    """The bed as an operator's hosts file (see inventory.py)."""
    archive = wordpress_archive(bed.release)  # the bed's own Debian release's WordPress
    lines = [f"# Test bed {bed.name!r}: topology {bed.topology}, Debian {bed.release}.",
             "# Written by tests/testbed.py; removed by `make down`.", ""]
    for host in bed.inventory_hosts:
        data = {
            "groups": host.groups,
            "ssh_hostname": host.address,
            "ssh_user": DEPLOY_USER,
            "ssh_key": str(bed.key_file),
            "ssh_known_hosts_file": str(bed.dir / "known_hosts"),
            "ssh_strict_host_key_checking": "yes",
            "_sudo": True,
            "private_address": host.address,
            "site_url": bed.site_url,
            # The controller (the bed's gateway) may look at every port: tests read
            # backends directly. Flows between the bed's hosts are what the firewall tests.
            "firewall_trusted": [bed.gateway],
            "admin_networks": [bed.gateway],
            # Tests count which backend served each request.
            "lb_show_backend": True,
            **edge_settings(bed),
            **demo_sites(bed),
            # No internet here: the release comes from Debian's package, uploaded.
            "wordpress_archive": str(archive.path),
            "wordpress_version": archive.version,
            "wordpress_checksum": archive.checksum,
        }
        lines.append(f"[hosts.{host.name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in data.items()]
        lines.append("")
    return "\n".join(lines)


NOTIFY_LOG = "/var/log/wordpress-lb-vip-notify.log"


def _notify_recorder(bed: Bed) -> Path:
    """A script for `lb_vip_notify` that records each call (time and state) on the host."""
    script = bed.dir / "vip-notify.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f'#!/bin/sh\necho "$(date +%s.%N) $1" >> {NOTIFY_LOG}\n')
    return script


DEMO = "split"  # `make demo`'s bed (`up split`, named after its topology): two sites
DEMO_SHOP = "shop.pwlb.test"  # the demo's second site


def demo_sites(bed: Bed) -> dict:
    """`make demo` brings up two sites on the five hosts: the one-site settings' site
    (`main`, on the shared address) and a shop by its own name."""
    if bed.name != DEMO:
        return {}
    return {"sites": [{"name": "main", "site_url": bed.site_url},
                      {"name": "shop", "site_url": f"https://{DEMO_SHOP}",
                       "site_title": "The shop on pyinfra"}]}


def edge_settings(bed: Bed) -> dict:
    """What the bed's topology sets beyond the defaults: the shared address; plain HTTP
    where there is none; ACME from the bed's pebble on the edge bed."""
    settings: dict = {}
    if bed.vip:
        settings["lb_vip"] = bed.vip
    else:
        settings["tls"] = "off"
    if bed.topology == "edge":
        acme = next(h for h in bed.hosts if "acme" in h.groups)
        settings.update({
            "tls": "acme",
            "acme_server": f"https://{acme.address}:14000/dir",
            "acme_email": "webmaster@pwlb.test",
            "acme_server_ca": str(bed.dir / "pebble-api.pem"),
            "tls_trust": str(bed.ca_file),
            "site_aliases": [EDGE_ALIAS],
            # A floating-IP hook that records its calls (tests/integration/test_edge.py).
            "lb_vip_notify": str(_notify_recorder(bed)),
        })
    return settings


# Pebble (Let's Encrypt's ACME test server, from Debian) on the bed's `acme` host: its own
# HTTPS certificate for its address, http-01 validation on port 80, the site's name
# resolved to the shared address. Its issuing root changes at every start: read it from
# the management port into the bed's directory.
PEBBLE_SETUP = """\
set -e
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pebble curl >/dev/null
mkdir -p /etc/pebble
cd /etc/pebble
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=acme \\
    -addext "subjectAltName=IP:{address}" -keyout key.pem -out cert.pem 2>/dev/null
cat > config.json <<CONFIG
{{"pebble": {{"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
  "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem",
  "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
  "externalAccountBindingRequired": false}}}}
CONFIG
echo "{vip} {site} {alias}" >> /etc/hosts
# Pebble rejects 5% of nonces by default to test clients' retries; a deploy whose
# certbot met two in a row failed once in CI. Our tests are about the cluster.
systemd-run --unit pebble --setenv=PEBBLE_VA_NOSLEEP=1 --setenv=PEBBLE_WFE_NONCEREJECT=0 \
    /usr/bin/pebble -config /etc/pebble/config.json
for i in $(seq 1 50); do
    curl -sf --cacert cert.pem https://{address}:14000/dir >/dev/null && break
    sleep 0.2
done
"""


def start_pebble(bed: Bed) -> None:
    acme = next(h for h in bed.hosts if "acme" in h.groups)
    bed.exec(acme.name, PEBBLE_SETUP.format(address=acme.address, vip=bed.vip, site=EDGE_SITE,
                                            alias=EDGE_ALIAS))
    _, api = bed.exec(acme.name, "cat /etc/pebble/cert.pem")
    (bed.dir / "pebble-api.pem").write_text(api)
    _, roots = bed.exec(acme.name, "curl -sf --cacert /etc/pebble/cert.pem "
                                   f"https://{acme.address}:15000/roots/0")
    bed.ca_file.write_text(roots)


def status() -> list[dict]:
    c = client()
    return [
        {"name": ct.name, "status": ct.status, "bed": ct.labels.get(f"{LABEL}.bed")}
        for ct in c.containers.list(all=True, filters={"label": f"{LABEL}.bed"})
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start a bed and write its hosts.toml")
    p_up.add_argument("topology", choices=sorted(TOPOLOGIES))
    p_up.add_argument("--release", default="13", choices=sorted(RELEASES))
    p_up.add_argument("--name")
    p_up.add_argument("--port", type=int, default=8080)
    p_up.add_argument("--reuse", action="store_true",
                      help="keep a bed of this name that is already up")
    p_down = sub.add_parser("down", help="remove beds (all when no name is given)")
    p_down.add_argument("names", nargs="*")
    p_build = sub.add_parser("build", help="build base images (cached by tag)")
    p_build.add_argument("--release", action="append", choices=sorted(RELEASES))
    p_build.add_argument("--force", action="store_true")
    sub.add_parser("status", help="list the beds' containers")
    p_url = sub.add_parser("url", help="print a bed's site URL (and the CA to trust)")
    p_url.add_argument("name", nargs="?", default="split")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            bed = up(args.topology, args.release, args.name, args.port, args.reuse)
            for host in bed.hosts:
                print(f"{host.name:8} {host.address:15} {','.join(host.groups)}")
            print(f"inventory: {bed.hosts_file}")
        elif args.command == "down":
            for name in args.names or [None]:
                down(name)
        elif args.command == "build":
            for release in args.release or sorted(RELEASES):
                print(build_image(release, force=args.force))
        elif args.command == "url":
            bed = Bed.load(args.name)
            trust = (f"; trust the CA in {bed.ca_file} (curl --cacert, or import it into a "
                     "browser)" if bed.site_url.startswith("https://") else "")
            print(f"The site: {bed.site_url}/ (wp-admin: {bed.site_url}/wp-admin/, user admin, "
                  f"password: admin_password in {bed.dir / 'hosts.secrets.json'}){trust}")
            if demo_sites(bed):
                print(f"The second site: https://{DEMO_SHOP}/ on the same balancers (user "
                      f"admin, password: admin_password@shop); this machine does not resolve "
                      f"its name: curl --cacert {bed.ca_file} --resolve "
                      f"{DEMO_SHOP}:443:{bed.vip} https://{DEMO_SHOP}/ (or add "
                      f"`{bed.vip} {DEMO_SHOP}` to /etc/hosts)")
        elif args.command == "status":
            for row in status():
                print(f"{row['bed']:12} {row['name']:28} {row['status']}")
    except (TestbedError, subprocess.CalledProcessError) as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
