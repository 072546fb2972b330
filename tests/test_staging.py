"""The data-staging layer (sagemaker_emulator.staging): S3 round trips against the emulator's embedded S3,
file:// sources on tmp_path, hostile keys and archives, and Pipe-mode FIFOs read by threads."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from sagemaker_emulator.staging import (
    FULLY_REPLICATED,
    SHARDED_BY_S3_KEY,
    DataObject,
    ObjectStore,
    PipeFeeder,
    StagingError,
    SyncState,
    augmented_records,
    check_relative_path,
    download_objects,
    download_prefix,
    download_source,
    epoch_source,
    feed_pipe,
    file_uri,
    make_tar_gz,
    read_augmented_manifest,
    recordio,
    relative_to_prefix,
    resolve_manifest,
    resolve_prefix,
    resolve_source,
    safe_extract,
    safe_join,
    shard,
    stage_model_data,
    sync_dir,
    upload_dir,
    upload_file,
)


@pytest.fixture
def store(s3_client) -> ObjectStore:
    return ObjectStore(s3_client, chunk_size=64 << 10)


@pytest.fixture
def bucket(s3_client) -> str:
    name = f"staging-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


def put(s3_client, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under root, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


# -- relative paths and prefix resolution -----------------------------------------------------------
@pytest.mark.parametrize("prefix, key, expected", [
    ("data/train", "data/train/a/x.csv", "a/x.csv"),       # prefix names a folder
    ("data/train/", "data/train/a/x.csv", "a/x.csv"),
    ("data/train", "data/train-1.csv", "train-1.csv"),     # prefix cuts a name: keep the full name
    ("data/train.csv", "data/train.csv", "train.csv"),     # prefix is one object
    ("", "a/b.csv", "a/b.csv"),                            # whole bucket
    ("tr", "train/x", "train/x"),
])
def test_relative_to_prefix(prefix: str, key: str, expected: str) -> None:
    assert relative_to_prefix(prefix, key) == expected


def test_prefix_listing_and_relative_paths(store: ObjectStore, s3_client, bucket: str,
                                           tmp_path: Path) -> None:
    put(s3_client, bucket, {"data/train/": b"", "data/train/a.csv": b"a", "data/train/sub/b.csv": b"bb",
                            "data/train-extra.csv": b"e", "data/other/x.csv": b"x"})
    found = {o.relative_path: o for o in resolve_prefix(store, f"s3://{bucket}/data/train")}
    assert sorted(found) == ["a.csv", "sub/b.csv", "train-extra.csv"]  # folder marker skipped
    assert found["sub/b.csv"].uri == f"s3://{bucket}/data/train/sub/b.csv" and found["sub/b.csv"].size == 2
    folder = resolve_source(store, f"s3://{bucket}/data/train/")
    assert sorted(o.relative_path for o in folder) == ["a.csv", "sub/b.csv"]
    single = resolve_source(store, f"s3://{bucket}/data/train/sub/b.csv", "S3Object")
    assert [(o.relative_path, o.size) for o in single] == [("b.csv", 2)]

    download_source(store, f"s3://{bucket}/data/train", tmp_path / "train")
    assert tree(tmp_path / "train") == {"a.csv": b"a", "sub/b.csv": b"bb", "train-extra.csv": b"e"}


def test_empty_or_missing_sources_name_the_uri(store: ObjectStore, bucket: str) -> None:
    with pytest.raises(StagingError, match=f"s3://{bucket}/nothing/here"):
        resolve_source(store, f"s3://{bucket}/nothing/here")
    with pytest.raises(StagingError, match="no-such-bucket-xyz"):
        resolve_source(store, "s3://no-such-bucket-xyz/data")
    with pytest.raises(StagingError, match=f"s3://{bucket}/missing.csv"):
        resolve_source(store, f"s3://{bucket}/missing.csv", "S3Object")
    with pytest.raises(StagingError, match="Unsupported data URI"):
        resolve_source(store, "https://example.com/x")


def test_file_sources(tmp_path: Path) -> None:
    store = ObjectStore()
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_bytes(b"a")
    (data / "sub" / "b.csv").write_bytes(b"b")
    (tmp_path / "secret").write_bytes(b"s")
    (data / "escape").symlink_to(tmp_path / "secret")      # points out of the tree: not data
    (data / "alias.csv").symlink_to(data / "a.csv")        # stays inside: data
    objects = resolve_source(store, file_uri(data))
    assert sorted(o.relative_path for o in objects) == ["a.csv", "alias.csv", "sub/b.csv"]
    assert [o.relative_path for o in resolve_source(store, file_uri(data / "sub" / "b.csv"))] == ["b.csv"]
    with pytest.raises(StagingError, match="nope"):
        resolve_source(store, file_uri(tmp_path / "nope"))
    download_objects(store, objects, tmp_path / "out")
    assert tree(tmp_path / "out") == {"a.csv": b"a", "alias.csv": b"a", "sub/b.csv": b"b"}
    # put/get/delete on file://
    store.put_bytes(b"hello", file_uri(tmp_path / "put" / "x.bin"))
    assert store.get_bytes(file_uri(tmp_path / "put" / "x.bin")) == b"hello"
    store.delete(file_uri(tmp_path / "put" / "x.bin"))
    assert not (tmp_path / "put" / "x.bin").exists()


# -- manifests --------------------------------------------------------------------------------------
def test_manifest_file(store: ObjectStore, s3_client, bucket: str, tmp_path: Path) -> None:
    put(s3_client, bucket, {"some/prefix/rel/1.csv": b"one", "some/prefix/rel/deep/2.csv": b"two",
                            "some/prefix/unlisted.csv": b"no"})
    manifest = [{"prefix": f"s3://{bucket}/some/prefix/"}, "rel/1.csv", "rel/deep/2.csv"]
    put(s3_client, bucket, {"m/train.manifest": json.dumps(manifest).encode()})
    objects = resolve_source(store, f"s3://{bucket}/m/train.manifest", "ManifestFile")
    assert [(o.relative_path, o.size) for o in objects] == [("rel/1.csv", 3), ("rel/deep/2.csv", 3)]
    download_objects(store, objects, tmp_path / "ch")
    assert tree(tmp_path / "ch") == {"rel/1.csv": b"one", "rel/deep/2.csv": b"two"}

    put(s3_client, bucket, {"m/bad.manifest": json.dumps(manifest + ["rel/missing.csv"]).encode(),
                            "m/escape.manifest": json.dumps(manifest[:1] + ["../../etc/x"]).encode(),
                            "m/notjson.manifest": b"[{"})
    with pytest.raises(StagingError, match="rel/missing.csv"):
        resolve_manifest(store, f"s3://{bucket}/m/bad.manifest")
    with pytest.raises(StagingError, match="escapes"):
        resolve_manifest(store, f"s3://{bucket}/m/escape.manifest")
    with pytest.raises(StagingError, match="not valid JSON"):
        resolve_manifest(store, f"s3://{bucket}/m/notjson.manifest")


def test_augmented_manifest_records(store: ObjectStore, s3_client, bucket: str) -> None:
    put(s3_client, bucket, {"img/1.jpg": b"\xff\xd8one", "img/2.jpg": b"\xff\xd8two"})
    lines = [{"source-ref": f"s3://{bucket}/img/1.jpg", "is-a-cat": 1, "meta": {"x": 1}, "other": "skip"},
             {"source-ref": f"s3://{bucket}/img/2.jpg", "is-a-cat": 0, "meta": "plain", "other": "skip"}]
    put(s3_client, bucket, {"m/aug.jsonl": ("\n".join(json.dumps(line) for line in lines) + "\n\n").encode()})
    parsed = read_augmented_manifest(store, f"s3://{bucket}/m/aug.jsonl")
    assert [line.index for line in parsed] == [1, 2]

    items = list(augmented_records(parsed, ["source-ref", "is-a-cat", "meta"]))
    as_bytes = [item if isinstance(item, bytes) else store.get_bytes(item.uri) for item in items]
    assert as_bytes == [b"\xff\xd8one", b"1", b'{"x":1}', b"\xff\xd8two", b"0", b"plain"]
    assert isinstance(items[0], DataObject)
    with pytest.raises(StagingError, match="line 1 has no attribute 'absent'"):
        list(augmented_records(parsed, ["absent"]))
    # sharding works on lines, in file order
    assert [line.index for line in shard(parsed, 1, 2, SHARDED_BY_S3_KEY)] == [2]


# -- sharding ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("hosts", [2, 3])
def test_sharding_is_disjoint_and_complete(hosts: int) -> None:
    objects = [DataObject(f"s3://b/k/{i:03d}", f"{i:03d}") for i in range(11)]
    shuffled = list(reversed(objects))
    shards = [shard(shuffled, h, hosts, SHARDED_BY_S3_KEY) for h in range(hosts)]
    flat = [o.uri for s in shards for o in s]
    assert sorted(flat) == sorted(o.uri for o in objects) and len(flat) == len(set(flat))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shards[0][0].uri == "s3://b/k/000"  # sorted by key before dealing
    assert shard(shuffled, hosts - 1, hosts, FULLY_REPLICATED) == objects
    # shuffled with a seed: same on every host, disjoint and complete per epoch, reshuffled per epoch
    for epoch in (0, 1):
        seeded = [shard(objects, h, hosts, SHARDED_BY_S3_KEY, seed=7, epoch=epoch) for h in range(hosts)]
        assert sorted(o.uri for s in seeded for o in s) == sorted(o.uri for o in objects)
        again = [shard(shuffled, h, hosts, SHARDED_BY_S3_KEY, seed=7, epoch=epoch) for h in range(hosts)]
        assert seeded == again
    per_epoch = epoch_source(objects, seed=7)
    assert per_epoch(0) != per_epoch(1) and sorted(per_epoch(1), key=lambda o: o.uri) == objects
    more_hosts = [shard(objects[:2], h, 3, SHARDED_BY_S3_KEY) for h in range(3)]
    assert [len(s) for s in more_hosts] == [1, 1, 0]


# -- downloads: gzip and path safety ----------------------------------------------------------------
def test_gzip_decompression(store: ObjectStore, s3_client, bucket: str, tmp_path: Path) -> None:
    payload = b"line\n" * 50_000
    put(s3_client, bucket, {"in/a.csv": gzip.compress(payload)})
    objects = resolve_prefix(store, f"s3://{bucket}/in/")
    download_objects(store, objects, tmp_path / "raw")
    assert (tmp_path / "raw" / "a.csv").read_bytes() == gzip.compress(payload)  # File mode: as is
    progress = []
    download_objects(store, objects, tmp_path / "gunzipped", gzip=True, progress=progress.append)
    assert (tmp_path / "gunzipped" / "a.csv").read_bytes() == payload
    assert progress[-1].finished and progress[-1].objects_done == 1
    assert progress[-1].bytes_done == progress[-1].bytes_total == len(gzip.compress(payload))
    put(s3_client, bucket, {"bad/x.gz": b"not gzip"})
    with pytest.raises(StagingError, match="bad/x.gz"):
        download_objects(store, resolve_prefix(store, f"s3://{bucket}/bad/"), tmp_path / "bad", gzip=True)


def test_keys_cannot_escape_the_destination(store: ObjectStore, s3_client, bucket: str,
                                            tmp_path: Path) -> None:
    put(s3_client, bucket, {"data/ok.csv": b"ok", "data/../../evil.txt": b"evil"})
    with pytest.raises(StagingError, match=r"\.\./\.\./evil.txt"):
        download_source(store, f"s3://{bucket}/data/", tmp_path / "dest")
    put(s3_client, bucket, {"dbl/a//b": b"x"})
    with pytest.raises(StagingError, match="empty segment"):
        resolve_prefix(store, f"s3://{bucket}/dbl/")
    # hand-made objects, as a buggy caller could pass them, are refused at download time too
    for rel in ("../x", "/etc/passwd", "a/../../x", "a\x00b"):
        with pytest.raises(StagingError):
            download_objects(store, [DataObject(f"s3://{bucket}/data/ok.csv", rel)], tmp_path / "dest")
    # a symlink planted in the destination is never written through
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    (tmp_path / "outside").mkdir()
    (dest / "sub").symlink_to(tmp_path / "outside")
    with pytest.raises(StagingError, match="symlink"):
        download_objects(store, [DataObject(f"s3://{bucket}/data/ok.csv", "sub/x.csv")], dest)
    assert list((tmp_path / "outside").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    assert check_relative_path("./a/./b") == "a/b"
    assert safe_join(dest, "new/file") == dest / "new" / "file"


# -- archives -----------------------------------------------------------------------------------------
def test_tar_gz_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "model.pth").write_bytes(os.urandom(100_000))
    (src / "sub" / "deeper" / "cfg.json").write_text("{}")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "link").symlink_to("sub/deeper/cfg.json")
    (tmp_path / "secret").write_text("host secret")
    (src / "leak").symlink_to(tmp_path / "secret")
    os.mkfifo(src / "fifo")
    archive = tmp_path / "out" / "model.tar.gz"
    make_tar_gz(src, archive)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "model.pth" in names and "sub/deeper/cfg.json" in names and "empty" in names and "link" in names
    assert not any(n.startswith(("./", "/")) for n in names) and "leak" not in names and "fifo" not in names
    with gzip.open(archive) as fh:
        assert fh.read(1)  # really gzip

    dest = tmp_path / "extracted"
    safe_extract(archive, dest)
    assert tree(dest) == tree(src)
    assert (dest / "empty").is_dir() and os.readlink(dest / "link") == "sub/deeper/cfg.json"
    assert os.stat(dest / "run.sh").st_mode & 0o111
    assert [p.name for p in dest.iterdir() if p.name.startswith(".extract")] == []

    plain = tmp_path / "output.tar"
    make_tar_gz(src, plain, compress=False)
    with open(plain, "rb") as fh:
        assert fh.read(2) != b"\x1f\x8b"
    safe_extract(plain, tmp_path / "from-plain")
    assert tree(tmp_path / "from-plain") == tree(src)


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], compress: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


HOSTILE = {
    "dotdot": [(_member("ok.txt"), b"ok"), (_member("../evil.txt"), b"evil")],
    "nested-dotdot": [(_member("a/../../evil.txt"), b"evil")],
    "absolute": [(_member("/tmp/evil-abs.txt"), b"evil")],
    "symlink-out": [(_member("link", tarfile.SYMTYPE, "../../outside"), None)],
    "symlink-abs": [(_member("link", tarfile.SYMTYPE, "/etc/passwd"), None)],
    "symlink-chain": [(_member("d", tarfile.DIRTYPE), None), (_member("a", tarfile.SYMTYPE, "b/.."), None),
                      (_member("b", tarfile.SYMTYPE, "."), None)],
    "through-symlink": [(_member("s", tarfile.SYMTYPE, "sub"), None), (_member("s/x"), b"x")],
    "hardlink-out": [(_member("hl", tarfile.LNKTYPE, "../outside/secret"), None)],
    "hardlink-abs": [(_member("hl", tarfile.LNKTYPE, "/etc/passwd"), None)],
    "device": [(_member("dev", tarfile.CHRTYPE), None)],
    "block": [(_member("blk", tarfile.BLKTYPE), None)],
    "fifo": [(_member("pipe", tarfile.FIFOTYPE), None)],
    "bomb": [(_member("small"), b"x" * 10), (_member("huge"), b"\x00" * 5000)],
    "too-many": [(_member(f"f{i}"), b"") for i in range(5)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_safe_extract_refuses(case: str, tmp_path: Path) -> None:
    root = tmp_path / "area"
    (root / "outside").mkdir(parents=True)
    (root / "outside" / "secret").write_text("secret")
    archive = tmp_path / "hostile.tar.gz"
    archive.write_bytes(_tar(HOSTILE[case]))
    dest = root / "nested" / "dest"
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with pytest.raises(StagingError) as excinfo:
        safe_extract(archive, dest, max_total_bytes=1000, max_members=4)
    member = {"too-many": "f4", "symlink-chain": "a", "bomb": "huge", "through-symlink": "s/x"}.get(
        case, HOSTILE[case][-1][0].name)
    assert repr(member) in str(excinfo.value)
    after = sorted(p.relative_to(root) for p in root.rglob("*") if not str(p).startswith(str(dest)))
    assert after == before  # nothing written outside dest
    assert (root / "outside" / "secret").read_text() == "secret"
    assert not (root / "nested").exists()  # every refusal happens before anything is written
    assert not Path("/tmp/evil-abs.txt").exists() and not (root / "nested" / "evil.txt").exists()


def test_safe_extract_refuses_huge_metadata_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sagemaker_emulator.staging.archives.MAX_METADATA_HEADER", 1024)
    info = _member("f")
    info.pax_headers = {"comment": "x" * 5000}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        info.size = 1
        tar.addfile(info, io.BytesIO(b"1"))
    (tmp_path / "pax.tgz").write_bytes(buf.getvalue())
    with pytest.raises(StagingError, match="metadata header"):
        safe_extract(tmp_path / "pax.tgz", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_safe_extract_merges_and_replaces_planted_symlinks(tmp_path: Path) -> None:
    archive = tmp_path / "m.tar"
    archive.write_bytes(_tar([(_member("./", tarfile.DIRTYPE), None),
                              (_member("./code/inference.py"), b"print(1)"),
                              (_member("./weights"), b"w"),
                              (_member("./weights2", tarfile.LNKTYPE, "weights"), None)], compress=False))
    dest = tmp_path / "dest"
    (dest / "code").mkdir(parents=True)
    (dest / "code" / "keep.txt").write_text("keep")
    (tmp_path / "victim").write_text("victim")
    (dest / "weights").symlink_to(tmp_path / "victim")
    assert sorted(safe_extract(archive, dest)) == ["code/inference.py", "weights", "weights2"]
    assert tree(dest) == {"code/inference.py": b"print(1)", "code/keep.txt": b"keep", "weights": b"w",
                          "weights2": b"w"}
    assert not (dest / "weights").is_symlink() and (tmp_path / "victim").read_text() == "victim"


def test_stage_model_data(store: ObjectStore, s3_client, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "code").mkdir(parents=True)
    (src / "model.bin").write_bytes(b"weights")
    (src / "code" / "inference.py").write_text("x")
    make_tar_gz(src, tmp_path / "model.tar.gz")
    upload_file(store, tmp_path / "model.tar.gz", f"s3://{bucket}/job/output/model.tar.gz")
    stage_model_data(store, f"s3://{bucket}/job/output/model.tar.gz", tmp_path / "hosting" / "model")
    assert tree(tmp_path / "hosting" / "model") == tree(src)
    assert sorted(p.name for p in (tmp_path / "hosting").iterdir()) == ["model"]  # scratch cleaned up

    upload_dir(store, src, f"s3://{bucket}/uncompressed/")
    stage_model_data(store, f"s3://{bucket}/uncompressed/", tmp_path / "prefix", s3_data_type="S3Prefix",
                     compression="None")
    assert tree(tmp_path / "prefix") == tree(src)
    stage_model_data(store, f"s3://{bucket}/uncompressed/model.bin", tmp_path / "single", compression="None")
    assert tree(tmp_path / "single") == {"model.bin": b"weights"}
    stage_model_data(store, file_uri(src), tmp_path / "local")
    assert tree(tmp_path / "local") == tree(src)


# -- uploads, checkpoints ---------------------------------------------------------------------------
def test_upload_sync_and_restore(store: ObjectStore, s3_client, bucket: str, tmp_path: Path) -> None:
    out = tmp_path / "processing" / "output"
    (out / "sub").mkdir(parents=True)
    (out / "a.csv").write_text("a")
    (out / "sub" / "b.csv").write_text("b")
    (tmp_path / "host-secret").write_text("secret")
    (out / "leak").symlink_to(tmp_path / "host-secret")
    (out / "leakdir").symlink_to(tmp_path)
    uris = upload_dir(store, out, f"s3://{bucket}/proc/out")
    assert uris == [f"s3://{bucket}/proc/out/a.csv", f"s3://{bucket}/proc/out/sub/b.csv"]

    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "epoch-1.pt").write_bytes(b"1" * 1000)
    (ckpt / "state" / "opt.bin").parent.mkdir()
    (ckpt / "state" / "opt.bin").write_bytes(b"opt")
    put(s3_client, bucket, {"ckpt-old/keep.pt": b"sibling", "ckpt/stale.pt": b"from a previous run"})
    dest = f"s3://{bucket}/ckpt"
    state = SyncState()
    first = sync_dir(store, ckpt, dest, state=state)
    assert sorted(first.uploaded) == [f"{dest}/epoch-1.pt", f"{dest}/state/opt.bin"]
    assert first.deleted == [f"{dest}/stale.pt"]
    again = sync_dir(store, ckpt, dest, state=state)
    assert (again.uploaded, again.deleted, again.unchanged) == ([], [], 2)

    (ckpt / "epoch-1.pt").unlink()
    (ckpt / "epoch-2.pt").write_bytes(b"2" * 1000)
    (ckpt / "state" / "opt.bin").write_bytes(b"OPT")  # same size, new content
    third = sync_dir(store, ckpt, dest, state=SyncState())
    assert sorted(third.uploaded) == [f"{dest}/epoch-2.pt", f"{dest}/state/opt.bin"]
    assert third.deleted == [f"{dest}/epoch-1.pt"]
    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"])
    assert "ckpt-old/keep.pt" in keys and "ckpt/epoch-1.pt" not in keys

    restored = tmp_path / "restored"
    download_prefix(store, dest, restored)
    assert tree(restored) == tree(ckpt)
    assert download_prefix(store, f"s3://{bucket}/never-written", tmp_path / "empty") == []

    # the same with a file:// destination
    local_dest = file_uri(tmp_path / "mirror")
    sync_dir(store, ckpt, local_dest)
    (ckpt / "epoch-2.pt").unlink()
    result = sync_dir(store, ckpt, local_dest)
    assert result.deleted == [file_uri(tmp_path / "mirror" / "epoch-2.pt")]
    assert tree(tmp_path / "mirror") == tree(ckpt)


# -- Pipe mode ----------------------------------------------------------------------------------------
def _read_fifo(path: Path, timeout: float = 10, limit: int | None = None) -> bytes:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    with open(path, "rb") as fh:
        return fh.read(limit) if limit else fh.read()


def _reader(fifo_dir: Path, channel: str, epochs: int, results: list[bytes], limit: int | None = None):
    def run() -> None:
        for epoch in range(epochs):
            results.append(_read_fifo(fifo_dir / f"{channel}_{epoch}", limit=limit if epoch == 0 else None))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("wrapper", ["None", "RecordIO"])
def test_pipe_two_epochs(wrapper: str, store: ObjectStore, s3_client, bucket: str, tmp_path: Path) -> None:
    bodies = {"pipe/a.bin": os.urandom(300_000), "pipe/b.txt": b"hello",
              "pipe/c.bin": b"\x0a\x23\xd7\xce" * 3}  # the RecordIO magic inside a payload
    put(s3_client, bucket, bodies)
    objects = resolve_prefix(store, f"s3://{bucket}/pipe/")
    results: list[bytes] = []
    reader = _reader(tmp_path, "train", 2, results)
    result = feed_pipe(tmp_path, "train", objects, store=store, epochs=2, record_wrapper=wrapper,
                       open_timeout=10)
    reader.join(10)
    assert (result.epochs_completed, result.stopped, result.timed_out) == (2, False, False)
    expected = [bodies[k] for k in sorted(bodies)]
    for epoch_data in results:
        if wrapper == "RecordIO":
            assert list(recordio.read_records(io.BytesIO(epoch_data))) == expected
            assert len(epoch_data) % 4 == 0
        else:
            assert epoch_data == b"".join(expected)
    assert len(results) == 2 and not list(tmp_path.iterdir())  # FIFOs removed once consumed


def test_pipe_gzip_augmented_and_reshuffled(store: ObjectStore, s3_client, bucket: str,
                                            tmp_path: Path) -> None:
    first = gzip.compress(b"first")
    put(s3_client, bucket, {"z/1.gz": first, "z/2.gz": gzip.compress(b"second!")})
    objects = resolve_prefix(store, f"s3://{bucket}/z/")
    results: list[bytes] = []
    reader = _reader(tmp_path, "ch", 2, results)
    feed_pipe(tmp_path, "ch", epoch_source(objects, seed=3), store=store, epochs=2, gzip=True,
              record_wrapper="RecordIO", open_timeout=10)
    reader.join(10)
    for data in results:
        assert sorted(recordio.read_records(io.BytesIO(data))) == [b"first", b"second!"]

    items: list = [b"label-1", DataObject(f"s3://{bucket}/z/1.gz", "1.gz")]
    results = []
    reader = _reader(tmp_path, "aug", 1, results)
    feed_pipe(tmp_path, "aug", items, store=store, epochs=1, record_wrapper="RecordIO", open_timeout=10)
    reader.join(10)
    assert list(recordio.read_records(io.BytesIO(results[0]))) == [b"label-1", first]


def test_pipe_reader_closing_early_ends_only_that_epoch(tmp_path: Path) -> None:
    big = [os.urandom(1 << 20)] * 4
    results: list[bytes] = []
    reader = _reader(tmp_path, "train", 2, results, limit=10)
    result = feed_pipe(tmp_path, "train", big, epochs=2, open_timeout=10)
    reader.join(10)
    assert result.epochs_completed == 2 and len(results[0]) == 10 and results[1] == b"".join(big)


def test_pipe_stop_unblocks_a_feeder_nobody_reads(tmp_path: Path) -> None:
    feeder = PipeFeeder(tmp_path, "train", [b"x" * 10]).start()
    assert feeder.ready.wait(5)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "train_0").st_mode)
    time.sleep(0.2)
    assert feeder.alive
    started = time.monotonic()
    feeder.stop()
    result = feeder.join(5)
    assert result is not None and result.stopped and result.epochs_completed == 0
    assert time.monotonic() - started < 2
    assert not (tmp_path / "train_0").exists()

    timed = feed_pipe(tmp_path, "val", [b"x"], open_timeout=0.2)
    assert timed.timed_out and timed.epochs_completed == 0 and not (tmp_path / "val_0").exists()


def test_pipe_stop_mid_stream_with_a_stalled_reader(tmp_path: Path) -> None:
    path = tmp_path / "train_0"
    feeder = PipeFeeder(tmp_path, "train", [os.urandom(1 << 20)] * 8, epochs=1).start()
    assert feeder.ready.wait(5)
    with open(path, "rb") as fh:  # opens, reads a little, then stalls: the pipe fills up
        fh.read(1000)
        time.sleep(0.2)
        feeder.stop()
        result = feeder.join(5)
    assert result is not None and result.stopped


def test_recordio_format() -> None:
    assert recordio.pack(b"abcde") == bytes.fromhex("0a23d7ce") + (5).to_bytes(4, "little") + b"abcde\0\0\0"
    assert recordio.pack(b"") == bytes.fromhex("0a23d7ce") + b"\0\0\0\0"
    with pytest.raises(StagingError, match="Truncated"):
        list(recordio.read_records(io.BytesIO(recordio.pack(b"abcdef")[:-3])))
