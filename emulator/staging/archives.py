"""model.tar.gz / output.tar.gz in, model data out: tar creation and *safe* extraction.

Model archives are untrusted input (anyone can point `ModelDataUrl` at any tarball, and a training
container decides what lands in /opt/ml/model), and they are unpacked on the host, outside any
container. So `safe_extract` validates every member before writing anything, refuses links and
special files that could reach outside the destination, bounds total size and member count
(decompression bombs), and extracts into a staging directory inside the destination that is
moved into place only once everything succeeded. `make_tar_gz` never dereferences a symlink: a
container could otherwise make us archive any host file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import StagingError
from .progress import Progress, ProgressCallback, ProgressReporter
from .uris import check_relative_path, is_within

logger = logging.getLogger("sagemaker_emulator.staging")

DEFAULT_MAX_MEMBERS = 1_000_000
MAX_METADATA_HEADER = 8 << 20  # pax / GNU long-name headers: tarfile reads them whole into memory
_DISK_MARGIN = 64 << 20
_COPY_CHUNK = 1 << 20


# -- creation -------------------------------------------------------------------------------------
def make_tar_gz(src_dir: str | os.PathLike[str], dest_file: str | os.PathLike[str], *,
                compress: bool = True, progress: ProgressCallback | None = None) -> Progress:
    """Archive the contents of `src_dir` with entries at the archive root (`model.pth`, `sub/x`).

    That is the layout SageMaker's model.tar.gz has and that inference toolkits expect after
    extraction into /opt/ml/model (no `./` prefix, no top-level folder). Entries are sorted and
    owned by root for reproducible archives. Symlinks are stored only when they point inside
    `src_dir`; FIFOs, sockets and devices are skipped; hard links are stored as plain files.
    The archive is written to a temp file and renamed, so a reader never sees half an archive.
    """
    src = Path(src_dir)
    dest = Path(dest_file)
    dest.parent.mkdir(parents=True, exist_ok=True)
    reporter = ProgressReporter("archive", str(src), callback=progress)
    fd, tmp = tempfile.mkstemp(prefix=".archive-", dir=dest.parent)
    os.close(fd)
    try:
        mode = "w:gz" if compress else "w"
        kwargs = {"compresslevel": 6} if compress else {}
        with tarfile.open(tmp, mode, format=tarfile.PAX_FORMAT, **kwargs) as tar:  # type: ignore[call-overload]
            for rel, full, st in _walk_no_follow(src):
                if os.path.abspath(full) == os.path.abspath(tmp):
                    continue  # the archive being written inside the directory it archives
                info = tarfile.TarInfo(rel)
                info.mtime = int(st.st_mtime)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if stat.S_ISDIR(st.st_mode):
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                elif stat.S_ISLNK(st.st_mode):
                    target = os.readlink(full)
                    if not _link_stays_inside(rel, target):
                        logger.warning("not archiving symlink %s -> %s: it points outside %s",
                                       rel, target, src)
                        continue
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    _add_regular_file(tar, info, full, reporter)
                else:
                    logger.warning("not archiving %s: not a regular file, directory or symlink", rel)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return reporter.finish()


def _walk_no_follow(root: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, full path, lstat) of everything under `root`, sorted, never entering a symlink."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        entries = sorted(dirnames + filenames)
        for name in entries:
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            try:
                yield rel, full, os.lstat(full)
            except FileNotFoundError:
                continue


def _add_regular_file(tar: tarfile.TarFile, info: tarfile.TarInfo, full: str,
                      reporter: ProgressReporter) -> None:
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:  # replaced by a symlink since we looked, or vanished
        logger.warning("not archiving %s: %s", full, exc.strerror)
        return
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        info.size = st.st_size
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
        try:
            tar.addfile(info, handle)
        except OSError as exc:  # the file shrank while we read it
            raise StagingError(f"Could not archive {full}: {exc}") from exc
    reporter.add_bytes(info.size, full)
    reporter.object_done(full)


def _link_stays_inside(member: str, target: str) -> bool:
    """Whether a symlink at `member` with `target` resolves inside the root, reading it lexically."""
    if not target or target.startswith("/") or "\x00" in target:
        return False
    parts = member.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return False
            parts.pop()
        else:
            parts.append(part)
    return True


# -- extraction -----------------------------------------------------------------------------------
class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses oversized metadata headers before tarfile reads them into memory.

    A pax or GNU long-name header declaring gigabytes would otherwise be a memory bomb inside
    `tarfile.next()`, before any of our checks sees a member. (`_proc_member` is tarfile's
    per-header dispatch hook, stable across CPython 3.x.)
    """

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type in _METADATA_TYPES and self.size > MAX_METADATA_HEADER:
            raise StagingError(f"Refusing archive member {self.name!r}: a {self.size}-byte metadata header "
                               f"exceeds {MAX_METADATA_HEADER} bytes")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


_METADATA_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                   tarfile.SOLARIS_XHDTYPE)


@dataclass(frozen=True)
class _Planned:
    name: str
    kind: str  # "dir" | "file" | "symlink" | "hardlink"
    size: int
    link: str = ""


