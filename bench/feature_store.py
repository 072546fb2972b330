"""Feature Store's online store: GetRecord latency and PutRecord rate, next to DynamoDB GetItem/PutItem on
moto's server (the nearest peer for a keyed read and write) in the same run.

Each client is its own process (spawned), so client-side Python does not share a GIL with the
servers or with the other clients; the emulator runs as a subprocess (EmulatorServer), moto's server
in this process. Both get the same record shape (an id, an event time and 8 features).

Three views, because they answer different questions:
- latency, 1 client: one call at a time through boto3 (what a user sees) and as plain keep-alive HTTP
  (what the server costs), plus botocore alone against a canned answer (no server, no socket: the
  client's own per-call cost, which the boto3 figure includes).
- load, `--clients` clients: the same calls from several processes at once, and the PutRecord rate.
  With more client processes than cores, a boto3 call's latency is mostly the wait for a core:
  botocore spends about half a millisecond to a millisecond of CPU per call, and botocore alone (no
  server at all) is timed here too, as the control.
- the machine: its CPUs and load averages before and after, since the machine may be shared.
Targets (issue 17): GetRecord p50 < 2 ms; PutRecord requests/s >= moto's PutItem.

    python -m bench.feature_store [--seconds 5] [--clients 4] [--records 1000] [--runs 3]
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROLE, client, moto_server, options
from sagemaker_emulator.testing import EmulatorServer

GROUP, TABLE = "bench-features", "bench-features"
FEATURES = 8


def _record(i: int, event: float) -> list[dict[str, str]]:
    return ([{"FeatureName": "id", "ValueAsString": f"r{i}"}, {"FeatureName": "ts", "ValueAsString": repr(event)}]
            + [{"FeatureName": f"f{k}", "ValueAsString": str(i * k / 7)} for k in range(FEATURES)])


def _item(i: int, event: float) -> dict[str, Any]:
    return {"id": {"S": f"r{i}"}, "ts": {"N": repr(event)}} | {f"f{k}": {"N": str(i * k / 7)} for k in range(FEATURES)}


def _setup(emulator_url: str, moto_url: str, records: int) -> None:
    sm = client("sagemaker", emulator_url)
    sm.create_feature_group(
        FeatureGroupName=GROUP, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts", RoleArn=ROLE,
        FeatureDefinitions=[{"FeatureName": "id", "FeatureType": "String"},
                            {"FeatureName": "ts", "FeatureType": "Fractional"}]
        + [{"FeatureName": f"f{k}", "FeatureType": "Fractional"} for k in range(FEATURES)],
        OnlineStoreConfig={"EnableOnlineStore": True})
    while sm.describe_feature_group(FeatureGroupName=GROUP)["FeatureGroupStatus"] != "Created":
        time.sleep(0.1)
    dynamo = client("dynamodb", moto_url)
    dynamo.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    fs = client("sagemaker-featurestore-runtime", emulator_url)
    now = time.time()
    for i in range(records):
        fs.put_record(FeatureGroupName=GROUP, Record=_record(i, now))
        dynamo.put_item(TableName=TABLE, Item=_item(i, now))


_SCOPE = "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"


def _raw_calls(url: str) -> dict[str, Any]:
    """The same reads as plain keep-alive HTTP requests (no boto3 on the client side): what the server
    itself costs. Neither server checks signatures here (the emulator's default; moto's always)."""
    host, port = url.rsplit("/", 1)[-1].split(":")
    conn = http.client.HTTPConnection(host, int(port))

    def send(method: str, path: str, body: bytes | None, headers: dict[str, str]) -> None:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}")

    record = {"Authorization": _SCOPE.format("sagemaker")}
    item = {"Authorization": _SCOPE.format("dynamodb"), "X-Amz-Target": "DynamoDB_20120810.GetItem",
            "Content-Type": "application/x-amz-json-1.0"}
    return {
        "GetRecord (HTTP)": lambda i: send("GET", f"/FeatureGroup/{GROUP}?RecordIdentifierValueAsString=r{i}", None,
                                           record),
        "GetItem (HTTP)": lambda i: send("POST", "/", json.dumps({"TableName": TABLE, "Key": {"id": {"S": f"r{i}"}}})
                                         .encode(), item),
    }


def _answer_canned(api: Any) -> None:
    """Make `api` answer every call with a fixed GetRecord reply before anything is sent: what is left
    is botocore's own work per call (serialising, signing, hooks, parsing), without socket or server."""
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"Record": _record(1, 1.0)}).encode()

    class Raw:
        def stream(self, *args: Any, **kwargs: Any) -> Any:
            yield body

        def read(self, *args: Any, **kwargs: Any) -> bytes:
            return body

    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    api.meta.events.register("before-send", lambda request, **_: AWSResponse(request.url, 200, headers, Raw()))


def _worker(args: tuple[str, str, str, float, int, int]) -> tuple[list[float], float]:
    """One client: `op` against `url` until `stop` (a wall-clock time); the latencies in seconds and the
    CPU seconds this client spent on them."""
    op, url, kind, stop, records, seed = args
    service = "sagemaker-featurestore-runtime" if kind == "featurestore" else "dynamodb"
    api = client(service, url)
    if op == "GetRecord (botocore only)":
        _answer_canned(api)
        op = "GetRecord"
    calls = _raw_calls(url) | {
        "GetRecord": lambda i: api.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=f"r{i}"),
        "PutRecord": lambda i: api.put_record(FeatureGroupName=GROUP, Record=_record(i, time.time())),
        "GetItem": lambda i: api.get_item(TableName=TABLE, Key={"id": {"S": f"r{i}"}}),
        "PutItem": lambda i: api.put_item(TableName=TABLE, Item=_item(i, time.time())),
    }
    call = calls[op]
    for i in range(WARM_UP):  # connection set-up and first-call costs are not what is measured
        call(i)
    latencies, i = [], seed
    cpu = time.process_time()
    while time.time() < stop:
        t0 = time.perf_counter()
        call(i % records)
        latencies.append(time.perf_counter() - t0)
        i += 7
    return latencies, time.process_time() - cpu


