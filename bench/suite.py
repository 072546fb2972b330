"""Every benchmark in one run: each figure next to the baseline measured in the same run.

Runs each benchmark module in its own process (one at a time, so they do not compete for the
machine), collects its JSON, and prints one document: the full results plus a summary of every
ratio and target. Exit status 1 if a benchmark crashed (missing a target is reported, not fatal).

    bench/run [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

# module -> (normal args, --quick args)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bench.api_throughput": (["--runs", "3"], ["--models", "200", "--seconds", "2", "--runs", "1"]),
    "bench.job_records": (["--jobs", "10000"], ["--jobs", "1000", "--calls", "50"]),
    "bench.training_latency": (["--runs", "5"], ["--runs", "2"]),
    "bench.invoke_latency": ([], ["--requests", "400", "--runs", "1"]),
    "bench.transform_throughput": (["--runs", "5"], ["--lines", "20000", "--runs", "2"]),
    "bench.standin_images": (["--runs", "3"], ["--no-build", "--runs", "1"]),
    "bench.s3_throughput": (["--runs", "3"], ["--size-mib", "256", "--keys", "20000", "--pages", "20", "--runs", "1"]),
    "bench.staging_throughput": (["--runs", "3"], ["--size-mib", "256", "--runs", "1"]),
    "bench.search_latency": (["--runs", "3"], ["--components", "1000", "--calls", "10", "--runs", "1"]),
    "bench.tuning": (["--runs", "2"], ["--runs", "1"]),
    "bench.feature_store": (["--runs", "3"], ["--seconds", "2", "--records", "200", "--runs", "1"]),
    "bench.pipeline_overhead": (["--runs", "2"], ["--runs", "1"]),
}


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The headline figures: ratio against the same-run baseline, and whether each target holds."""
    out: dict[str, Any] = {}
    api = results.get("bench.api_throughput")
    if api:
        for name, op in api["operations"].items():
            out[f"{name} requests/s vs moto server"] = {"ratio": op["ratio_vs_moto"], "target": ">= 1"}
    records = results.get("bench.job_records")
    if records:
        for name, op in records["operations"].items():
            target = 5 if name.startswith("Describe") else 20
            ms = op["emulator"]["p50_ms"]
            out[f"{name} p50 ms ({records['jobs']} jobs)"] = {
                "emulator": ms, "moto_server": op["moto_server"]["p50_ms"], "ratio": op["p50_ratio_vs_moto"],
                "target": f"< {target} ms", "met": ms < target}
    training = results.get("bench.training_latency")
    if training:
        out["training submit->Completed overhead s vs docker run"] = {
            "overhead": training["overhead_seconds"], "target": f"< {training['target_overhead_seconds']}",
            "met": training["overhead_seconds"] < training["target_overhead_seconds"]}
    invoke = results.get("bench.invoke_latency")
    if invoke:
        out["InvokeEndpoint p50 overhead ms vs direct"] = {
            "overhead": invoke["p50_overhead_ms"], "target": "< 1", "met": invoke["p50_overhead_ms"] < 1}
        out["InvokeEndpoint throughput vs direct"] = {
            "ratio": invoke["throughput_ratio"], "target": ">= 0.7", "met": invoke["throughput_ratio"] >= 0.7}
        deploy = invoke["create_endpoint_to_in_service_s"]
        out["CreateEndpoint->InService s"] = {"median": deploy["median"], "target": "< 2",
                                              "sdk_local_mode_reference": deploy["sdk_local_mode_reference"],
                                              "met": deploy["median"] < 2}
    transform = results.get("bench.transform_throughput")
    if transform:
        out["transform records/s vs direct"] = {"ratio": transform["ratio"], "target": ">= 0.8",
                                                "met": transform["ratio"] >= 0.8}
    standins = results.get("bench.standin_images")
    if standins:
        job = standins["script_mode_job"]
        out["script-mode job on the sklearn stand-in: overhead s vs docker run"] = {
            "overhead": job["overhead_seconds"], "target": f"<= {job['target_overhead_seconds']}",
            "met": job["overhead_seconds"] <= job["target_overhead_seconds"]}
        for image, figures in standins["builds"].items():
            out[f"{image} first build s / size MB"] = figures
    s3 = results.get("bench.s3_throughput")
    if s3:
        for op in ("put", "upload_file", "put_when_required", "put_lean", "upload_file_lean", "put_raw_http",
                   "put_fsync_mode", "get", "get_to_file", "download_file"):
            ratio = s3[f"{op}_ratio_vs_cp"]
            out[f"S3 {op} {s3['size_bytes'] >> 20} MiB throughput vs cp"] = {
                "ratio": ratio, "MBps": s3[f"{op}_MBps"], "cp_MBps": s3["cp_MBps"], "target": ">= 0.5",
                "met": ratio >= 0.5, "load_average_1m": s3["load_average_1m"][op]}
        floor = s3["physical_floor"]
        out["S3 single PUT ceiling on this machine: cp time / one core's MD5 time"] = {
            "ratio": floor["best_single_put_ratio_vs_cp"], "md5_MBps": s3["hash_md5_one_core_MBps"],
            "cp_MBps": s3["cp_MBps"]}
        out["S3 server RSS growth MB during PUT+GET"] = {"growth": s3["rss_growth_MB"], "target": "< 100",
                                                         "met": s3["rss_growth_MB"] < 100}
        listing = s3["list_objects_v2"]
        out[f"ListObjectsV2 1000-key page p50 ms ({listing['keys']} keys)"] = {
            "http": listing["page_p50_ms_http"], "boto3": listing["page_p50_ms_boto3"], "target": "< 50 (http)",
            "met": listing["page_p50_ms_http"] < 50}
    staging = results.get("bench.staging_throughput")
    if staging:
        out[f"File-mode staging of a {staging['channel_bytes'] >> 20} MiB channel: time vs cp"] = {
            "ratio": staging["staging_time_vs_cp"], "seconds": staging["staging_seconds"],
            "cp_seconds": staging["cp_seconds"], "target": "<= 2", "met": staging["staging_time_vs_cp"] <= 2,
            "load_average_1m": staging["load_average_1m"]["staging"]}
    search = results.get("bench.search_latency")
    if search:
        out[f"Search p50 ms ({search['components']} trial components, two filters)"] = {
            "emulator": search["emulator"]["p50_ms"], "moto_server": search["moto_server"].get("p50_ms"),
            "target": f"< {search['target_ms']} ms", "met": search["met"]}
    tuning = results.get("bench.tuning")
    if tuning:
        out[f"tuning {tuning['jobs']} jobs x{tuning['parallel']} wall s"] = {
            "wall": tuning["tuning_seconds"]["median"], "single_job": tuning["single_job_seconds"]["median"],
            "target": f"<= {tuning['target_seconds']}", "met": tuning["met"]}
    features = results.get("bench.feature_store")
    if features:
        get, put = features["GetRecord"], features["PutRecord"]
        out[f"GetRecord p50 ms ({features['clients']} clients)"] = {
            "emulator": get["emulator"]["p50_ms"], "moto_server_GetItem": get["moto_server_GetItem"]["p50_ms"],
            "emulator_plain_http": features["GetRecord (HTTP)"]["emulator"]["p50_ms"], "target": "< 2 ms",
            "met": features["targets"]["GetRecord p50 < 2 ms"]["met"]}
        out[f"PutRecord requests/s vs moto PutItem ({features['clients']} clients)"] = {
            "ratio": features["targets"]["PutRecord requests/s >= moto PutItem"]["ratio"],
            "emulator": put["emulator"]["requests_per_second"],
            "moto_server_PutItem": put["moto_server_PutItem"]["requests_per_second"], "target": ">= 1",
            "met": features["targets"]["PutRecord requests/s >= moto PutItem"]["met"]}
    pipeline = results.get("bench.pipeline_overhead")
    if pipeline:
        out[f"pipeline {pipeline['steps']}-step chain overhead s/step"] = {
            "overhead": pipeline["overhead_seconds_per_step"],
            "target": f"<= {pipeline['target_seconds_per_step']}", "met": pipeline["met"]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs (a smoke test)")
    parser.add_argument("--only", nargs="*", help="module names to run (default: all)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    timings: dict[str, float] = {}
    for module, (normal, quick) in BENCHMARKS.items():
        if args.only and module not in args.only and module.split(".")[-1] not in args.only:
            continue
        started = time.perf_counter()
        print(f"bench/run: {module} ...", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, "-m", module, *(quick if args.quick else normal)],
                              capture_output=True, text=True, timeout=900)
        timings[module] = round(time.perf_counter() - started, 1)
        try:
            results[module] = json.loads(done.stdout)
        except json.JSONDecodeError:
            failures[module] = (done.stderr or done.stdout)[-2000:]
    print(json.dumps({"benchmark": "suite", "quick": args.quick, "summary": summary(results),
                      "seconds": timings, "failures": failures, "results": results}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
