"""Run moto's own SageMaker tests (server mode) against the emulator, record-only or with real execution.

Why: issue 17 measures the long-tail layer by moto's `tests/test_sagemaker*`. This makes the measurement
reproducible: the emulator starts with `--execution none` (record-only, the default here) or
`--execution docker` (jobs and endpoints really run) on a free loopback port and a throw-away data dir,
moto's tests are extracted from the local mirror into a temp dir (never into this repository), pytest runs
them with `TEST_SERVER_MODE=true`, and the counts plus one line per failure go to
build/moto-<suite>-suite-<mode>.json and .md. Everything temporary is removed afterwards (with Docker,
the emulator's shutdown removes its containers). `--suite s3` runs moto's tests/test_s3 instead (issue 12:
the S3 data plane against moto's own S3 tests).

    scripts/moto-sagemaker-suite [--suite sagemaker|s3] [--execution none|docker] [--mirror GITDIR] [--rev REV]
                                 [-k EXPR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIRROR = Path("/work/.mirror/getmoto+moto/repo")
COMMON = ["tests/__init__.py", "tests/conftest.py", "tests/markers.py"]
# What each suite runs (the tests' own folders), and what else its modules import.
SUITES = {
    "sagemaker": (["tests/test_sagemaker", "tests/test_sagemakermetrics", "tests/test_sagemakerruntime"], []),
    # issue 12: S3 on disk must pass as many of moto's S3 tests as moto's own server does
    "s3": (["tests/test_s3"], ["tests/test_awslambda"]),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def extract(mirror: Path, rev: str, dest: Path, paths: list[str]) -> None:
    """`git archive` of moto's test folders into dest (only those paths the revision has)."""
    tree = subprocess.run(["git", "--git-dir", str(mirror), "ls-tree", "--name-only", rev, "tests/"],
                          check=True, capture_output=True, text=True).stdout.split()
    wanted = [p for p in paths if p in tree]
    data = subprocess.run(["git", "--git-dir", str(mirror), "archive", rev, *wanted],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"emulator exited early with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_emulator/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("emulator did not become healthy")


def reason(case: ET.Element) -> tuple[str, str] | None:
    """(outcome, one-line reason) for a failed/errored case; None when it passed or was skipped."""
    for tag in ("failure", "error"):
        node = case.find(tag)
        if node is not None:
            text = (node.get("message") or node.text or "").strip().splitlines()
            return tag, (text[0] if text else "")[:300]
    return None


def summarise(junit: Path) -> dict:
    tree = ET.parse(junit)
    counts: Counter[str] = Counter()
    failures = []
    for case in tree.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("skipped") is not None:
            counts["skipped"] += 1
            continue
        bad = reason(case)
        if bad is None:
            counts["passed"] += 1
        else:
            counts["failed" if bad[0] == "failure" else "errors"] += 1
            failures.append({"test": name, "reason": bad[1]})
    total = sum(counts.values())
    return {"total": total, **{k: counts.get(k, 0) for k in ("passed", "failed", "errors", "skipped")},
            "failures": failures}


def write_reports(result: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"moto-{result['suite']}-suite-{result['execution']}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# moto's {result['suite']} tests against `--execution {result['execution']}` (moto {result['rev']})", "",
             f"total {result['total']}, passed {result['passed']}, failed {result['failed']}, "
             f"errors {result['errors']}, skipped {result['skipped']}", ""]
    lines += [f"- `{f['test']}`: {f['reason']}" for f in result["failures"]]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    return out / f"{stem}.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execution", choices=("none", "docker"), default="none",
                        help="none = record-only, docker = real containers (default %(default)s)")
    parser.add_argument("--suite", choices=sorted(SUITES), default="sagemaker",
                        help="which of moto's test folders (default %(default)s)")
    parser.add_argument("--mirror", type=Path, default=MIRROR, help="moto's bare git dir (default %(default)s)")
    parser.add_argument("--rev", default="HEAD", help="moto revision (default %(default)s)")
    parser.add_argument("-k", default=None, help="pytest -k expression")
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="report folder (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (tests, data dir, server log)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="moto-sagemaker-suite-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = None
    try:
        tests, imported = SUITES[args.suite]
        extract(args.mirror, args.rev, work / "moto", COMMON + tests + imported)
        log = open(work / "server.log", "wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "sagemaker_emulator.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(work / "data"), "--execution", args.execution, "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_healthy(url, server)
        env = {**os.environ, "TEST_SERVER_MODE": "true", "TEST_SERVER_MODE_ENDPOINT": url,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        junit = work / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "-o", "addopts=", f"--junitxml={junit}", "--rootdir", str(work / "moto"),
               *[p for p in tests if (work / "moto" / p).exists()]]
        if args.k:
            cmd += ["-k", args.k]
        subprocess.run(cmd, cwd=work / "moto", env=env, check=False)
        rev = subprocess.run(["git", "--git-dir", str(args.mirror), "rev-parse", "--short", args.rev],
                             capture_output=True, text=True).stdout.strip()
        result = {"rev": rev, "suite": args.suite, "execution": args.execution, **summarise(junit)}
        report = write_reports(result, args.out)
        print(f"passed {result['passed']} / {result['total']} (failed {result['failed']}, errors "
              f"{result['errors']}, skipped {result['skipped']}); report: {report}")
        return 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
