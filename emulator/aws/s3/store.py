"""Where S3 lives on disk: metadata in one SQLite file, every body in a file of its own.

    <data dir>/s3/s3.sqlite3        buckets, object versions, multipart uploads and parts, bucket-config journal
    <data dir>/s3/objects/ab/<id>   an object version's bytes (never rewritten: a new version is a new file)
    <data dir>/s3/parts/<upload>/N  the parts of a multipart upload in progress (each a file of its own, or
    <data dir>/s3/parts/<upload>/data  at its offset in the upload's assembly file: see `claim_part_slot`)
    <data dir>/s3/tmp/<id>          bodies being received; emptied at start-up

A body is streamed to tmp/, renamed into objects/, and only then is its row committed (WAL): an
acknowledged object survives kill -9 of the server, a partly written one is never visible. What a
write() has handed to the kernel survives the process, so no fsync is needed for that; with
`fsync=True` (`--s3-fsync`) every body, its directory and each commit (synchronous=FULL) are also
fsync'ed before the answer, which makes the same promise across a power cut, at disk speed (see
docs/decisions.md, "S3 durability"). A crash between the rename and the commit leaves a file no row
names; `sweep()` removes those, and what tmp/ holds, at start-up.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY, region TEXT NOT NULL, created REAL NOT NULL,
    versioning TEXT NOT NULL DEFAULT '', meta TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, bucket TEXT NOT NULL, key TEXT NOT NULL,
    version_id TEXT NOT NULL, latest INTEGER NOT NULL, delete_marker INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0, etag TEXT NOT NULL DEFAULT '', modified REAL NOT NULL,
    file TEXT, meta TEXT NOT NULL DEFAULT '{}');
CREATE UNIQUE INDEX IF NOT EXISTS objects_latest ON objects (bucket, key) WHERE latest = 1;
CREATE INDEX IF NOT EXISTS objects_versions ON objects (bucket, key, seq);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS uploads_key ON uploads (bucket, key, initiated);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    modified REAL NOT NULL, file TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (upload_id, number));
CREATE TABLE IF NOT EXISTS completed_uploads (
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, etag TEXT NOT NULL,
    version_id TEXT NOT NULL, completed REAL NOT NULL);
CREATE TABLE IF NOT EXISTS config_journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, bucket TEXT NOT NULL, request TEXT NOT NULL, body BLOB);
"""

_OBJECT_COLUMNS = "seq, bucket, key, version_id, latest, delete_marker, size, etag, modified, file, meta"


@dataclass
class Bucket:
    name: str
    region: str
    created: float
    versioning: str  # '' (never enabled), 'Enabled' or 'Suspended'
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ObjectVersion:
    seq: int
    bucket: str
    key: str
    version_id: str
    latest: bool
    delete_marker: bool
    size: int
    etag: str  # quoted, as on the wire
    modified: float
    file: str | None  # relative to the store's root
    meta: dict[str, Any]  # content headers, user metadata, checksums, tags, storage class, parts


@dataclass
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    meta: dict[str, Any]


@dataclass
class Part:
    number: int
    size: int
    etag: str
    modified: float
    file: str
    meta: dict[str, Any]


def _object(row: tuple) -> ObjectVersion:
    return ObjectVersion(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]), row[6], row[7], row[8],
                         row[9], json.loads(row[10]))


MAX_ASSEMBLY = 5 << 40  # S3's largest object; ext4 files stop at 16 TiB


def assembly_file(upload_id: str) -> str:
    """A multipart upload's assembly file (part files are named `<number>.<id>`: never this)."""
    return f"parts/{upload_id}/data"


