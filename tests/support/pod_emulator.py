"""Pods as the kubelet would run them, emulated on this machine from the rendered chart.

No Docker engine and no node can run here, so the images are laid out from their Dockerfiles
and the pods are started from `helm template` output with Linux primitives (root needed):

- `build_image(dockerfile, context, root)` interprets a Dockerfile into a root filesystem:
  `FROM python:3.11*` is this machine's Debian (`/usr`, a copy of `/etc`) plus a Python 3.11
  prefix at `/usr/local` (Debian's `python3.11`); `ARG`/`ENV`/`WORKDIR`/`USER`/`ENTRYPOINT`/
  `CMD` are recorded; `COPY` copies from the context with `--chown`; every `RUN` runs for real
  as root in a chroot of the image being built (`groupadd`/`useradd`, `mkdir`/`chown`, the
  Bento's setup script, `chmod`), except the package installers, which are shims: `apt-get`
  checks its packages are installed here, `uv venv` makes a venv on the image's Python, and
  `pip install`/`uv pip install` bind this repository's `.venv` site-packages (read-only) as
  the prefix's site-packages when a container starts.
- `Pod.start()` runs one container of a rendered pod spec: a network namespace shared by the
  emulated "cluster" (Services resolve to 127.0.0.1 through the pod's `/etc/hosts`, as the
  kubelet writes it), a private mount namespace with the image's root bound and remounted
  read-only when `readOnlyRootFilesystem` is set, `emptyDir` as tmpfs of its `sizeLimit`,
  PVCs as directories owned by `fsGroup`, Secret/ConfigMap volumes as files, the env with
  Secret/ConfigMap/fieldRef references resolved, `workingDir` or the image's `WORKDIR`, the
  command/args over the image's entrypoint as Kubernetes combines them, the uid/gid/fsGroup
  through `setpriv` with no capabilities and no_new_privs, and the memory limit as a cgroup
  (v2 if its memory controller is writable, else v1; `prlimit --as` as the last resort).
- `Pod.probe(...)` runs an `httpGet` probe of the manifest (named or numbered port) from the
  node's side; `Pod.wait_startup()` polls the startup probe within its rendered budget
  (periodSeconds x failureThreshold), sooner than the kubelet would, and fails at once when
  the container exits.

Not emulated (docs/operations.md, "What the pod emulation proves"): the container runtime's
image layers and the real base images, seccomp, the API server (no service-account token is
mounted), CPU limits, Services as virtual IPs (a Service port must equal its target port
here), DNS beyond `/etc/hosts`, NetworkPolicies, probe timing, and restarts.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
VENV_SITE = Path(sysconfig.get_paths()["purelib"])  # the .venv the tests run in
PY_MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
HOST_PYTHON = Path(f"/usr/bin/python{PY_MINOR}")  # Debian's, readable by any uid
TOOLS = ("unshare", "nsenter", "chroot", "setpriv", "curl", "ip", "mount")
EMU = ".pod-emulator"  # shims and build records inside an image while it is built


def missing_capability() -> str | None:
    """Why pods cannot be emulated here, or None when they can."""
    if os.geteuid() != 0:
        return "pod emulation needs root (mount namespaces, chroot, setpriv, cgroups)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"pod emulation needs {', '.join(missing)} (util-linux, curl, iproute2)"
    return None


def require_host_python() -> None:
    """The images' Python is Debian's python3.x of the same minor as the test venv."""
    if not HOST_PYTHON.exists():
        raise RuntimeError(f"{HOST_PYTHON} is missing: apt-get install python{PY_MINOR}")


# ----------------------------------------------------------------------------- images


@dataclass
class Image:
    """A root filesystem laid out from a Dockerfile, and its runtime configuration."""

    root: Path
    env: dict[str, str]
    workdir: str
    user: str
    entrypoint: list[str]
    cmd: list[str]
    usr_local: Path  # the base image's /usr/local (its Python), kept beside the root
    site_packages: list[str] = field(default_factory=list)  # prefixes given the .venv's
    steps: list[str] = field(default_factory=list)  # what was done, step by step
    missing_packages: list[str] = field(default_factory=list)  # apt-get asked, not here

    def uid_gid(self, user: str | None = None) -> tuple[int, int]:
        """The numeric uid/gid of `user` (default the image's USER) from the image's files."""
        name, _, group = (user or self.user or "0").partition(":")
        uid, gid = _lookup(self.root / "etc/passwd", name)
        if group:
            gid = int(group) if group.isdigit() else _lookup(self.root / "etc/group", group)[0]
        return uid, gid


def _lookup(path: Path, name: str) -> tuple[int, int]:
    if name.isdigit():
        return int(name), int(name)
    for line in path.read_text().splitlines():
        parts = line.split(":")
        if parts[0] == name:
            return int(parts[2]), int(parts[3] if len(parts) > 3 and parts[3] else parts[2])
    raise KeyError(f"{name} not in the image's {path.name}")


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        name, _, args = buf.partition(" ")
        out.append((name.upper(), args.strip()))
        buf = ""
    return out


def _expand(value: str, env: Mapping[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


SHIMS = {
    # uv: `uv --version`, `uv venv [--python X] DIR`, `uv [--directory D] pip install ...`
    "uv": r"""#!/bin/sh
case " $* " in
  *" --version "*) echo "uv 0.13.4 (pod emulator)"; exit 0 ;;
  *" pip install "*)
    echo "install ${VIRTUAL_ENV:?uv pip install needs VIRTUAL_ENV}" >> /{emu}/log; exit 0 ;;
