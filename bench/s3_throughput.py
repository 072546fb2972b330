"""S3 PUT and GET of a 1 GiB object vs `cp` of the same bytes on the same disk; the server's RSS
growth while it does so; ListObjectsV2 page latency over 100,000 keys.

Targets: PUT and GET throughput >= 0.5 x cp's, RSS growth < 100 MB, a 1,000-key ListObjectsV2
page p50 < 50 ms (measured over plain HTTP: the boto3 figure adds botocore's XML parsing, ~100+ ms
for 1,000 keys, on the client). cp copies in the kernel (copy_file_range) into the page cache and
does not fsync. A PUT must also MD5 every byte (the ETag; ~600 MB/s on one core); by default the
server does not fsync either (an acknowledged object survives kill -9 of the server); a second
server in `--s3-fsync` mode (survives a power cut) is measured beside it, with a userland copy +
fsync of the same bytes as its baseline. The object goes through boto3 as a user's would
(put_object with a file body, upload_file; get_object read and dropped, read to a file,
download_file) with boto3's defaults, then with its client-side hashing configured away
(LEAN_CLIENT), and the PUT also as bare HTTP, which shows what boto3 itself costs. One core's MD5,
SHA-256 and CRC32 of the same bytes are timed in the same runs: MD5 bounds any single PUT. Every figure
is the median of `--runs` interleaved runs, each with the load average when it started (the
machine is shared). The 100,000 keys are written straight into the S3 store of a data dir (the
same `S3Store.put` a PutObject commits through) before a server is started on it. Prints one JSON
document.

    python -m bench.s3_throughput [--size-mib 1024] [--runs 3] [--keys 100000] [--pages 50]
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config as BotoConfig

from bench.common import Timings, client, make_file, options
from sagemaker_emulator.testing import EmulatorServer

CHUNK = 1 << 20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class RssWatch:
    """The largest RSS of `pid` seen while the block runs (sampled every 20 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def __enter__(self) -> RssWatch:
        self.start = rss_bytes(self.pid)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


def time_cp(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def time_userland_copy(source: Path, target: Path) -> float:
    """The same bytes through a process, 1 MiB at a time, fsync'ed (what a server in fsync mode must
    at least do; cp copies in the kernel with copy_file_range)."""
    started = time.perf_counter()
    buffer = bytearray(CHUNK)
    with open(source, "rb", buffering=0) as src, open(target, "wb", buffering=0) as dst:
        while count := src.readinto(buffer):
            dst.write(memoryview(buffer)[:count])
        os.fsync(dst.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def raw_put(url: str, path: str, source: Path) -> None:
    """A PUT of the file as bare HTTP, its body sent by the kernel (sendfile): no signing, no checksum,
    nothing computed on the client. What the server alone costs."""
    address = urlparse(url)
    size = source.stat().st_size
    with socket.create_connection((address.hostname, address.port)) as sock, open(source, "rb") as body:
        sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Length: {size}\r\n\r\n".encode())
        sock.sendfile(body)
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def read_object(s3: Any, key: str, size: int, out: Path | None = None) -> None:
    reply = s3.get_object(Bucket="bench", Key=key)
    received = 0
    with open(out or os.devnull, "wb") as sink:
        while data := reply["Body"].read(8 * CHUNK):
            received += len(data)
            if out is not None:
                sink.write(data)
    assert received == size


# What a user can set on a boto3 client to stop it hashing the body before sending it over http://
# (botocore 1.36+: a CRC32 header checksum by default; SigV4 SHA-256 of the payload, always over http).
LEAN_CLIENT = {"request_checksum_calculation": "when_required", "s3": {"payload_signing_enabled": False}}


def put_steps(server: Any, source: Path) -> dict[str, Callable[[], None]]:
    """PUT of the file, as users send it (boto3's defaults: `put`, `upload_file`), with the client's
    own hashing configured away (`*_when_required`: no CRC32; `*_lean`: no CRC32 and no SHA-256,
    LEAN_CLIENT), and as bare HTTP (what the client adds is the difference)."""
    s3 = client("s3", server.endpoint_url)

    def configured(**settings: Any) -> Any:
        return boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="bench", aws_secret_access_key="bench",
                            config=BotoConfig(retries={"max_attempts": 1}, **settings))

    required, lean = configured(request_checksum_calculation="when_required"), configured(**LEAN_CLIENT)

    def put(with_client: Any) -> Callable[[], None]:
        def step() -> None:
            with open(source, "rb") as body:
                with_client.put_object(Bucket="bench", Key="big", Body=body)
        return step

    return {"put": put(s3), "put_when_required": put(required), "put_lean": put(lean),
            "put_raw_http": lambda: raw_put(server.endpoint_url, "/bench/big", source),
            "upload_file": lambda: s3.upload_file(str(source), "bench", "big"),
            "upload_file_lean": lambda: lean.upload_file(str(source), "bench", "big")}


def hash_seconds(source: Path, name: str) -> float:
    """One core's time to hash the file's bytes (read from the page cache, 1 MiB at a time): MD5 is
    what the server must do for a PUT's ETag; CRC32 and SHA-256 are what boto3 does before sending."""
    import hashlib
    import zlib

    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    started = time.perf_counter()
    if name == "crc32":
        value = 0
        with open(source, "rb", buffering=0) as src:
            while count := src.readinto(buffer):
                value = zlib.crc32(view[:count], value)
    else:
        hasher = hashlib.new(name)
        with open(source, "rb", buffering=0) as src:
            while count := src.readinto(buffer):
                hasher.update(view[:count])
    return time.perf_counter() - started


def bench_object(work: Path, size: int, runs: int) -> dict:
    source = work / "source.bin"
    make_file(source, size)
    timings = Timings()
    growth = []
    with EmulatorServer(data_dir=work / "data") as server, \
            EmulatorServer(data_dir=work / "data-fsync", extra_args=["--s3-fsync"]) as synced:
        s3 = client("s3", server.endpoint_url)
        for each in (server, synced):
            client("s3", each.endpoint_url).create_bucket(Bucket="bench")
        puts = put_steps(server, source)
        synced_put = put_steps(synced, source)["put"]
        for _ in range(runs):  # interleaved, so that a change of load hits every figure alike
            timings.time("cp", lambda: time_cp(source, work / "copy.bin"))
            timings.time("userland_copy_fsync", lambda: time_userland_copy(source, work / "copy.bin"))
            for algorithm in ("md5", "sha256", "crc32"):
                timings.time(f"hash_{algorithm}_one_core", lambda a=algorithm: hash_seconds(source, a))
            with RssWatch(server.process.pid) as watch:
                for name, step in puts.items():
                    timings.time(name, step)
                timings.time("get", lambda: read_object(s3, "big", size))
                timings.time("get_to_file", lambda: read_object(s3, "big", size, work / "download.bin"))
                (work / "download.bin").unlink()
                timings.time("download_file", lambda: s3.download_file("bench", "big", str(work / "download.bin")))
                assert (work / "download.bin").stat().st_size == size
                (work / "download.bin").unlink()
            growth.append(watch.peak - watch.start)
            timings.time("put_fsync_mode", synced_put)
    source.unlink()
    mb = size / 1e6
    cp = timings.median("cp")
    result: dict[str, Any] = {"size_bytes": size, "runs": runs, "cp_MBps": round(mb / cp, 1)}
    for name in timings.seconds:
        if name != "cp":
            result[f"{name}_MBps"] = round(mb / timings.median(name), 1)
            if not name.startswith("hash_"):
                result[f"{name}_ratio_vs_cp"] = round(cp / timings.median(name), 3)
    result["put_fsync_mode_ratio_vs_userland_copy_fsync"] = round(
        timings.median("userland_copy_fsync") / timings.median("put_fsync_mode"), 3)
    put, raw = timings.median("put"), timings.median("put_raw_http")
    result["put_client_share"] = {
        "seconds_boto3_put_object": round(put, 3), "seconds_bare_http_put": round(raw, 3),
        "client_seconds": round(put - raw, 3), "client_fraction": round((put - raw) / put, 3),
        "why": "boto3 over http:// reads the body three times before and while sending it: a CRC32 "
               "(request_checksum_calculation=when_supported, the default; put_when_required skips it) and a "
               "SHA-256 for the SigV4 payload hash (over plain HTTP unless s3.payload_signing_enabled=False), then "
               "sends it (about 8,200 sendall calls per GiB); put_lean skips both"}
    md5 = timings.median("hash_md5_one_core")
    result["physical_floor"] = {
        "md5_seconds": round(md5, 3), "cp_seconds": round(cp, 3),
        "best_single_put_ratio_vs_cp": round(cp / md5, 3),
        "why": "a single PUT's ETag is the MD5 of its body, which is serial (one core): no server can answer "
               "a single PUT faster than one core MD5s it, so best_single_put_ratio_vs_cp is the ceiling of "
               "put*_ratio_vs_cp on this machine whatever the server does (upload_file's parts are MD5'd "
               "on several threads, but the client's own hashing and sending share the same cores)"}
    result["lean_client_config"] = {
        "botocore.config.Config": LEAN_CLIENT,
        "effect": "no CRC32 header checksum (request_checksum_calculation='when_required') and UNSIGNED-PAYLOAD "
                  "instead of the SHA-256 of the body (s3.payload_signing_enabled=False, honoured over http://)"}
    result["rss_growth_MB"] = round(max(growth) / 1e6, 1)
    result.update(timings.report())
    return result


def populate(data_dir: Path, keys: int) -> None:
    from sagemaker_emulator.aws.s3.store import S3Store

    store = S3Store(data_dir / "s3")
    store.create_bucket("listing", "us-east-1", {})
    for index in range(keys):
        temp = store.temp_path()
        body = f"object {index}".encode()
        temp.write_bytes(body)
        file = store.install_object_file(temp)
        store.put("listing", f"data/{index % 100:02d}/part-{index:06d}.txt", "null", size=len(body),
                  etag='"0"', file=file, keep_history=False)
    store.close()


def bench_listing(work: Path, keys: int, pages: int) -> dict:
    data_dir = work / "listing-data"
    populate(data_dir, keys)
    with EmulatorServer(data_dir=data_dir) as server:
        s3 = client("s3", server.endpoint_url)
        first = s3.list_objects_v2(Bucket="listing")  # warm up
        assert first["KeyCount"] == 1000 and first["IsTruncated"]
        all_keys = sorted(f"data/{i % 100:02d}/part-{i:06d}.txt" for i in range(keys))
        boto_ms, http_ms = [], []
        rng = random.Random(7)
        for _ in range(pages):
            after = rng.choice(all_keys[:-1000])  # a full page of 1,000 keys follows every choice
            started = time.perf_counter()
            page = s3.list_objects_v2(Bucket="listing", StartAfter=after, MaxKeys=1000)
            boto_ms.append((time.perf_counter() - started) * 1000)
            assert page["KeyCount"] == 1000 and page["Contents"][0]["Key"] > after
            url = f"{server.endpoint_url}/listing?list-type=2&max-keys=1000&start-after={after}"
            started = time.perf_counter()
            with urllib.request.urlopen(url) as reply:
                reply.read()
            http_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        listed = sum(p["KeyCount"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="listing"))
        full = time.perf_counter() - started
        assert listed == keys
    return {"keys": keys, "pages": pages, "page_p50_ms_boto3": round(statistics.median(boto_ms), 2),
            "page_p50_ms_http": round(statistics.median(http_ms), 2),
            "full_listing_seconds": round(full, 2), "load_average_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    args = options(__doc__, size_mib=1024, runs=3, keys=100_000, pages=50)
    with tempfile.TemporaryDirectory(prefix="bench-s3-", dir=os.environ.get("BENCH_DIR")) as tmp:
        work = Path(tmp)
        result = {"benchmark": "s3_throughput", **bench_object(work, args.size_mib << 20, args.runs)}
        result["list_objects_v2"] = bench_listing(work, args.keys, args.pages)
    result["targets"] = {"put_ratio_vs_cp": ">= 0.5", "get_ratio_vs_cp": ">= 0.5", "get_to_file_ratio_vs_cp": ">= 0.5",
                         "rss_growth_MB": "< 100", "list_page_p50_ms_http": "< 50"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