def safe_extract(tar_path: str | os.PathLike[str], dest_dir: str | os.PathLike[str], *,
                 max_total_bytes: int | None = None, max_members: int = DEFAULT_MAX_MEMBERS,
                 progress: ProgressCallback | None = None) -> list[str]:
    """Extract a tar (gzip-compressed or not) into `dest_dir`; returns the member paths extracted.

    Refused with a `StagingError` naming the member, before anything is written: absolute paths,
    `..` segments, symlinks resolving outside `dest_dir`, hard links to anything but an earlier
    regular member, paths through an archived symlink, character/block devices and FIFOs, more than
    `max_members` members, or more than `max_total_bytes` of content (default: the free space of
    the destination's filesystem). Extraction goes to a staging directory inside `dest_dir` and is
    merged into place at the end; on any failure the staging directory is removed.
    """
    tar_file = Path(tar_path)
    dest = Path(dest_dir)
    limit = max_total_bytes if max_total_bytes is not None else _free_space(dest)
    plan = _validate(tar_file, limit, max_members)
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / f".extract-{uuid.uuid4().hex}"
    staging.mkdir()
    reporter = ProgressReporter("extract", str(tar_file), objects_total=len(plan),
                                bytes_total=sum(p.size for p in plan), callback=progress)
    try:
        _extract(tar_file, staging, plan, limit, reporter)
        for item in plan:  # links created early may only now resolve through later ones
            if item.kind == "symlink" and not is_within(staging / item.name, staging):
                raise StagingError(f"Refusing archive member {item.name!r}: symlink resolves outside the "
                                   f"destination", uri=str(tar_file))
        _merge(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    reporter.finish()
    return [item.name for item in plan]


def safe_extract_zip(data: bytes, dest_dir: str | os.PathLike[str], *, max_total_bytes: int,
                     what: str = "the zip file") -> list[str]:
    """Extract a zip archive (a Lambda function's code) into `dest_dir`; returns the member paths.

    The same rules as `safe_extract`, for zip's members: absolute paths, `..` or empty segments,
    symlinks and special files are refused with a `StagingError` naming the member, and more than
    `max_total_bytes` uncompressed (checked as it is written, whatever the directory claims) too.
    Executable bits are kept (a handler may run a bundled binary).
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise StagingError(f"Could not unzip {what}: {exc}") from None
    written, names = 0, []
    with archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            if info.is_dir() and info.filename.strip("./") == "":
                continue  # the archive's own root ("./")
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # no type bits: a plain file (writestr)
                raise StagingError(f"Refusing {what} member {info.filename!r}: not a regular file or directory")
            try:
                name = check_relative_path(info.filename.rstrip("/"))
            except StagingError as exc:
                raise StagingError(f"Refusing {what} member {info.filename!r}: {exc}") from None
            target = dest / name
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as source, open(target, "wb") as out:
                    while block := source.read(_COPY_CHUNK):
                        written += len(block)
                        if written > max_total_bytes:
                            raise StagingError(f"{what} is over {max_total_bytes} bytes unzipped")
                        out.write(block)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise StagingError(f"Could not unzip {what} member {info.filename!r}: {exc}") from None
            os.chmod(target, 0o755 if mode & 0o111 else 0o644)
            names.append(name)
    return names


def _free_space(dest: Path) -> int:
    probe = dest
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return max(shutil.disk_usage(probe).free - _DISK_MARGIN, 0)


def _refuse(member: str, why: str, tar_file: Path) -> StagingError:
    return StagingError(f"Refusing archive member {member!r} of {tar_file.name}: {why}", uri=str(tar_file))


def _validate(tar_file: Path, max_total_bytes: int, max_members: int) -> list[_Planned]:
    """Read every header (no data is written) and build the extraction plan."""
    plan: list[_Planned] = []
    kinds: dict[str, str] = {}
    total = 0
    count = 0
    try:
        with tarfile.open(tar_file, "r:*", tarinfo=_BoundedTarInfo) as tar:
            while (member := tar.next()) is not None:
                count += 1
                if count > max_members:
                    raise _refuse(member.name, f"the archive has more than {max_members} members", tar_file)
                item = _plan_member(member, kinds, tar_file)
                if item is None:
                    continue
                total += item.size
                if total > max_total_bytes:
                    raise _refuse(member.name, f"the archive expands to more than {max_total_bytes} bytes",
                                  tar_file)
                kinds[item.name] = item.kind if item.kind != "hardlink" else "file"
                plan.append(item)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise StagingError(f"{tar_file.name} is not a valid tar archive: {exc}", uri=str(tar_file)) from exc
    # Each symlink was checked lexically on its own; resolved through the others (including ones
    # that come later in the archive: `a -> b/..` then `b -> .`) it must still stay inside.
    links = {item.name: item.link for item in plan if item.kind == "symlink"}
    for name, target in links.items():
        if _resolve_virtual(name.split("/")[:-1], target, links, 0) is None:
            raise _refuse(name, f"symlink to {target!r} resolves outside the destination through other links",
                          tar_file)
    return plan


def _resolve_virtual(base: list[str], target: str, links: dict[str, str], depth: int) -> list[str] | None:
    """Resolve `target` from directory `base` inside the archive's own tree; None if it leaves it."""
    if depth > 40:  # a symlink loop: nothing legitimate needs this many hops
        return None
    stack = list(base)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return None
            stack.pop()
            continue
        stack.append(part)
        link = links.get("/".join(stack))
        if link is not None:
            resolved = _resolve_virtual(stack[:-1], link, links, depth + 1)
            if resolved is None:
                return None
            stack = resolved
    return stack


def _plan_member(member: tarfile.TarInfo, kinds: dict[str, str], tar_file: Path) -> _Planned | None:
    raw = member.name
    if member.isdir() and raw.strip("/") in ("", "."):
        return None  # the archive root itself ("./")
    try:
        name = check_relative_path(raw)
    except StagingError as exc:
        raise _refuse(raw, str(exc), tar_file) from exc
    parts = name.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if kinds.get(parent, "dir") != "dir":
            raise _refuse(raw, f"its parent {parent!r} is a {kinds[parent]}, not a directory", tar_file)
    if member.isreg():
        kind, size, link = "file", member.size, ""
    elif member.isdir():
        kind, size, link = "dir", 0, ""
    elif member.issym():
        if not _link_stays_inside(name, member.linkname):
            raise _refuse(raw, f"symlink to {member.linkname!r} points outside the destination", tar_file)
        kind, size, link = "symlink", 0, member.linkname
    elif member.islnk():
        try:
            link = check_relative_path(member.linkname)
        except StagingError as exc:
            raise _refuse(raw, f"hard link to {member.linkname!r} points outside the destination",
                          tar_file) from exc
        if kinds.get(link) != "file":
            raise _refuse(raw, f"hard link to {member.linkname!r}, which is not an earlier regular file",
                          tar_file)
        kind, size = "hardlink", 0
    elif member.ischr() or member.isblk():
        raise _refuse(raw, "device files are not allowed", tar_file)
    elif member.isfifo():
        raise _refuse(raw, "FIFOs are not allowed", tar_file)
    else:
        raise _refuse(raw, f"unsupported member type {member.type!r}", tar_file)
    previous = kinds.get(name)
    if previous is not None and not (previous == kind == "dir" or (previous == "file" and kind == "file")):
        raise _refuse(raw, f"it would replace an earlier {previous} of the same name", tar_file)
    return _Planned(name, kind, size, link)


def _extract(tar_file: Path, staging: Path, plan: list[_Planned], limit: int,
             reporter: ProgressReporter) -> None:
    """Second pass: write the planned members, re-checking that the archive did not change."""
    written = 0
    remaining = iter(plan)
    with tarfile.open(tar_file, "r:*", tarinfo=_BoundedTarInfo) as tar:
        for member in tar:
            if member.isdir() and member.name.strip("/") in ("", "."):
                continue
            item = next(remaining, None)
            if item is None or item.name != check_relative_path(member.name) or item.size != (
                    member.size if item.kind == "file" else 0):
                raise StagingError(f"{tar_file.name} changed while it was being extracted", uri=str(tar_file))
            target = staging.joinpath(*item.name.split("/"))
            if not is_within(target.parent, staging):
                raise _refuse(member.name, "its directory resolves outside the destination", tar_file)
            target.parent.mkdir(parents=True, exist_ok=True)
            if item.kind == "dir":
                target.mkdir(mode=0o755, exist_ok=True)
            elif item.kind == "file":
                written += _write_member(tar, member, target, limit - written, tar_file, reporter)
            elif item.kind == "symlink":
                os.symlink(item.link, target)
            else:
                source = staging.joinpath(*item.link.split("/"))
                if not stat.S_ISREG(os.lstat(source).st_mode):
                    raise _refuse(member.name, "hard link target is not a regular file", tar_file)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(target)
                os.link(source, target, follow_symlinks=False)
            reporter.object_done(item.name)


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, budget: int, tar_file: Path,
                  reporter: ProgressReporter) -> int:
    source = tar.extractfile(member)
    if source is None:
        raise _refuse(member.name, "no data", tar_file)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)  # a duplicate member: the later one wins, as with tar
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    written = 0
    with os.fdopen(fd, "wb") as out, source:
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > budget:
                raise _refuse(member.name, "the archive expands beyond the size limit", tar_file)
            out.write(chunk)
            reporter.add_bytes(len(chunk), member.name)
    os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
    os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
    return written


def _merge(src: Path, dst: Path) -> None:
    """Move the contents of `src` into `dst`; an existing entry is replaced, never followed."""
    for entry in sorted(os.listdir(src)):
        source = src / entry
        target = dst / entry
        try:
            target_mode = os.lstat(target).st_mode
        except FileNotFoundError:
            os.rename(source, target)
            continue
        source_is_dir = stat.S_ISDIR(os.lstat(source).st_mode)
        if source_is_dir and stat.S_ISDIR(target_mode):
            _merge(source, target)
            continue
        if stat.S_ISDIR(target_mode):
            shutil.rmtree(target)
        else:
            os.unlink(target)
        os.rename(source, target)