esac
if [ "$1" = venv ]; then
  for dir; do :; done
  mkdir -p "$dir/bin" "$dir/lib/python{minor}/site-packages"
  ln -sf /usr/local/bin/python{minor} "$dir/bin/python"
  ln -sf python "$dir/bin/python3"
  ln -sf python "$dir/bin/python{minor}"
  printf 'home = /usr/local/bin\ninclude-system-site-packages = false\nversion = {minor}\n' \
    > "$dir/pyvenv.cfg"
  printf 'VIRTUAL_ENV=%s\nexport VIRTUAL_ENV\nPATH="$VIRTUAL_ENV/bin:$PATH"\nexport PATH\n' \
    "$dir" > "$dir/bin/activate"
  echo "venv $dir" >> /{emu}/log
  exit 0
fi
echo "uv shim: unsupported: $*" >&2; exit 2
""",
    # pip of the base image's Python (prefix /usr/local), or of the active venv
    "pip": r"""#!/bin/sh
[ "$1" = install ] || { echo "pip shim: unsupported: $*" >&2; exit 2; }
echo "install ${VIRTUAL_ENV:-/usr/local}" >> /{emu}/log
""",
    # apt-get: the base is this machine's Debian; packages it lacks are recorded, not installed
    "apt-get": r"""#!/bin/sh
[ "$1" = install ] || exit 0
shift
for p; do
  case "$p" in -*) continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || echo "missing-package $p" >> /{emu}/log
