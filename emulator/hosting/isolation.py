"""EnableNetworkIsolation for serving containers (endpoints, batch transform).

On AWS an isolated model's containers make no network calls at all. Docker's `internal` networks do
not give that: their containers keep a route to the host (the bridge's address), so host services
stay reachable. An isolated serving container therefore runs with no network at all (`network_mode
none`: only its loopback), and the emulator reaches its serving port through a relay:

    emulator --TCP--> outer gateway (default bridge, publishes the ports)
             --Unix socket in a shared volume--> inner gateway (in the serving container's
             network namespace) --TCP 127.0.0.1--> the serving container

Both gateways are the offline base image running the small forwarder below. The serving container
can open no connection anywhere; the inner gateway only ever connects to its loopback, the outer
one only to the sockets. The cost is two local hops on invocations of isolated models only, and it
works on a remote engine too (named volumes, no host paths).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from sagemaker_emulator.runtime.interface import Address, ContainerHandle, ContainerRuntime, ContainerSpec

BASE_IMAGE = os.environ.get("SAGEMAKER_EMULATOR_BASE_IMAGE", "sagemaker-emulator-base:py311")
SOCKETS = "/run/sm-isolation"
ROLE_LABEL = "sagemaker-emulator.role"

# routes: [[listen, connect], ...], each end ["tcp", host, port] or ["unix", path]; every accepted
# connection is piped to a new connection to its target, both ways.
_FORWARDER = r"""
import json, os, socket, sys, threading
def endpoint(spec):
    if spec[0] == "unix":
        return socket.AF_UNIX, spec[1]
    return socket.AF_INET, (spec[1], int(spec[2]))
def pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
def serve(listen, target):
    family, address = endpoint(listen)
    server = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        if os.path.exists(address):
            os.unlink(address)
    else:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(address)
    server.listen(128)
    family, address = endpoint(target)
    while True:
        client, _ = server.accept()
        upstream = socket.socket(family, socket.SOCK_STREAM)
        try:
            upstream.connect(address)
        except OSError:
            client.close()
            upstream.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()
for listen, target in json.loads(sys.argv[1]):
    threading.Thread(target=serve, args=(listen, target), daemon=True).start()
print("isolation gateway:", sys.argv[1], flush=True)
threading.Event().wait()
"""


@dataclass
class IsolatedInstance:
    """One isolated instance's shared socket volume and gateways; `address_of` a container's port."""

    volume: str
    gateways: list[ContainerHandle] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)  # serving container name -> outer gateway port

    def serving_spec(self, spec: ContainerSpec) -> ContainerSpec:
        """A serving container's spec, isolated: no network at all, nothing published."""
        spec.network_disabled, spec.network, spec.ports = True, None, []
        return spec

    def attach(self, runtime: ContainerRuntime, serving: ContainerHandle, name: str, port: int,
               labels: dict[str, str]) -> None:
        """The inner gateway of one started serving container: its loopback port <-> a socket."""
        route = [["unix", f"{SOCKETS}/{name}.sock"], ["tcp", "127.0.0.1", port]]
        self._gateway(runtime, ContainerSpec(image=BASE_IMAGE, network=f"container:{serving.id}"), [route], labels)

    def open(self, runtime: ContainerRuntime, names: list[str], labels: dict[str, str]) -> None:
        """The outer gateway: a published TCP port per serving container, to that container's socket."""
        self.ports = {name: 9000 + index for index, name in enumerate(names)}
        routes = [[["tcp", "0.0.0.0", port], ["unix", f"{SOCKETS}/{name}.sock"]] for name, port in self.ports.items()]
        self._gateway(runtime, ContainerSpec(image=BASE_IMAGE, ports=list(self.ports.values())), routes, labels)

    def address_of(self, runtime: ContainerRuntime, name: str) -> Address:
        return runtime.address(self.gateways[-1], self.ports[name])

    def _gateway(self, runtime: ContainerRuntime, spec: ContainerSpec, routes: list, labels: dict[str, str]) -> None:
        spec.entrypoint, spec.command = ["python3", "-c", _FORWARDER], [json.dumps(routes)]
        spec.labels = {**labels, ROLE_LABEL: "isolation-gateway"}
        spec.shared_volumes = {self.volume: SOCKETS}
        self.gateways.append(runtime.run(spec))

    def remove(self, runtime: ContainerRuntime) -> None:
        """The gateways, then the socket volume (the serving containers are removed by the fleet first)."""
        for handle in reversed(self.gateways):
            runtime.remove(handle)
        self.gateways = []
        runtime.remove_volume(self.volume)


def for_instance(instance_id: str) -> IsolatedInstance:
    return IsolatedInstance(f"sm-isolated-{instance_id}")