@dataclass
class _Assembly:
    slot: int | None = None  # the part size that sets the offsets, once known
    claimed: set[int] = field(default_factory=set)  # part numbers written or being written in place
    writing: int = 0  # parts being received into the file now
    sealed: bool = False  # being completed: no more parts go in


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Store:
    """The metadata database and the body files. One per server process; thread-safe (one lock)."""

    def __init__(self, root: Path, fsync: bool = False) -> None:
        """`fsync=True`: bodies, directories and commits reach the disk before a write is acknowledged
        (power-cut safe); otherwise they reach the kernel (process-crash safe; the database itself stays
        consistent across a power cut, WAL with synchronous=NORMAL, losing at most its last commits)."""
        self.root = root
        self.fsync = fsync
        for sub in ("objects", "parts", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.assemblies: dict[str, _Assembly] = {}  # upload id -> its assembly file's slots (see claim_part_slot)
        self.db = sqlite3.connect(root / "s3.sqlite3", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self.db.executescript(_SCHEMA)
        self.sweep()

    # -- files ---------------------------------------------------------------------------------
    def temp_path(self) -> Path:
        return self.root / "tmp" / uuid.uuid4().hex

    def path(self, relative: str | None) -> Path:
        """An object file's absolute path (`relative` as stored; a delete marker has none)."""
        if relative is None:
            raise ValueError("a delete marker has no object file")
        return self.root / relative

    def sync(self, fd: int) -> None:
        """Flush a finished body to the disk in `fsync` mode (else the kernel's copy is what counts)."""
        if self.fsync:
            os.fsync(fd)

    def install_object_file(self, temp: Path) -> str:
        """Move a finished body into objects/; its path relative to the root."""
        name = uuid.uuid4().hex
        folder = self.root / "objects" / name[:2]
        folder.mkdir(exist_ok=True)
        os.rename(temp, folder / name)
        if self.fsync:
            fsync_dir(folder)
        return f"objects/{name[:2]}/{name}"

    def install_part_file(self, temp: Path, upload_id: str, number: int) -> str:
        folder = self.root / "parts" / upload_id
        folder.mkdir(exist_ok=True)
        name = f"{number}.{uuid.uuid4().hex[:8]}"
        os.rename(temp, folder / name)
        if self.fsync:
            fsync_dir(folder)
        return f"parts/{upload_id}/{name}"

    def remove_file(self, relative: str | None) -> None:
        if relative:
            try:
                os.unlink(self.root / relative)
            except FileNotFoundError:
                pass

    def sweep(self) -> None:
        """Start-up: drop bodies of requests a crash interrupted, and files no committed row names."""
        for leftover in (self.root / "tmp").iterdir():
            leftover.unlink(missing_ok=True)
        with self.lock:
            named = {row[0] for row in self.db.execute("SELECT file FROM objects WHERE file IS NOT NULL")}
            named |= {row[0] for row in self.db.execute("SELECT file FROM parts")}
            uploads = {row[0] for row in self.db.execute("SELECT upload_id FROM uploads")}
        for folder in (self.root / "objects").iterdir():
            for body in folder.iterdir():
                if f"objects/{folder.name}/{body.name}" not in named:
                    body.unlink(missing_ok=True)
        for folder in (self.root / "parts").iterdir():
            if folder.name not in uploads:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for body in folder.iterdir():
                if f"parts/{folder.name}/{body.name}" not in named:
                    body.unlink(missing_ok=True)

    def reset(self) -> None:
        """Forget everything (moto's /moto-api/reset, used by test suites)."""
        with self.lock:
            self.db.executescript("DELETE FROM objects; DELETE FROM buckets; DELETE FROM uploads; "
                                  "DELETE FROM parts; DELETE FROM config_journal;")
            self.assemblies.clear()
            for sub in ("objects", "parts"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
                (self.root / sub).mkdir()

    # -- buckets -------------------------------------------------------------------------------
    def bucket(self, name: str) -> Bucket | None:
        with self.lock:
            row = self.db.execute("SELECT name, region, created, versioning, meta FROM buckets WHERE name = ?",
                                  (name,)).fetchone()
        return Bucket(row[0], row[1], row[2], row[3], json.loads(row[4])) if row else None

    def buckets(self) -> list[Bucket]:
        with self.lock:
            rows = self.db.execute("SELECT name, region, created, versioning, meta FROM buckets ORDER BY created")
            return [Bucket(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def create_bucket(self, name: str, region: str, meta: dict[str, Any]) -> bool:
        """False if it exists already."""
        with self.lock:
            cur = self.db.execute("INSERT OR IGNORE INTO buckets (name, region, created, meta) VALUES (?, ?, ?, ?)",
                                  (name, region, time.time(), json.dumps(meta)))
            return cur.rowcount == 1

    def set_bucket(self, name: str, versioning: str | None = None, meta: dict[str, Any] | None = None) -> None:
        with self.lock:
            if versioning is not None:
                self.db.execute("UPDATE buckets SET versioning = ? WHERE name = ?", (versioning, name))
            if meta is not None:
                self.db.execute("UPDATE buckets SET meta = ? WHERE name = ?", (json.dumps(meta), name))

    def bucket_is_empty(self, name: str) -> bool:
        """No object version (multipart uploads in progress do not count: S3 deletes the bucket anyway)."""
        with self.lock:
            return self.db.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone() is None

    def delete_bucket(self, name: str) -> None:
        """The bucket, its configuration journal and its unfinished multipart uploads."""
        with self.lock:
            uploads = [r[0] for r in self.db.execute("SELECT upload_id FROM uploads WHERE bucket = ?", (name,))]
        for upload_id in uploads:
            self.end_upload(upload_id)
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM buckets WHERE name = ?", (name,))
            self.db.execute("DELETE FROM config_journal WHERE bucket = ?", (name,))
            self.db.execute("COMMIT")

    # -- objects -------------------------------------------------------------------------------
    def latest(self, bucket: str, key: str) -> ObjectVersion | None:
        with self.lock:
            row = self.db.execute(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ? AND latest = 1",
                                  (bucket, key)).fetchone()
        return _object(row) if row else None

    def version(self, bucket: str, key: str, version_id: str) -> ObjectVersion | None:
        with self.lock:
            row = self.db.execute(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ? "
                                  "AND version_id = ?", (bucket, key, version_id)).fetchone()
        return _object(row) if row else None

    def put(self, bucket: str, key: str, version_id: str, *, delete_marker: bool = False, size: int = 0,
            etag: str = "", file: str | None = None, meta: dict[str, Any] | None = None,
            keep_history: bool = True, modified: float | None = None) -> ObjectVersion:
        """Commit a new latest version. `keep_history=False` (unversioned or suspended bucket) replaces
        the version with the same id (`null`); earlier versions stay when versioning was ever on.
        Files no longer named by any row are removed after the commit."""
        modified = time.time() if modified is None else modified
        meta = meta or {}
        dropped: list[str] = []
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if not keep_history:
                    for (old,) in self.db.execute("SELECT file FROM objects WHERE bucket = ? AND key = ? "
                                                  "AND version_id = ?", (bucket, key, version_id)).fetchall():
                        if old:
                            dropped.append(old)
                    self.db.execute("DELETE FROM objects WHERE bucket = ? AND key = ? AND version_id = ?",
                                    (bucket, key, version_id))
                self.db.execute("UPDATE objects SET latest = 0 WHERE bucket = ? AND key = ? AND latest = 1",
                                (bucket, key))
                cur = self.db.execute(
                    "INSERT INTO objects (bucket, key, version_id, latest, delete_marker, size, etag, modified, "
                    "file, meta) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                    (bucket, key, version_id, int(delete_marker), size, etag, modified, file, json.dumps(meta)))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        for old in dropped:
            self.remove_file(old)
        assert cur.lastrowid is not None  # the INSERT above
        return ObjectVersion(cur.lastrowid, bucket, key, version_id, True, delete_marker, size, etag, modified,
                             file, meta)

    def update_meta(self, seq: int, meta: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute("UPDATE objects SET meta = ? WHERE seq = ?", (json.dumps(meta), seq))

    def delete_version(self, bucket: str, key: str, version_id: str) -> ObjectVersion | None:
        """Remove one version for good; the newest remaining one becomes the latest."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ? "
                                  "AND version_id = ?", (bucket, key, version_id)).fetchone()
            if row is None:
                self.db.execute("COMMIT")
                return None
            self.db.execute("DELETE FROM objects WHERE seq = ?", (row[0],))
            if row[4]:
                self.db.execute("UPDATE objects SET latest = 1 WHERE seq = (SELECT MAX(seq) FROM objects "
                                "WHERE bucket = ? AND key = ?)", (bucket, key))
            self.db.execute("COMMIT")
        gone = _object(row)
        self.remove_file(gone.file)
        return gone

    def list_latest(self, bucket: str, after: str, prefix: str, limit: int) -> list[ObjectVersion]:
        """Latest versions (delete markers included) with key > after, starting with prefix, in key order.

        For listings only, which read them: objects whose metadata text is the same share one parsed
        dict (a page's objects mostly have the same few headers; parsing each was a third of its time)."""
        start = max(after, prefix) if prefix else after
        op = ">" if after >= prefix else ">="
        with self.lock:
            rows = self.db.execute(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND latest = 1 "
                                   f"AND key {op} ? ORDER BY key LIMIT ?", (bucket, start, limit)).fetchall()
        out = []
        parsed: dict[str, dict[str, Any]] = {}
        for row in rows:
            if prefix and not row[2].startswith(prefix):
                break
            meta = parsed.get(row[10])
            if meta is None:
                meta = parsed[row[10]] = json.loads(row[10])
            out.append(ObjectVersion(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]), row[6], row[7],
                                     row[8], row[9], meta))
        return out

    def list_versions(self, bucket: str, after_key: str, after_seq: int | None, prefix: str,
                      limit: int) -> list[ObjectVersion]:
        """Every version in (key ascending, newest first) order, after the position (key, seq)."""
        with self.lock:
            if after_seq is None:
                start, op = (max(after_key, prefix), ">") if after_key >= prefix and after_key else (prefix, ">=")
                rows = self.db.execute(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key {op} ? "
                                       "ORDER BY key, seq DESC LIMIT ?", (bucket, start, limit)).fetchall()
            else:
                rows = self.db.execute(
                    f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND "
                    "((key = ? AND seq < ?) OR key > ?) ORDER BY key, seq DESC LIMIT ?",
                    (bucket, after_key, after_seq, after_key, limit)).fetchall()
        out = []
        for row in rows:
            if prefix and not row[2].startswith(prefix):
                if row[2] > prefix:
                    break
                continue
            out.append(_object(row))
        return out

    def all_versions(self, bucket: str) -> Iterator[ObjectVersion]:
        with self.lock:
            rows = self.db.execute(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ?", (bucket,)).fetchall()
        return (_object(r) for r in rows)

    # -- multipart -----------------------------------------------------------------------------
    def create_upload(self, bucket: str, key: str, meta: dict[str, Any]) -> Upload:
        upload = Upload(f"{time.time_ns():016x}{uuid.uuid4().hex}", bucket, key, time.time(), meta)
        with self.lock:
            self.db.execute("INSERT INTO uploads (upload_id, bucket, key, initiated, meta) VALUES (?, ?, ?, ?, ?)",
                            (upload.upload_id, bucket, key, upload.initiated, json.dumps(meta)))
        return upload

    def upload(self, upload_id: str) -> Upload | None:
        with self.lock:
            row = self.db.execute("SELECT upload_id, bucket, key, initiated, meta FROM uploads WHERE upload_id = ?",
                                  (upload_id,)).fetchone()
        return Upload(row[0], row[1], row[2], row[3], json.loads(row[4])) if row else None

    def uploads(self, bucket: str, prefix: str, after_key: str, after_id: str, limit: int) -> list[Upload]:
        with self.lock:
            rows = self.db.execute(
                "SELECT upload_id, bucket, key, initiated, meta FROM uploads WHERE bucket = ? AND key >= ? "
                "AND (key > ? OR (key = ? AND upload_id > ?)) ORDER BY key, upload_id LIMIT ?",
                (bucket, prefix, after_key, after_key, after_id, limit)).fetchall()
        return [Upload(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows if r[2].startswith(prefix)]

    def put_part(self, upload_id: str, number: int, size: int, etag: str, file: str, meta: dict[str, Any]) -> None:
        with self.lock:
            old = self.db.execute("SELECT file FROM parts WHERE upload_id = ? AND number = ?",
                                  (upload_id, number)).fetchone()
            self.db.execute("INSERT OR REPLACE INTO parts (upload_id, number, size, etag, modified, file, meta) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (upload_id, number, size, etag, time.time(), file, json.dumps(meta)))
        if old and old[0] != file and old[0] != assembly_file(upload_id):
            self.remove_file(old[0])

    def claim_part_slot(self, upload_id: str, number: int, size: int | None, min_slot: int) -> int | None:
        """Where part `number` (`size` bytes) is to be written in the upload's assembly file, or None
        when it gets a file of its own.

        SDKs cut an upload into equal parts (the last one shorter), so part N of a slot size S can be
        received straight into `parts/<upload>/data` at (N-1)*S: when CompleteMultipartUpload lists
        exactly parts 1..k in place, that file is the object, renamed, not copied. The first part of at
        least `min_slot` bytes to arrive sets S. A part number already claimed (a re-upload: the
        stored part must survive a failed one), a part larger than S, one past MAX_ASSEMBLY, or an
        upload being completed gets a file of its own (and is copied at completion, as before)."""
        if size is None:
            return None
        with self.lock:
            assembly = self.assemblies.get(upload_id)
            if assembly is None:
                assembly = self.assemblies[upload_id] = _Assembly()
                for number_, meta in self.db.execute("SELECT number, meta FROM parts WHERE upload_id = ?",
                                                     (upload_id,)):
                    assembly.claimed.add(number_)
                    assembly.slot = json.loads(meta).get("slot", assembly.slot)
            if assembly.slot is None and size >= min_slot:
                (self.root / "parts" / upload_id).mkdir(exist_ok=True)
                assembly.slot = size
            slot = assembly.slot
            if (slot is None or assembly.sealed or number in assembly.claimed or size > slot
                    or number * slot > MAX_ASSEMBLY):
                return None
            assembly.claimed.add(number)
            assembly.writing += 1
        return (number - 1) * slot

    def part_slot_done(self, upload_id: str, number: int, stored: bool) -> None:
        """A claimed part is written and stored, or failed (its slot is free again)."""
        with self.lock:
            assembly = self.assemblies.get(upload_id)
            if assembly is not None:
                assembly.writing -= 1
                if not stored:
                    assembly.claimed.discard(number)

    def part_slot_size(self, upload_id: str) -> int | None:
        with self.lock:
            assembly = self.assemblies.get(upload_id)
            return assembly.slot if assembly else None

    def seal_assembly(self, upload_id: str) -> bool:
        """Completion may take the assembly file as the object: no part is being written into it,
        and none will be. False if one still is (then the parts are copied)."""
        with self.lock:
            assembly = self.assemblies.setdefault(upload_id, _Assembly())
            if assembly.writing:
                return False
            assembly.sealed = True
            return True

    def completed_upload(self, upload_id: str) -> tuple[str, str, str, str] | None:
        with self.lock:
            row = self.db.execute("SELECT bucket, key, etag, version_id FROM completed_uploads WHERE upload_id = ?",
                                  (upload_id,)).fetchone()
        return tuple(row) if row else None  # type: ignore[return-value]

    def parts(self, upload_id: str) -> list[Part]:
        with self.lock:
            rows = self.db.execute("SELECT number, size, etag, modified, file, meta FROM parts WHERE upload_id = ? "
                                   "ORDER BY number", (upload_id,)).fetchall()
        return [Part(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def end_upload(self, upload_id: str, completed: tuple[str, str, str, str] | None = None) -> None:
        """Forget an upload (completed or aborted) and remove its part files. A completed one is
        remembered for a day as (bucket, key, etag, version id): S3 answers a repeated
        CompleteMultipartUpload with the same result."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            if completed is not None:
                now = time.time()
                self.db.execute("DELETE FROM completed_uploads WHERE completed < ?", (now - 86400,))
                self.db.execute("INSERT OR REPLACE INTO completed_uploads VALUES (?, ?, ?, ?, ?, ?)",
                                (upload_id, *completed, now))
            self.db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            self.db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
            self.db.execute("COMMIT")
            self.assemblies.pop(upload_id, None)
        shutil.rmtree(self.root / "parts" / upload_id, ignore_errors=True)

    # -- bucket configuration handled by moto ----------------------------------------------------
    def journal(self, bucket: str, request: dict[str, Any], body: bytes) -> None:
        with self.lock:
            self.db.execute("INSERT INTO config_journal (bucket, request, body) VALUES (?, ?, ?)",
                            (bucket, json.dumps(request), body))

    def journal_entries(self) -> list[tuple[str, dict[str, Any], bytes]]:
        with self.lock:
            rows = self.db.execute("SELECT bucket, request, body FROM config_journal ORDER BY seq").fetchall()
        return [(r[0], json.loads(r[1]), r[2] or b"") for r in rows]

    def close(self) -> None:
        with self.lock:
            self.db.close()