done
""",
}


def build_image(dockerfile: Path, context: Path, root: Path) -> Image:
    """Lay out `dockerfile` (build context `context`) as a root filesystem at `root`."""
    require_host_python()
    image = Image(
        root=root,
        env={},
        workdir="/",
        user="",
        entrypoint=[],
        cmd=[],
        usr_local=root.with_name(root.name + "-usr-local"),
    )
    args: dict[str, str] = {}
    for name, rest in _instructions(dockerfile.read_text()):
        scope = {**args, **image.env}
        if name == "FROM":
            _base(root, rest.split()[0], image)
        elif name == "ARG":
            key, _, default = rest.partition("=")
            args[key] = _expand(default, scope)
        elif name == "ENV":
            for key, value in _env_pairs(rest):
                image.env[key] = _expand(value, {**scope, **image.env})
        elif name == "WORKDIR":
            image.workdir = _expand(rest, scope)
            (root / image.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif name == "USER":
            image.user = _expand(rest, scope)
        elif name in ("ENTRYPOINT", "CMD"):
            argv: list[str] = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            if name == "ENTRYPOINT":
                image.entrypoint = argv
            else:
                image.cmd = argv
        elif name == "COPY":
            _copy(image, context, _expand(rest, scope))
        elif name == "RUN":
            _run(image, rest, {**args, **image.env})
        elif name in ("EXPOSE", "LABEL"):
            pass
        else:
            raise NotImplementedError(f"Dockerfile instruction {name} is not emulated")
        image.steps.append(f"{name} {rest[:100]}")
    shutil.rmtree(root / EMU, ignore_errors=True)
    return image


def _env_pairs(rest: str) -> list[tuple[str, str]]:
    if "=" not in rest.split()[0]:
        key, _, value = rest.partition(" ")
        return [(key, value.strip())]
    return [(k, v) for k, _, v in (p.partition("=") for p in shlex.split(rest))]


def _base(root: Path, ref: str, image: Image) -> None:
    python = rf"python:{re.escape(PY_MINOR)}([.-].*)?"
    if not re.fullmatch(rf"(docker\.io/(library/)?)?({python}|debian:bookworm(-slim)?)", ref):
        raise NotImplementedError(f"base image {ref} is not emulated (python:{PY_MINOR}*, debian)")
    root.mkdir(parents=True, exist_ok=True)
    for top in ("bin", "lib", "lib64", "sbin"):
        host = Path("/") / top
        if host.is_symlink():
            (root / top).symlink_to(os.readlink(host))
        elif host.exists():
            (root / top).mkdir()
    subprocess.run(["cp", "-a", "/etc", str(root / "etc")], check=True)
    for d in ("usr", "dev", "proc", "sys", "home", "root", "run", "var/tmp", "var/lib/dpkg"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    # python:3.x-slim: the interpreter in /usr/local (here Debian's python3.x made a prefix).
    local = image.usr_local
    (local / "bin").mkdir(parents=True)
    (local / "lib" / f"python{PY_MINOR}" / "site-packages").mkdir(parents=True)
    for name in (f"python{PY_MINOR}", "python3", "python"):
        (local / "bin" / name).symlink_to(HOST_PYTHON)
    (local / "pyvenv.cfg").write_text(
        f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {PY_MINOR}\n"
    )
    emu = root / EMU / "bin"
    emu.mkdir(parents=True)
    for name, text in SHIMS.items():
        shim = emu / name
        shim.write_text(text.replace("{emu}", EMU).replace("{minor}", PY_MINOR))
        shim.chmod(0o755)
    (emu / "pip3").symlink_to("pip")
    image.env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    image.env["LANG"] = "C.UTF-8"


def _copy(image: Image, context: Path, rest: str) -> None:
    words = rest.split()
    chown = next((w.split("=", 1)[1] for w in words if w.startswith("--chown=")), None)
    *sources, dest = [w for w in words if not w.startswith("--")]
    target = image.root / (Path(image.workdir) / dest).relative_to("/")
    copied = []
    for src in sources:
        source = (context / src).resolve()
        if source.is_dir():
            existed = target.is_dir()
            mode = target.stat().st_mode if existed else None
            shutil.copytree(
                source,
                target,
                dirs_exist_ok=True,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
            if mode is not None:  # COPY keeps an existing destination directory's mode
                target.chmod(mode)
            copied += [target, *target.rglob("*")]
        else:
            into = target / source.name if dest.endswith("/") or len(sources) > 1 else target
            into.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into)
            copied.append(into)
    if chown:
        uid, gid = image.uid_gid(chown)
        for p in copied:
            os.lchown(p, uid, gid)


def _mount_base(image: Image) -> list[str]:
    """Shell lines binding the base image's read-only parts into its root."""
    r = shlex.quote(str(image.root))
    return [
        f"mount --bind -o ro /usr {r}/usr",
        f"mount --bind -o ro {shlex.quote(str(image.usr_local))} {r}/usr/local",
        f"mount --rbind /dev {r}/dev",
        f"mount -t proc proc {r}/proc",
        f"mount --bind -o ro /var/lib/dpkg {r}/var/lib/dpkg",
    ]