WARM_UP = 20  # calls per client before the timed ones


def _process_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds (user + system) process `pid` has used so far, read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick
    return read


def _own_cpu() -> float:
    """CPU seconds of this process (moto's server threads; the main thread only waits meanwhile)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(pool: Any, op: str, url: str, server_cpu: Callable[[], float], seconds: float, clients: int,
             records: int) -> dict:
    """`clients` clients calling `op` for `seconds`: latencies, and the CPU each call cost the client
    (timed calls only) and the server (whole window, warm-up calls included)."""
    kind = "dynamodb" if op.startswith(("GetItem", "PutItem")) else "featurestore"
    load = os.getloadavg()[0]
    stop = time.time() + seconds + 2  # the warm-up runs inside the first 2 s
    before = server_cpu()
    results = pool.map(_worker, [(op, url, kind, stop, records, n) for n in range(clients)], chunksize=1)
    served = server_cpu() - before
    latencies = sorted(x for r, _ in results for x in r)
    return {"requests": len(latencies), "requests_per_second": round(len(latencies) / seconds, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 3),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3), "load_1m": round(load, 2),
            "client_cpu_ms_per_call": round(sum(cpu for _, cpu in results) / len(latencies) * 1000, 3),
            "server_cpu_ms_per_call": round(served / (len(latencies) + WARM_UP * clients) * 1000, 3)}


def _median(runs: list[dict]) -> dict:
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]} | {"runs": len(runs)}


def _compare(pool: Any, pairs: dict[str, str], servers: tuple[tuple[str, Callable[[], float]], ...], seconds: float,
             clients: int, records: int, runs: int) -> dict:
    """Each of our operations next to moto's, run after run alternately, so both see the same load;
    `servers`: the emulator's and moto's URL and CPU reading."""
    out = {}
    for ours, theirs in pairs.items():
        mine, baseline = [], []
        for _ in range(runs):
            mine.append(_measure(pool, ours, *servers[0], seconds, clients, records))
            if theirs:
                baseline.append(_measure(pool, theirs, *servers[1], seconds, clients, records))
        out[ours] = {"emulator": _median(mine)} | ({f"moto_server_{theirs}": _median(baseline)} if theirs else {})
    return out


def _loads() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(seconds: float, clients: int, records: int, runs: int) -> dict:
    out: dict[str, Any] = {"benchmark": "feature_store", "clients": clients, "seconds": seconds, "records": records,
                           "features_per_record": FEATURES + 2,
                           "machine": {"cpus": os.cpu_count(), "load_averages_before": _loads()}}
    context = multiprocessing.get_context("spawn")
    with moto_server() as moto_url, EmulatorServer() as emulator, context.Pool(clients) as pool:
        assert emulator.process is not None
        urls = ((emulator.endpoint_url, _process_cpu(emulator.process.pid)), (moto_url, _own_cpu))
        _setup(emulator.endpoint_url, moto_url, records)
        out["latency_1_client"] = _compare(
            pool, {"GetRecord": "GetItem", "GetRecord (HTTP)": "GetItem (HTTP)", "GetRecord (botocore only)": ""},
            urls, seconds, 1, records, runs)
        out[f"load_{clients}_clients"] = _compare(
            pool, {"GetRecord": "GetItem", "GetRecord (HTTP)": "GetItem (HTTP)", "GetRecord (botocore only)": "",
                   "PutRecord": "PutItem"},
            urls, seconds, clients, records, runs)
    out["machine"]["load_averages_after"] = _loads()
    one, many = out["latency_1_client"], out[f"load_{clients}_clients"]
    put = many["PutRecord"]
    out["targets"] = {
        "GetRecord p50 < 2 ms": {
            "boto3_1_client_p50_ms": one["GetRecord"]["emulator"]["p50_ms"],
            "met_1_client": one["GetRecord"]["emulator"]["p50_ms"] < 2,
            f"boto3_{clients}_clients_p50_ms": many["GetRecord"]["emulator"]["p50_ms"],
            f"met_{clients}_clients": many["GetRecord"]["emulator"]["p50_ms"] < 2,
            f"http_{clients}_clients_p50_ms": many["GetRecord (HTTP)"]["emulator"]["p50_ms"],
            "botocore_alone_1_client_p50_ms": one["GetRecord (botocore only)"]["emulator"]["p50_ms"],
            f"botocore_alone_{clients}_clients_p50_ms": many["GetRecord (botocore only)"]["emulator"]["p50_ms"]},
        "PutRecord requests/s >= moto PutItem": {
            "ratio": round(put["emulator"]["requests_per_second"] / put["moto_server_PutItem"]["requests_per_second"],
                           2),
            "met": put["emulator"]["requests_per_second"] >= put["moto_server_PutItem"]["requests_per_second"]}}
    return out


if __name__ == "__main__":
    print(json.dumps(run(**vars(options(__doc__, seconds=5.0, clients=4, records=1000, runs=3))), indent=2))
