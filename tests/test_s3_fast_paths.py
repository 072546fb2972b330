"""The S3 data plane's fast paths keep their promises: a body hashed on parallel threads gets the
right MD5 and checksum (and a wrong one is refused, leaving nothing), fsync happens in fsync mode
only, and File-mode staging from our own S3 copies in-process yet answers like GetObject."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import zlib
from pathlib import Path

import pytest

from sagemaker_emulator.aws.s3 import bodies
from sagemaker_emulator.aws.s3.errors import S3Error
from sagemaker_emulator.aws.s3.store import S3Store
from sagemaker_emulator.jobs.data import JobData
from sagemaker_emulator.runtime.fake import FakeRuntime
from sagemaker_emulator.staging import StagingError
from sagemaker_emulator.testing.inprocess import InProcessServer


def _environ(body: bytes) -> dict:
    return {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}


def _crc32(body: bytes) -> str:
    return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_receive_hashes_every_byte_on_its_threads(tmp_path: Path, algorithm: str) -> None:
    body = os.urandom((9 << 20) + 12345)  # more chunks than the ring holds, and a short last one
    expected = _crc32(body) if algorithm == "CRC32" else base64.b64encode(hashlib.sha256(body).digest()).decode()
    received = bodies.receive(_environ(body), {}, tmp_path / "body", algorithm=algorithm, expected=expected)
    assert received.md5 == hashlib.md5(body).digest()
    assert received.checksums == {algorithm: expected}
    assert received.size == len(body) and (tmp_path / "body").read_bytes() == body
    assert not [t for t in threading.enumerate() if t.name == "s3-digest"]


def test_receive_refuses_a_wrong_checksum_and_keeps_nothing(tmp_path: Path) -> None:
    body = os.urandom(3 << 20)
    with pytest.raises(S3Error) as exc:
        bodies.receive(_environ(body), {}, tmp_path / "body", algorithm="CRC32", expected=_crc32(b"other"))
    assert exc.value.code == "BadDigest"
    assert not (tmp_path / "body").exists()


def test_receive_fsyncs_in_fsync_mode_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(bodies.os, "fsync", synced.append)
    body = os.urandom(20 << 20)
    bodies.receive(_environ(body), {}, tmp_path / "a")
    assert synced == []
    bodies.receive(_environ(body), {}, tmp_path / "b", fsync=True)
    assert len(synced) == 1
    assert (tmp_path / "b").read_bytes() == body


@pytest.mark.parametrize("fsync, level", [(False, 1), (True, 2)])  # NORMAL, FULL
def test_store_commits_durably_as_configured(tmp_path: Path, fsync: bool, level: int) -> None:
    store = S3Store(tmp_path / "s3", fsync=fsync)
    try:
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == level
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()


def test_staging_reads_our_own_s3_in_process(tmp_path: Path) -> None:
    with InProcessServer(FakeRuntime(), data_dir=tmp_path / "data") as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="channel")
        body = os.urandom((3 << 20) + 7)
        s3.put_object(Bucket="channel", Key="train/big.bin", Body=body)
        s3.put_object(Bucket="channel", Key="train/empty.bin", Body=b"")
        s3.put_object(Bucket="channel", Key="train/a b%20?#ü+.bin", Body=b"odd key")
        s3.put_object(Bucket="channel", Key="cold/archived.bin", Body=b"frozen", StorageClass="GLACIER")
        store = JobData(server.services, server.region).store
        gets: list[str] = []
        store.s3.meta.events.register("before-call.s3.GetObject", lambda **kw: gets.append(kw["params"]["url_path"]))
        embedded = server.services.embedded_s3

        target = tmp_path / "job" / "train"
        target.mkdir(parents=True)
        assert store.get_file("s3://channel/train/big.bin", target / "big.bin") == len(body)
        assert (target / "big.bin").read_bytes() == body
        assert store.get_file("s3://channel/train/empty.bin", target / "empty.bin") == 0
        assert (target / "empty.bin").read_bytes() == b""
        assert store.get_file("s3://channel/train/a b%20?#ü+.bin", target / "odd.bin") == 7
        assert (target / "odd.bin").read_bytes() == b"odd key"
        assert gets == []  # none went over HTTP

        with open(tmp_path / "sink", "wb") as sink:  # what GetObject would refuse, the fast path leaves to HTTP
            assert embedded.copy_object_to("channel", "train/missing", sink.fileno(), server.region) is None
            assert embedded.copy_object_to("nobucket", "x", sink.fileno(), server.region) is None
            assert embedded.copy_object_to("channel", "cold/archived.bin", sink.fileno(), server.region) is None
        assert (tmp_path / "sink").stat().st_size == 0
        with pytest.raises(StagingError, match="cold/archived.bin"):
            store.get_file("s3://channel/cold/archived.bin", target / "archived.bin")
        assert gets == ["/cold/archived.bin"]  # the key (the bucket is the host or prefix)
        assert sorted(p.name for p in target.iterdir()) == ["big.bin", "empty.bin", "odd.bin"]  # no temp file left
