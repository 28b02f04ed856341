"""deploy/compose/docker-compose.yml as processes, without Docker: every service's `command`
runs as it is written, translated only where a container differs from a process.

* Network: each service gets its own loopback address (127.A.B.n, random per run), so the
  container ports stay as written (both mocks on 1080, as in the compose network). `0.0.0.0`
  in a service's listen settings becomes its address; the service names resolve to those
  addresses through a hosts file (`TOLLWAY_DNS_HOSTSFILE`, what Docker's DNS does in compose)
  and, in files read by programs that use the system resolver (Prometheus), by rewriting
  `name:port`.
* postgres: not started; the machine's PostgreSQL, on a throwaway database (user `postgres`,
  trust auth) stands in for it.
* Files: a bind mount (`../../examples:/config:ro`) maps its container path to the repository
  path; a read-only mount whose files name services (Prometheus' config) is copied with the
  names rewritten; any other absolute path (volumes, TSDB, the image's TOLLWAY_PREFIX) moves
  under the run's temp directory.
* Environment: the image's `ENV` (the Dockerfile's last stage) under the service's
  `environment`, with `${VAR:-default}` interpolated from an environment without TOLLWAY_*.
* Entrypoints: `tollway` is the venv's; the prometheus image's entrypoint is `prometheus`.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import yaml
from deploy_support import DEPLOY, REPO, TOLLWAY

COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
# Entrypoints of the images whose `command` holds only arguments.
ENTRYPOINTS = {"prom/prometheus": ["prometheus"]}
EXTERNAL = {"postgres"}  # services the machine provides
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage."""
    stages = DOCKERFILE.read_text().replace("\\\n", " ").split("\nFROM ")
    env: dict[str, str] = {}
    for line in stages[-1].splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                k, _, v = pair.partition("=")
                env[k] = v
    return env