def _run(image: Image, command: str, env: Mapping[str, str]) -> None:
    """One RUN step as root in a chroot of the image (shims first on PATH)."""
    root = image.root
    log = root / EMU / "log"
    before = log.read_text().splitlines() if log.exists() else []
    env_args = [f"{k}={v}" for k, v in env.items() if k != "PATH"]
    env_args.append(f"PATH=/{EMU}/bin:{env.get('PATH', image.env['PATH'])}")
    script = "\n".join(
        [
            "set -e",
            *_mount_base(image),
            "exec chroot "
            + shlex.join([str(root), "/usr/bin/env", "-i", *env_args])
            + ' /bin/sh -c \'cd "$1" && exec /bin/sh -c "$2"\' sh '
            + shlex.join([image.workdir, command]),
        ]
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"RUN {command[:200]} failed ({proc.returncode}):\n{proc.stderr}")
    after = log.read_text().splitlines() if log.exists() else []
    for record in after[len(before) :]:
        kind, _, prefix = record.partition(" ")
        if kind == "missing-package":
            image.missing_packages.append(prefix)
        if kind == "install" and prefix not in image.site_packages:
            image.site_packages.append(prefix)
            _console_scripts(root / prefix.lstrip("/"), prefix)


def _console_scripts(prefix_dir: Path, prefix: str) -> None:
    """The entry-point scripts an installer writes into PREFIX/bin, as the .venv has them."""
    bindir = prefix_dir / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    venv_bin = Path(sys.executable).parent
    for script in venv_bin.iterdir():
        if not script.is_file() or script.name.startswith(("python", "activate", "pip")):
            continue
        try:
            text = script.read_text()
        except UnicodeDecodeError:
            continue
        if text.startswith("#!") and "python" in text.splitlines()[0]:
            out = bindir / script.name
            if not out.exists():
                out.write_text(f"#!{prefix}/bin/python\n" + text.split("\n", 1)[1])
                out.chmod(0o755)


# ----------------------------------------------------------------------------- memory


@dataclass
class Cgroup:
    """A memory (and optional CPU-quota-free) cgroup for one container; `kind` says which."""

    kind: str  # "cgroup2" | "cgroup1" | "prlimit"
    path: Path | None
    limit: int

    @staticmethod
    def create(name: str, limit: int) -> Cgroup:
        v2 = Path("/sys/fs/cgroup")
        if "memory" in _read(v2 / "cgroup.controllers").split():
            path = v2 / name
            with contextlib.suppress(OSError):
                if "memory" not in _read(v2 / "cgroup.subtree_control").split():
                    (v2 / "cgroup.subtree_control").write_text("+memory")
                path.mkdir()
                (path / "memory.max").write_text(str(limit))
                with contextlib.suppress(OSError):
                    (path / "memory.swap.max").write_text("0")
                return Cgroup("cgroup2", path, limit)
        v1 = Path("/sys/fs/cgroup/memory")
        if (v1 / "memory.limit_in_bytes").exists():
            path = v1 / name
            with contextlib.suppress(OSError):
                path.mkdir()
                (path / "memory.limit_in_bytes").write_text(str(limit))
                with contextlib.suppress(OSError):  # no swap either, as on a kubelet node
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
                return Cgroup("cgroup1", path, limit)
        return Cgroup("prlimit", None, limit)

    def join_line(self) -> str:
        """Shell line that puts the current shell (and all it execs) into the cgroup."""
        if self.path is None:
            return ":"
        return f"echo $$ > {shlex.quote(str(self.path / 'cgroup.procs'))}"

    def wrap(self) -> list[str]:
        return ["prlimit", f"--as={self.limit}", "--"] if self.kind == "prlimit" else []

    def pids(self) -> list[int]:
        if self.path is None:
            return []
        return [int(p) for p in _read(self.path / "cgroup.procs").split()]

    def peak(self) -> int | None:
        if self.path is None:
            return None
        name = "memory.peak" if self.kind == "cgroup2" else "memory.max_usage_in_bytes"
        text = _read(self.path / name).strip()
        return int(text) if text.isdigit() else None

    def oom_kills(self) -> int:
        if self.path is None:
            return 0
        name = "memory.events" if self.kind == "cgroup2" else "memory.oom_control"
        for line in _read(self.path / name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        if self.path is None:
            return
        for _ in range(50):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                self.path.rmdir()
                return
            time.sleep(0.1)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def parse_quantity(q: str | int) -> int:
    """A Kubernetes memory quantity in bytes (Mi, Gi, M, G, k, plain)."""
    units = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "k": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
    }
    text = str(q)
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


