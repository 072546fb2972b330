"""Run the containers of one job (`algo-1` ... `algo-N`) and wait for them like SageMaker does.

Training and processing jobs share this: a private network on which every host resolves the
others by name, containers started through the workspace (their files copied in, or bind-mounted),
one log stream per host, a stop request or a runtime limit turned into SIGTERM then SIGKILL after a
grace period, and the job ending when every host has exited (or as soon as one fails, the others
then being stopped); `collect` brings each host's outputs back. Nothing is left behind: `teardown`
removes the containers (with their volumes) and the network whatever happened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sagemaker_emulator.runtime.interface import ContainerHandle, ContainerRuntime, ContainerSpec
from sagemaker_emulator.runtime.workspace import BindWorkspace, Workspace

from .logsink import LogSink

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2


@dataclass
class Member:
    """One host of the job."""

    host: str
    spec: ContainerSpec
    make_sink: Callable[[float], LogSink]  # called with the container's start time
    outputs: list[str] = field(default_factory=list)  # container paths (mount points) brought back by `collect`
    handle: ContainerHandle | None = None
    sink: LogSink | None = None
    log_thread: threading.Thread | None = None
    exit_code: int | None = None


@dataclass
class Outcome:
    """How the job's containers ended."""

    reason: str  # "exited" | "stopped" | "timeout"
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    @property
    def failed_hosts(self) -> list[str]:
        return [host for host, code in self.exit_codes.items() if code not in (0, None)]


class Cluster:
    def __init__(self, runtime: ContainerRuntime, members: list[Member], labels: dict[str, str],
                 network_name: str | None = None, internal_network: bool = False,
                 workspace: Workspace | None = None) -> None:
        self.runtime = runtime
        self.workspace = workspace or BindWorkspace(runtime)
        self.members = members
        self.labels = labels
        self.network_name = network_name
        self.internal_network = internal_network
        self._network_created = False

    def start(self) -> None:
        """Create the network, then start every container and follow its output."""
        if self.network_name:
            addresses = self.runtime.create_network(self.network_name, labels=self.labels,
                                                    internal=self.internal_network, addresses=len(self.members))
            self._network_created = True
            # fixed addresses in every host's /etc/hosts: algo-1 resolves algo-N before algo-N has started
            hosts = {member.host: address for member, address in zip(self.members, addresses, strict=True)}
            for member in self.members:
                member.spec.ip_address = hosts[member.host]
                member.spec.extra_hosts = {host: address for host, address in hosts.items() if host != member.host}
        for member in self.members:
            member.handle = self.workspace.start(member.spec)
            self._follow(member, time.time())

    def adopt(self, handles: dict[str, ContainerHandle], since: dict[str, float]) -> None:
        """Take over containers a previous emulator process started (after a restart)."""
        self._network_created = bool(self.network_name)
        for member in self.members:
            member.handle = handles.get(member.host)
            if member.handle is not None:
                self._follow(member, since.get(member.host, time.time()), since=since.get(member.host))

    def _follow(self, member: Member, started: float, since: float | None = None) -> None:
        member.sink = member.make_sink(started)
        assert member.handle is not None
        member.log_thread = self.runtime.stream_logs(member.handle, member.sink.write, since=since)

    def wait(self, stop: threading.Event, deadline: float | None, grace: float | Callable[[], float]) -> Outcome:
        """Block until every host exits, a host fails, `stop` is set, or `deadline` passes.

        `grace` may be a callable, read when the stop happens (a server shutdown shortens it).
        """
        grace_now = grace if callable(grace) else (lambda: grace)
        reason = "exited"
        while True:
            running = []
            for member in self.members:
                if member.exit_code is None and member.handle is not None:
                    member.exit_code = self.runtime.wait(member.handle, timeout=0)
                    if member.exit_code is None:
                        running.append(member)
            if not running:
                break
            if any(m.exit_code not in (0, None) for m in self.members):
                self.stop_all(grace_now())  # one host failed: the job has failed, stop the others
                break
            if stop.is_set():
                reason = "stopped"
                self.stop_all(grace_now())
                break
            if deadline is not None and time.time() >= deadline:
                reason = "timeout"
                self.stop_all(grace_now())
                break
            stop.wait(POLL_SECONDS)
        for member in self.members:
            if member.exit_code is None and member.handle is not None:
                member.exit_code = self.runtime.wait(member.handle, timeout=grace_now() + 30)
        for member in self.members:  # drain the last lines before anyone quotes them
            if member.log_thread is not None:
                member.log_thread.join(10)
        return Outcome(reason, {m.host: m.exit_code for m in self.members})

    def collect(self, paths: Callable[[Member], list[str]] | None = None) -> None:
        """Bring every host's outputs (or `paths(member)`) back into its host directories (workspace)."""
        for member in self.members:
            if member.handle is not None:
                self.workspace.collect(member.handle, member.spec, paths(member) if paths else member.outputs)

    def last_lines(self, host: str, count: int = 5) -> str:
        """The host's last log lines, joined with " | " (for failure reasons that quote the log)."""
        for member in self.members:
            if member.host == host and member.sink is not None:
                lines = member.sink.recent(count)
                return " | ".join(line.strip() for line in lines if line.strip())
        return ""

    def stop_all(self, grace: float) -> None:
        """SIGTERM every running host at once, SIGKILL after `grace` seconds."""
        threads = [threading.Thread(target=self.runtime.stop, args=(m.handle, grace), daemon=True)
                   for m in self.members if m.handle is not None and m.exit_code is None]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def teardown(self) -> None:
        """Remove containers and network, flush logs. Safe to call more than once."""
        for member in self.members:
            if member.log_thread is not None:  # the last lines are read before the container goes
                member.log_thread.join(10)
            if member.handle is not None:
                try:
                    self.runtime.remove(member.handle)
                except Exception:
                    log.exception("could not remove container of %s", member.host)
            if member.sink is not None:
                member.sink.close()
        if self._network_created and self.network_name:
            try:
                self.runtime.remove_network(self.network_name)
            except Exception:
                log.exception("could not remove network %s", self.network_name)
            self._network_created = False