def interpolate(value: str, environ: dict[str, str]) -> str:
    return INTERPOLATION.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), value)


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    address: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Stack:
    def __init__(self, tmp: Path, database: str) -> None:
        self.tmp = tmp
        self.doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
        self.services: dict[str, dict[str, Any]] = self.doc["services"]
        a, b = random.randrange(100, 250), random.randrange(0, 256)
        self.address = {name: f"127.{a}.{b}.{i + 2}"
                        for i, name in enumerate(sorted(self.services))}
        self.address.update({name: "127.0.0.1" for name in EXTERNAL})
        self.database = database
        self.hosts = tmp / "hosts"
        self.hosts.write_text("".join(f"{ip} {name}\n" for name, ip in self.address.items()))
        self.environ = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
        self.procs: dict[str, Proc] = {}

    # -- translation ------------------------------------------------------------------------
    def is_tollway(self, name: str) -> bool:
        """tollway resolves service names through the hosts file; other programs do not."""
        return bool(self.services[name].get("image", "").startswith("tollway:"))

    def order(self) -> list[str]:
        graph = {name: set(s.get("depends_on") or ()) for name, s in self.services.items()}
        return [n for n in TopologicalSorter(graph).static_order() if n not in EXTERNAL]

    def mounts(self, name: str) -> list[tuple[str, Path, bool]]:
        """(container path, host path, read-only) of the service's bind mounts."""
        out = []
        for v in self.services[name].get("volumes", []):
            parts = v.split(":")
            if parts[0].startswith("."):
                out.append((parts[1], (COMPOSE.parent / parts[0]).resolve(),
                            parts[2:] == ["ro"]))
        return out

    def path(self, name: str, value: str) -> str:
        for target, source, _ in self.mounts(name):
            if value == target or value.startswith(target + "/"):
                return str(self.mounted(name, target, source)) + value[len(target):]
        if value.startswith("/") and not value.startswith("/dev/"):
            return str(self.tmp / name / "root" / value.lstrip("/"))
        return value

    def mounted(self, name: str, target: str, source: Path) -> Path:
        """The repository directory itself, or a copy with the service names rewritten when
        its files name them (read by a program that resolves through the system)."""
        texts = {p: p.read_text() for p in source.rglob("*") if p.is_file()
                 and p.suffix in (".yml", ".yaml")}
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, self.address)) + r"):(\d+)")
        if not self.is_tollway(name) and any(pattern.search(t) for t in texts.values()):
            copy = self.tmp / name / "mount" / target.strip("/")
            shutil.copytree(source, copy, dirs_exist_ok=True)
            for p, text in texts.items():
                (copy / p.relative_to(source)).write_text(
                    pattern.sub(lambda m: f"{self.address[m.group(1)]}:{m.group(2)}", text))
            return copy
        return source

    def value(self, name: str, value: str) -> str:
        value = interpolate(value, self.environ)
        value = value.replace("0.0.0.0", self.address[name])
        return self.path(name, value)

    def command(self, name: str) -> list[str]:
        s = self.services[name]
        cmd = s["command"]
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        image = s.get("image", "").split(":")[0]
        argv = ENTRYPOINTS.get(image, []) + argv
        out = []
        for arg in argv:
            if arg.startswith("--") and "=" in arg:
                k, _, v = arg.partition("=")
                out.append(f"{k}={self.value(name, v)}")
            else:
                out.append(self.value(name, arg))
        if out[0] == "tollway":
            out[0] = TOLLWAY
        if out[0] == "redis-server":
            out += ["--bind", self.address[name]]  # a container binds its own namespace
        return out

    def env(self, name: str) -> dict[str, str]:
        s = self.services[name]
        env = dict(self.environ)
        if self.is_tollway(name):
            env.update({k: self.value(name, v) for k, v in image_env().items()})
        declared = s.get("environment") or {}
        for k, v in declared.items():
            env[k] = self.value(name, str(v))
            if k.endswith("_HOST") and env[k] in self.address:  # TOLLWAY_PG_HOST: postgres
                env[k] = self.address[env[k]]
        if "TOLLWAY_PG_HOST" in declared:
            # the machine's server: its superuser (trust auth) and a throwaway database
            env["TOLLWAY_PG_USER"] = "postgres"
            env["TOLLWAY_PG_DATABASE"] = self.database
        if self.is_tollway(name):
            env["TOLLWAY_DNS_HOSTSFILE"] = str(self.hosts)
        return env

    # -- processes ---------------------------------------------------------------------------
    def start(self, name: str) -> Proc:
        cwd = self.tmp / name / "cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        p = Proc(name, self.command(name), self.env(name), cwd, self.address[name],
                 log=self.tmp / name / "output.log")
        with open(p.log, "wb") as log:
            p.proc = subprocess.Popen(p.argv, env=p.env, cwd=cwd, stdout=log,
                                      stderr=subprocess.STDOUT)
        self.procs[name] = p
        return p

    def container_ports(self, name: str) -> list[int]:
        return [int(str(p).split(":")[-1]) for p in self.services[name].get("ports", [])]

    def wait_listening(self, name: str, timeout: float = 30) -> None:
        p = self.procs[name]
        ports = self.container_ports(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert p.proc is not None
            if p.proc.poll() is not None:
                raise AssertionError(f"{name} exited with {p.proc.returncode}: {p.argv}\n"
                                     f"{p.output()[-3000:]}")
            if all(tcp_open(p.address, port) for port in ports):
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} not listening on {p.address}:{ports} after {timeout} s:"
                             f"\n{p.output()[-3000:]}")

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            if p.proc is not None and p.proc.poll() is None:
                p.proc.terminate()
        for p in self.procs.values():
            if p.proc is None:
                continue
            try:
                p.proc.wait(20)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait(5)


def python_healthcheck(stack: Stack, name: str) -> list[str]:
    """The service's CMD healthcheck with the container's interpreter and address replaced."""
    test = stack.services[name]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    argv = [a.replace("127.0.0.1", stack.address[name]) for a in test[1:]]
    if argv[0] == "python":
        argv[0] = sys.executable
    return argv