# ----------------------------------------------------------------------------- the cluster


class Network:
    """One network namespace for every emulated pod (their node), loopback up."""

    def __init__(self) -> None:
        self._holder = subprocess.Popen(
            ["unshare", "--net", "/bin/sh", "-c", "ip link set lo up && exec sleep infinity"],
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = subprocess.run(
                self.enter(["ip", "-o", "link", "show", "lo"]), capture_output=True, text=True
            ).stdout
            if "UP" in out.split("state")[0] or "LOWER_UP" in out:
                return
            time.sleep(0.05)
        raise RuntimeError("the emulated node's loopback did not come up")

    def enter(self, cmd: list[str]) -> list[str]:
        return ["nsenter", f"--net=/proc/{self._holder.pid}/ns/net", *cmd]

    def http(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, bytes]:
        """One HTTP request from the node's side (curl in the pods' network); 0 = no answer."""
        cmd = [
            "curl",
            "-sS",
            "-X",
            method,
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--max-time",
            f"{timeout:g}",
            url,
        ]
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        if body is not None:
            cmd += ["--data-binary", "@-"]
        proc = subprocess.run(self.enter(cmd), input=body or b"", capture_output=True)
        out, _, code = proc.stdout.rpartition(b"\n")
        return (int(code) if code.strip().isdigit() else 0), out

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._holder.pid, signal.SIGKILL)
        self._holder.wait(10)


