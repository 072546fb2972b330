"""S3 PUT and GET of a 1 GiB object vs `cp` of the same bytes on the same disk; the server's RSS
growth while it does so; ListObjectsV2 page latency over 100,000 keys.

Targets: PUT and GET throughput >= 0.5 x cp's, RSS growth < 100 MB, a 1,000-key ListObjectsV2
page p50 < 50 ms (measured over plain HTTP: the boto3 figure adds botocore's XML parsing, ~100+ ms
for 1,000 keys, on the client). cp copies in the kernel (copy_file_range) into the page cache and
does not fsync; a PUT must also MD5 every byte (the ETag; ~600 MB/s on one core) and fsync before
answering, so a userland copy + fsync of the same bytes is reported next to it. The object goes
through boto3 (put_object with a file body; get_object read and dropped, and read to a file), as a
user's would; cp copies the same file to the same disk in the same run. The 100,000
keys are written straight into the S3 store of a data dir (the same `S3Store.put` a PutObject
commits through, without fsync) before a server is started on it. Prints one JSON document.

    python -m bench.s3_throughput [--size-mib 1024] [--keys 100000] [--pages 50]
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import client, options
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


def make_file(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with open(path, "wb") as f:
        for i in range(size // CHUNK):
            f.write(block[i % 256:] + block[:i % 256])  # not one block repeated: no dedup anywhere
    os.sync()


def time_cp(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def time_userland_copy(source: Path, target: Path) -> float:
    """The same bytes through a process, 1 MiB at a time, fsync'ed (what any server must at least do;
    cp copies in the kernel with copy_file_range)."""
    started = time.perf_counter()
    buffer = bytearray(CHUNK)
    with open(source, "rb", buffering=0) as src, open(target, "wb", buffering=0) as dst:
        while count := src.readinto(buffer):
            dst.write(memoryview(buffer)[:count])
        os.fsync(dst.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def bench_object(work: Path, size: int, runs: int) -> dict:
    source = work / "source.bin"
    make_file(source, size)
    cp_times = [time_cp(source, work / "copy.bin") for _ in range(runs)]
    userland_times = [time_userland_copy(source, work / "copy.bin") for _ in range(runs)]
    put_times, get_times, get_file_times, growth = [], [], [], []
    with EmulatorServer(data_dir=work / "data") as server:
        s3 = client("s3", server.endpoint_url)
        s3.create_bucket(Bucket="bench")
        pid = server.process.pid
        for run in range(runs):
            with RssWatch(pid) as watch:
                with open(source, "rb") as body:
                    started = time.perf_counter()
                    s3.put_object(Bucket="bench", Key="big", Body=body)
                    put_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                reply = s3.get_object(Bucket="bench", Key="big")
                received = 0
                while data := reply["Body"].read(8 * CHUNK):  # the bytes as served, not written again
                    received += len(data)
                get_times.append(time.perf_counter() - started)
                assert received == size
                started = time.perf_counter()
                reply = s3.get_object(Bucket="bench", Key="big")
                with open(work / "download.bin", "wb") as out:
                    while data := reply["Body"].read(8 * CHUNK):
                        out.write(data)
                get_file_times.append(time.perf_counter() - started)
            growth.append(watch.peak - watch.start)
            if run == 0:
                assert (work / "download.bin").stat().st_size == size
            (work / "download.bin").unlink()
    source.unlink()
    mb = size / 1e6
    cp = statistics.median(cp_times)
    put, get = statistics.median(put_times), statistics.median(get_times)
    return {"size_bytes": size, "runs": runs,
            "cp_MBps": round(mb / cp, 1), "userland_copy_fsync_MBps": round(mb / statistics.median(userland_times), 1),
            "put_MBps": round(mb / put, 1), "get_MBps": round(mb / get, 1),
            "get_to_file_MBps": round(mb / statistics.median(get_file_times), 1),
            "put_ratio_vs_cp": round(cp / put, 3), "get_ratio_vs_cp": round(cp / get, 3),
            "put_ratio_vs_userland_copy_fsync": round(statistics.median(userland_times) / put, 3),
            "rss_growth_MB": round(max(growth) / 1e6, 1)}


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
            "full_listing_seconds": round(full, 2)}


def main() -> None:
    args = options(__doc__, size_mib=1024, runs=2, keys=100_000, pages=50)
    with tempfile.TemporaryDirectory(prefix="bench-s3-", dir=os.environ.get("BENCH_DIR")) as tmp:
        work = Path(tmp)
        result = {"benchmark": "s3_throughput", **bench_object(work, args.size_mib << 20, args.runs)}
        result["list_objects_v2"] = bench_listing(work, args.keys, args.pages)
    result["targets"] = {"put_ratio_vs_cp": ">= 0.5", "get_ratio_vs_cp": ">= 0.5", "rss_growth_MB": "< 100",
                         "list_page_p50_ms_http": "< 50"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
