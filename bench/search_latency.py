"""Search over 10,000 trial components with a two-filter expression: p50 latency, emulator vs moto's server.

Both servers get the same trial components, each associated with one of 100 trials, and the same
Search: the one the SDK's `Run` sends (`TrialComponentName Equals <name>` AND `Parents.TrialName
Equals <trial>`, 1 hit), timed alternately in this run. Target: p50 < 50 ms. Prints one JSON document.

    python -m bench.search_latency [--components 10000] [--calls 30] [--runs 3]
"""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import moto_server, options, sagemaker_client
from sagemaker_emulator.testing import EmulatorServer

TARGET_MS = 50
TRIALS = 100
EXPRESSION = {"Filters": [{"Name": "TrialComponentName", "Operator": "Equals", "Value": "bench-tc-05007"},
                          {"Name": "Parents.TrialName", "Operator": "Equals", "Value": "bench-trial-7"}]}


def _populate(url: str, count: int) -> None:
    def create(i: int) -> None:
        sm = clients[i % len(clients)]
        sm.create_trial_component(TrialComponentName=f"bench-tc-{i:05d}", DisplayName=f"group-{i % TRIALS}",
                                  Status={"PrimaryStatus": "Completed" if i % 2 == 0 else "InProgress"},
                                  Parameters={"lr": {"NumberValue": i / count}})
        sm.associate_trial_component(TrialComponentName=f"bench-tc-{i:05d}", TrialName=f"bench-trial-{i % TRIALS}")

    clients = [sagemaker_client(url, pool=8) for _ in range(4)]
    clients[0].create_experiment(ExperimentName="bench-experiment")
    for t in range(TRIALS):
        clients[0].create_trial(TrialName=f"bench-trial-{t}", ExperimentName="bench-experiment")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(count)))


def _latencies(url: str, calls: int) -> dict[str, Any]:
    sm = sagemaker_client(url)
    times, hits = [], None
    for _ in range(calls):
        t0 = time.perf_counter()
        reply = sm.search(Resource="ExperimentTrialComponent", SearchExpression=EXPRESSION, MaxResults=100)
        times.append(time.perf_counter() - t0)
        hits = len(reply["Results"])
    return {"p50_ms": round(statistics.median(times) * 1000, 2), "hits": hits}


def run(components: int, calls: int, runs: int) -> dict[str, Any]:
    with moto_server() as moto_url, EmulatorServer() as emulator:
        for url in (emulator.endpoint_url, moto_url):
            _populate(url, components)
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(_latencies(emulator.endpoint_url, calls))
            try:
                theirs.append(_latencies(moto_url, calls))
            except Exception as exc:  # moto's Search may not take the nested property
                theirs.append({"error": f"{type(exc).__name__}: {exc}"[:300]})
    p50 = statistics.median(r["p50_ms"] for r in ours)
    moto_p50 = [r["p50_ms"] for r in theirs if "p50_ms" in r]
    return {"benchmark": "search_latency", "components": components, "expression": EXPRESSION,
            "emulator": {"p50_ms": p50, "hits": ours[-1]["hits"], "runs": len(ours)},
            "moto_server": ({"p50_ms": statistics.median(moto_p50), "hits": theirs[-1].get("hits")} if moto_p50
                            else theirs[-1]),
            "target_ms": TARGET_MS, "met": p50 < TARGET_MS}


def main() -> None:
    args = options(__doc__, components=10000, calls=30, runs=3)
    print(json.dumps(run(args.components, args.calls, args.runs), indent=2))


if __name__ == "__main__":
    main()