def hosts_file(docs: list[Doc]) -> str:
    """The /etc/hosts of every pod: each Service's DNS names at 127.0.0.1 (one node)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for d in docs:
        if d["kind"] == "Service":
            name, ns = d["metadata"]["name"], d["metadata"]["namespace"]
            names = [f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}.svc", f"{name}.{ns}", name]
            lines.append("127.0.0.1\t" + " ".join(names))
    return "\n".join(lines) + "\n"


def pod_specs(docs: list[Doc]) -> dict[str, tuple[Doc, Doc]]:
    """component label -> (pod metadata, pod spec) of every Deployment and bare Pod."""
    out: dict[str, tuple[Doc, Doc]] = {}
    for d in docs:
        if d["kind"] == "Deployment":
            meta = {
                **d["spec"]["template"]["metadata"],
                "namespace": d["metadata"]["namespace"],
                "name": d["metadata"]["name"] + "-emulated",
            }
            out[meta["labels"]["app.kubernetes.io/component"]] = (
                meta,
                d["spec"]["template"]["spec"],
            )
        elif d["kind"] == "Pod":
            out[d["metadata"]["labels"]["app.kubernetes.io/component"]] = (d["metadata"], d["spec"])
    return out


def service_port_problems(docs: list[Doc]) -> list[str]:
    """Services whose selector finds no pod template or whose targetPort no container has;
    and Service ports that differ from their target (the one-node emulation needs equality)."""
    problems = []
    templates = [
        (d["spec"]["template"]["metadata"]["labels"], d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] == "Deployment"
    ]
    for svc in (d for d in docs if d["kind"] == "Service"):
        sel = svc["spec"].get("selector", {})
        pods = [spec for labels, spec in templates if sel.items() <= labels.items()]
        name = svc["metadata"]["name"]
        if not pods:
            problems.append(f"Service {name}: its selector matches no pod template")
            continue
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for spec in pods:
                cports = [p for c in spec["containers"] for p in c.get("ports", [])]
                hit = [p for p in cports if target in (p.get("name"), p["containerPort"])]
                if not hit:
                    problems.append(f"Service {name}: targetPort {target} is no container port")
                elif hit[0]["containerPort"] != port["port"]:
                    problems.append(
                        f"Service {name}: port {port['port']} -> {hit[0]['containerPort']}"
                        " (the emulation serves Services on their target port)"
                    )
    return problems


@dataclass
class Pod:
    """One container of a rendered pod, emulated on `image`."""

    name: str
    meta: Doc
    spec: Doc
    image: Image
    docs: list[Doc]
    network: Network
    workdir: Path  # for PVC directories, Secret files, logs
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # not rendered
    container_index: int = 0
    popen: subprocess.Popen[bytes] | None = None
    cgroup: Cgroup | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def container(self) -> Doc:
        return dict(self.spec["containers"][self.container_index])

    # ---- what the kubelet computes from the manifest

    def security(self) -> Doc:
        return {**self.spec.get("securityContext", {}), **self.container.get("securityContext", {})}

    def user(self) -> tuple[int, int, list[int]]:
        sc = self.security()
        uid, gid = self.image.uid_gid()
        uid = int(sc.get("runAsUser", uid))
        gid = int(sc.get("runAsGroup", gid))
        if sc.get("runAsNonRoot") and uid == 0:
            raise RuntimeError(f"{self.name}: runAsNonRoot but the container would run as uid 0")
        groups = [gid]
        if "fsGroup" in self.spec.get("securityContext", {}):
            groups.append(int(self.spec["securityContext"]["fsGroup"]))
        groups += [
            int(g) for g in self.spec.get("securityContext", {}).get("supplementalGroups", [])
        ]
        return uid, gid, sorted(set(groups))

    def env(self) -> dict[str, str]:
        """The image's ENV, then the container's env (later wins), references resolved."""
        out = dict(self.image.env)
        out["HOSTNAME"] = self.meta["name"]
        for e in self.container.get("env", []):
            if "value" in e:
                out[e["name"]] = str(e["value"])
                continue
            ref = e["valueFrom"]
            if "secretKeyRef" in ref:
                r = ref["secretKeyRef"]
                out[e["name"]] = self._secret(r["name"])[r["key"]]
            elif "configMapKeyRef" in ref:
                r = ref["configMapKeyRef"]
                out[e["name"]] = self._config_map(r["name"])[r["key"]]
            elif "fieldRef" in ref:
                path = ref["fieldRef"]["fieldPath"]
                fields = {
                    "metadata.namespace": self.meta["namespace"],
                    "metadata.name": self.meta["name"],
                    "status.podIP": "127.0.0.1",
                }
                out[e["name"]] = fields[path]
            else:
                raise NotImplementedError(f"env {e['name']}: {ref} is not emulated")
        return out

    def _secret(self, name: str) -> dict[str, str]:
        for d in self.docs:
            if d["kind"] == "Secret" and d["metadata"]["name"] == name:
                data = {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
                return {**data, **d.get("stringData", {})}
        if name in self.secrets:
            return dict(self.secrets[name])
        raise KeyError(f"Secret {name} is neither rendered nor given as a test value")

    def _config_map(self, name: str) -> dict[str, str]:
        for d in self.docs:
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name:
                return dict(d.get("data", {}))
        raise KeyError(f"ConfigMap {name} is not rendered")

    def argv(self) -> list[str]:
        """Kubernetes: command replaces ENTRYPOINT (and drops CMD); args replace CMD."""
        c = self.container
        if "command" in c:
            return [*c["command"], *c.get("args", [])]
        return [*self.image.entrypoint, *c.get("args", self.image.cmd)]

    def port(self, port: int | str) -> int:
        if isinstance(port, int):
            return port
        for p in self.container.get("ports", []):
            if p.get("name") == port:
                return int(p["containerPort"])
        raise KeyError(f"{self.name}: no container port named {port}")

    def memory_limit(self) -> int | None:
        limit = self.container.get("resources", {}).get("limits", {}).get("memory")
        return parse_quantity(limit) if limit is not None else None

    # ---- running it

    def _volume_lines(self, root: str) -> list[str]:
        lines = []
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        fs_group = self.spec.get("securityContext", {}).get("fsGroup")
        for m in self.container.get("volumeMounts", []):
            vol = volumes[m["name"]]
            target = shlex.quote(root + m["mountPath"])
            lines.append(f"mkdir -p {target}")
            ro = ",ro" if m.get("readOnly") else ""
            if "emptyDir" in vol:
                size = vol["emptyDir"].get("sizeLimit")
                opts = f"mode=0777{',size=' + str(parse_quantity(size)) if size else ''}{ro}"
                lines.append(f"mount -t tmpfs -o {opts} {m['name']} {target}")
            elif "persistentVolumeClaim" in vol or "secret" in vol or "configMap" in vol:
                src = self._volume_dir(m["name"], vol, fs_group)
                lines.append(
                    f"mount --bind{' -o ro' if ro else ''} {shlex.quote(str(src))} {target}"
                )
            else:
                raise NotImplementedError(f"volume {m['name']}: {sorted(vol)} is not emulated")
        return lines

    def _volume_dir(self, name: str, vol: Doc, fs_group: int | None) -> Path:
        path = self.workdir / "volumes" / name
        if path.exists():  # a PVC keeps its data across starts
            return path
        path.mkdir(parents=True)
        if "persistentVolumeClaim" in vol:
            if fs_group is not None:  # the kubelet makes the volume group-owned and setgid
                os.chown(path, 0, int(fs_group))
                path.chmod(0o2775)
            return path
        if "secret" in vol:
            data = self._secret(vol["secret"]["secretName"])
            mode = vol["secret"].get("defaultMode", 0o644)
        else:
            data = self._config_map(vol["configMap"]["name"])
            mode = vol["configMap"].get("defaultMode", 0o644)
        for key, value in data.items():
            f = path / key
            f.write_text(value)
            f.chmod(mode)
            if fs_group is not None:
                os.chown(f, 0, int(fs_group))
        return path

    def start(self) -> Pod:
        """Start the container in its namespaces (returns at once; see wait_startup)."""
        if self.popen is not None and self.popen.poll() is None:
            raise RuntimeError(f"{self.name} is already running")
        root = str(self.image.root)
        r = shlex.quote(root)
        sc = self.security()
        uid, gid, groups = self.user()
        hosts = self.workdir / "hosts"
        hosts.write_text(hosts_file(self.docs))
        limit = self.memory_limit()
        if self.cgroup is not None:
            self.cgroup.remove()
        self.cgroup = (
            Cgroup.create(f"modelguard-pod-{os.getpid()}-{self.name}", limit) if limit else None
        )
        site = [
            f"mount --bind -o ro {shlex.quote(str(VENV_SITE))} "
            + shlex.quote(f"{root}{prefix}/lib/python{PY_MINOR}/site-packages")
            for prefix in self.image.site_packages
        ]
        setpriv = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ]
        if sc.get("allowPrivilegeEscalation") is False:
            setpriv.append("--no-new-privs")
        env = [f"{k}={v}" for k, v in self.env().items()]
        workdir = self.container.get("workingDir", self.image.workdir)
        wrap = self.cgroup.wrap() if self.cgroup else []
        script = [
            "set -e",
            self.cgroup.join_line() if self.cgroup else ":",
            f"mount --bind {r} {r}",
            *_mount_base(self.image),
            f"mount --rbind /sys {r}/sys",
            f"mount -o remount,bind,ro {r}/sys",
            f"mount -t tmpfs -o mode=1777,size=67108864 shm {r}/dev/shm",
            *site,
            *self._volume_lines(root),
            f"mount --bind -o ro {shlex.quote(str(hosts))} {r}/etc/hosts",
        ]
        if sc.get("readOnlyRootFilesystem"):
            script.append(f"mount -o remount,bind,ro {r}")
        script.append(
            "exec chroot "
            + shlex.join([root, *setpriv, "--", *wrap, "/usr/bin/env", "-i", *env])
            + ' /bin/sh -c \'cd "$1" && shift && exec "$@"\' sh '
            + shlex.join([workdir, *self.argv()])
        )
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name}: start ---\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.network.enter(
                    [
                        "unshare",
                        "--mount",
                        "--propagation",
                        "private",
                        "/bin/sh",
                        "-c",
                        "\n".join(script),
                    ]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def exec(self, cmd: list[str], timeout: float = 30.0) -> str:
        """`kubectl exec`: `cmd` in the container's namespaces, root and workdir, as its user."""
        assert self.popen is not None and self.alive(), f"{self.name} is not running"
        uid, gid, _ = self.user()
        proc = subprocess.run(
            [
                "nsenter",
                "-t",
                str(self.popen.pid),
                "-m",
                "-n",
                "-r",
                "-w",
                f"-S{uid}",
                f"-G{gid}",
                "--",
                *cmd,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"PATH": self.image.env.get("PATH", "/usr/bin:/bin")},
        )
        return proc.stdout + proc.stderr

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def probe(self, kind: str, probe: Doc | None = None) -> tuple[bool, str]:
        """One attempt of the container's `kind` probe (startupProbe, readinessProbe, ...)."""
        probe = probe or self.container[kind]
        if "httpGet" not in probe:
            raise NotImplementedError(f"{kind}: only httpGet probes are emulated")
        get = probe["httpGet"]
        if get.get("scheme", "HTTP") != "HTTP":
            raise NotImplementedError(f"{kind}: scheme {get['scheme']} is not emulated")
        url = f"http://127.0.0.1:{self.port(get['port'])}{get.get('path', '/')}"
        headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
        status, _ = self.network.http(
            "GET", url, headers=headers, timeout=probe.get("timeoutSeconds", 1)
        )
        return 200 <= status < 400, f"GET {url} -> {status or 'no answer'}"

    def wait_startup(self, poll: float = 0.5) -> str:
        """Poll the startup probe within its rendered budget; raise when it fails for good."""
        probe = self.container.get("startupProbe")
        if probe is None:
            return "no startupProbe"
        budget = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
        deadline = time.monotonic() + budget + probe.get("initialDelaySeconds", 0)
        last = ""
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.popen.returncode if self.popen else "?"
                raise StartupFailedError(
                    f"{self.name}: container exited ({code})"
                    f" before its startup probe passed; last probe: {last or 'none'}\n{self.tail()}"
                )
            ok, last = self.probe("startupProbe", probe)
            if ok:
                return last
            time.sleep(poll)
        raise StartupFailedError(
            f"{self.name}: startup probe failed for {budget}s: {last}\n{self.tail()}"
        )

    def wait_exit(self, timeout: float) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout)

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM to the container's process (as the kubelet), SIGKILL after `grace`."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(min(grace, self.spec.get("terminationGracePeriodSeconds", 30)))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        if self.cgroup is not None:
            for pid in self.cgroup.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)
        return self.popen.returncode

    def remove(self) -> None:
        self.stop(grace=5)
        if self.cgroup is not None:
            self.cgroup.remove()


class StartupFailedError(AssertionError):
    """The emulated container did not pass its startup probe."""


@contextlib.contextmanager
def running(pod: Pod) -> Iterator[Pod]:
    try:
        yield pod.start()
    finally:
        pod.remove()
