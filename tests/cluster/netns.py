"""Hosts for cluster tests: network namespaces on one bridge that lives in a namespace of its own.

``Network(["db", "agent1", ...], log_dir)`` makes a namespace per host (names unique to this run), a switch
namespace holding a bridge, and a veth pair from the bridge to each host (``eth0`` inside it, ``10.231.0.N/24``,
``lo`` up). Nothing is added to the root namespace, and a host has no route beyond its subnet. ``Host.start`` runs a
program inside a host through ``ip netns exec`` (which execs it: the pid is the program's own, so
``Process.kill`` is a SIGKILL of the real process). Leaving the ``with`` block stops every process left in those
namespaces and deletes them, also when the test failed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

__all__ = ["SUBNET", "NetnsError", "Line", "Process", "Host", "Network", "unavailable"]

SUBNET = "10.231.0"
_HOST_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")  # "v-" + name must fit an interface name (15 characters)
_STOP_WAIT_S = 10.0


class NetnsError(RuntimeError):
    """A namespace, link or process could not be set up (the message carries the command's own error)."""


def _ip(*args: str) -> str:
    """Run ``ip ARGS``; its stdout, or NetnsError with its stderr."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def unavailable() -> str | None:
    """Why this process cannot build namespace hosts here (None when it can): no iproute2, not permitted, or no
    veth/bridge support. Probes with a namespace of its own, deleted at once."""
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    probe = f"scaleout-probe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f"network namespaces are not permitted here (needs root or CAP_NET_ADMIN): {exc}"
    try:
        _ip("-n", probe, "link", "add", "probe-br", "type", "bridge")
        _ip("-n", probe, "link", "add", "probe-a", "type", "veth", "peer", "name", "probe-b")
    except (NetnsError, subprocess.TimeoutExpired) as exc:
        return f"cannot make a bridge and veth pairs inside a namespace: {exc}"
    finally:
        subprocess.run(["ip", "netns", "delete", probe], capture_output=True, timeout=30, check=False)
    return None


@dataclass(frozen=True)
class Line:
    """One line a process printed: its number in the output (from 0), the text, and the match that found it."""

    index: int
    text: str
    match: re.Match[str]


class Process:
    """A program running inside a host. Its stdout and stderr go to ``log`` and can be awaited line by line."""

    def __init__(self, host: str, argv: Sequence[str], popen: subprocess.Popen[str], log: Path, stop: int) -> None:
        self.host = host
        self.argv = list(argv)
        self.popen = popen
        self.log = log
        self.stop_signal = stop
        self.lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"output of {host}: {argv[0]}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with self.log.open("a", encoding="utf-8") as out:
            for line in self.popen.stdout:
                out.write(line)
                out.flush()
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of output, for failure messages."""
        with self._changed:
            return "\n".join(self.lines[-lines:])

    def wait_for(self, pattern: str, timeout: float, *, after: int = 0) -> Line:
        """The first output line numbered ``after`` or later that matches ``pattern`` (re.search), waiting at most
        ``timeout`` seconds; NetnsError if the process ends first, TimeoutError if the time runs out."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = after
        with self._changed:
            while True:
                while index < len(self.lines):
                    found = regex.search(self.lines[index])
                    if found:
                        return Line(index, self.lines[index], found)
                    index += 1
                if self._eof:
                    raise NetnsError(
                        f"{self.host}: {self.argv[0]} ended (exit {self.popen.wait()}) before printing {pattern!r};"
                        f" its last output:\n{self.tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.host}: {self.argv[0]} printed no line matching {pattern!r} within {timeout:g} s; "
                        f"its last output:\n{self.tail()}"
                    )
                self._changed.wait(left)

    def send(self, line: str) -> None:
        """Write ``line`` and a newline to the process's stdin (started with ``stdin=True``)."""
        stdin: IO[str] | None = self.popen.stdin
        if stdin is None:
            raise NetnsError(f"{self.host}: {self.argv[0]} was started without stdin")
        stdin.write(line + "\n")
        stdin.flush()

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process (nothing when it has ended)."""
        if self.alive:
            os.kill(self.pid, sig)

    def kill(self) -> int:
        """SIGKILL the process (a crash: no clean-up of any kind) and reap it; its exit status."""
        self.signal(signal.SIGKILL)
        return self.popen.wait(timeout=_STOP_WAIT_S)

    def stop(self, timeout: float = _STOP_WAIT_S) -> None:
        """Stop it with its stop signal; SIGKILL when it is still running after ``timeout`` seconds."""
        self.signal(self.stop_signal)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reader.join(timeout=_STOP_WAIT_S)


@dataclass(frozen=True)
class Host:
    """One namespace "host": its logical name, the namespace, and its address on the bridge."""

    name: str
    netns: str
    address: str
    network: Network

    def command(self, argv: Sequence[str], *, user: str | None = None) -> list[str]:
        """``argv`` run inside this host (as ``user`` when given); every wrapper execs, keeping the pid."""
        as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"] if user else []
        return ["ip", "netns", "exec", self.netns, *as_user, *argv]

    def start(
        self,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stdin: bool = False,
        stop_signal: int = signal.SIGTERM,
    ) -> Process:
        """Start ``argv`` in this host; output is logged to ``<log_dir>/<host>-<name>.log``. The network stops
        it (``stop_signal``, then SIGKILL) when it closes."""
        label = name or Path(argv[0]).name
        log = self.network.log_dir / f"{self.name}-{label}.log"
        popen = subprocess.Popen(
            self.command(argv, user=user),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, **(env or {})},
            cwd=self.network.cwd,
        )
        process = Process(self.name, argv, popen, log, stop_signal)
        self.network.processes.append(process)
        return process

    def run(self, argv: Sequence[str], *, user: str | None = None, timeout: float = 60.0) -> str:
        """Run ``argv`` in this host to its end; its output, or NetnsError with it when it fails."""
        done = subprocess.run(
            self.command(argv, user=user),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.network.cwd,
        )
        if done.returncode != 0:
            raise NetnsError(f"{self.name}: {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done.stdout


class Network:
    """Namespace hosts on one bridge (see the module docstring); a context manager that tears everything down."""

    def __init__(self, hosts: Sequence[str], log_dir: Path, *, subnet: str = SUBNET, cwd: Path | None = None) -> None:
        for name in hosts:
            if not _HOST_NAME.fullmatch(name):
                raise ValueError(f"host name {name!r} must be 1-12 lowercase letters or digits, starting with a letter")
        if len(set(hosts)) != len(hosts) or not 0 < len(hosts) <= 200:
            raise ValueError("give 1-200 distinct host names")
        self.log_dir = log_dir
        self.cwd = cwd or Path.cwd()
        self.tag = f"scaleout-{os.getpid()}-{secrets.token_hex(3)}"  # unique to this run: no clash with others
        self.switch = f"{self.tag}-switch"
        self.hosts = {
            name: Host(name, f"{self.tag}-{name}", f"{subnet}.{10 + i}", self) for i, name in enumerate(hosts)
        }
        self.processes: list[Process] = []
        self._made: list[str] = []

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def __enter__(self) -> Self:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for netns in [self.switch, *(h.netns for h in self.hosts.values())]:
            _ip("netns", "add", netns)
            self._made.append(netns)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for host in self.hosts.values():
            port = f"v-{host.name}"
            _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
            _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
            _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.netns, "link", "set", "eth0", "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")

    def close(self) -> None:
        """Stop every process started here, kill any other process left inside these namespaces (by pid), and
        delete the namespaces (their links go with them). Safe to call twice."""
        for process in reversed(self.processes):
            process.stop()
        for netns in self._made:
            listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False)
            for pid in listed.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)  # e.g. a child its parent left behind when it was killed
                except ProcessLookupError:
                    pass
        errors = []
        for netns in reversed(self._made):
            done = subprocess.run(["ip", "netns", "delete", netns], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                errors.append(f"{netns}: {done.stderr.strip()}")
        self._made.clear()
        if errors:
            raise NetnsError("could not delete namespaces: " + "; ".join(errors))
