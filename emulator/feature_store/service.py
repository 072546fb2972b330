"""The Feature Store of one emulator process: the record database, a cache of feature groups for the
runtime's hot path, and the offline store's flusher thread.

The runtime reads a group's definitions on every PutRecord/GetRecord; parsing its resource document
each time would cost more than the record itself, so groups are cached here and the control plane
(handlers/feature_groups.py) calls `forget` whenever it changes or deletes one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sagemaker_emulator.storage import feature_records, resources

from . import catalog, definitions, offline

log = logging.getLogger(__name__)

KIND = "feature-group"
CREATE_SECONDS = 1.0  # Creating -> Created (AWS: about a minute; kept short, the transition is real)
DELETE_SECONDS = 0.5  # Deleting -> gone
FLUSH_SECONDS = 3.0  # the offline store's flush period (AWS: within 15 minutes)
FLUSH_BATCH = 5000  # pending rows per Parquet upload round


@dataclass
class GroupView:
    """What the runtime needs of a feature group, parsed once from its document."""

    arn: str
    name: str
    status: str
    created: float
    record_id: str
    event_time: str
    event_type: str
    definitions: dict[str, dict[str, Any]]
    online: bool
    offline: bool
    ttl: float | None
    order: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, row: Any) -> GroupView:
        doc = row.document
        by_name = {d["FeatureName"]: d for d in doc["FeatureDefinitions"]}
        online = doc.get("OnlineStoreConfig") or {}
        return cls(arn=row.arn, name=row.name, status=row.status, created=row.creation_time,
                   record_id=doc["RecordIdentifierFeatureName"], event_time=doc["EventTimeFeatureName"],
                   event_type=by_name[doc["EventTimeFeatureName"]]["FeatureType"], definitions=by_name,
                   online=bool(online.get("EnableOnlineStore")), offline="OfflineStoreConfig" in doc,
                   ttl=definitions.ttl_seconds(online.get("TtlDuration")), order=list(by_name))

    def current_status(self, now: float | None = None) -> str:
        """The status as the control plane settles it (Creating turns Created after CREATE_SECONDS)."""
        if self.status == "Creating" and (now or time.time()) >= self.created + CREATE_SECONDS:
            return "Created"
        return self.status


class FeatureStore:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.db = feature_records.open_feature_database(services.config.data_dir)
        self._groups: dict[tuple[str, str], GroupView] = {}
        self._s3: dict[str, Any] = {}
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._iceberg: Any = None  # feature_store.iceberg.IcebergTables, made when a group first needs it
        self._iceberg_lock = threading.Lock()
        from .athena import LocalAthena

        self.athena = LocalAthena(services)

    # -- groups ----------------------------------------------------------------------------------
    def group(self, region: str, value: str) -> GroupView | None:
        """A feature group by name or ARN (cached), or None when there is none (or it is being deleted)."""
        key = (region, value.lower() if value.startswith("arn:") else value)
        view = self._groups.get(key)
        if view is not None and view.status == "Creating" and view.current_status() == "Created":
            self.settle(region)
            view = None
        if view is None:
            row = resources.get_by_arn(value) if value.startswith("arn:") else resources.get(KIND, region, value)
            if row is None or row.kind != KIND:
                self._groups.pop(key, None)
                return None
            view = GroupView.of(row)
            self._groups[key] = view
        return None if view.status == "Deleting" else view

    def settle(self, region: str) -> None:
        """Move the region's groups on: Creating -> Created, Deleting -> gone, once their time is up."""
        now = time.time()
        resources.advance_status(KIND, region, "Creating", "Created", created_before=now - CREATE_SECONDS)
        for arn in resources.purge_status(KIND, region, "Deleting", modified_before=now - DELETE_SECONDS):
            self.forget(arn)

    def forget(self, arn: str) -> None:
        for key in [k for k, v in list(self._groups.items()) if v.arn == arn]:
            self._groups.pop(key, None)

    def reset(self) -> None:
        """`POST /_emulator/reset`: no group is remembered, and no record (online or waiting) is kept."""
        self._groups.clear()
        feature_records.clear_all()

    # -- offline store ---------------------------------------------------------------------------
    def start(self) -> None:
        """Once the server is bound (the flusher writes through our own S3): Glue tables moto lost in
        a restart come back, and the flusher starts."""
        import moto.glue.models  # noqa: F401  (a second's import, paid here rather than by the first create)

        for row in resources.all_with_status(KIND, ("Creating", "Created")):
            doc = row.document
            if doc.get("_GlueTableCreated"):
                try:
                    catalog.ensure_table(self.services.config.account_id, row.region, doc)
                except Exception:
                    log.exception("could not register the Glue table of feature group %s again", row.name)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="feature-store-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
                feature_records.remove_expired(time.time())
            except Exception:
                log.exception("the offline store flush failed; it is tried again in %ss", FLUSH_SECONDS)

    def flush(self, arn: str | None = None) -> int:
        """Write the pending records (of `arn`, or of every group) to S3 now; returns how many were written."""
        with self._flush_lock:
            return sum(self._flush_group(group) for group in ([arn] if arn else feature_records.pending_groups()))

    def _flush_group(self, arn: str) -> int:
        written = 0
        row = resources.get_by_arn(arn)
        while True:
            batch = feature_records.pending(arn, FLUSH_BATCH)
            if not batch:
                return written
            ids = [pending_id for pending_id, _ in batch]
            if row is None or "OfflineStoreConfig" not in row.document:
                log.warning("dropping %d offline records of %s: the feature group is gone", len(ids), arn)
                feature_records.remove_pending(ids)
                return written
            iceberg = self.iceberg_tables() if row.document["OfflineStoreConfig"].get("TableFormat") == "Iceberg" \
                else None
            try:
                written_to = offline.write(self.s3_client(row.region), row.document, [data for _, data in batch],
                                           iceberg)
            except Exception as exc:
                if self._offline_status(row, "Blocked", f"The offline store cannot write to S3: {exc}"):
                    log.warning("offline store of %s blocked: %s (retried every %ss)", row.name, exc, FLUSH_SECONDS)
                return written
            feature_records.remove_pending(ids)
            written += len(ids)
            if iceberg is not None:
                row = self._iceberg_committed(row, written_to[0])
            if row.document.get("OfflineStoreStatus", {}).get("Status") == "Blocked":
                self._offline_status(row, "Active", None)
                row = resources.get_by_arn(arn)

    def iceberg_tables(self) -> Any:
        """The Iceberg tables' writer and reader (pyiceberg is imported only once a group needs it)."""
        with self._iceberg_lock:
            if self._iceberg is None:
                from .iceberg import IcebergTables

                self._iceberg = IcebergTables(self.services.config.data_dir)
            return self._iceberg

    def create_iceberg_table(self, row: Any) -> None:
        """A new TableFormat Iceberg group's empty table. If S3 refuses the write, the offline store is
        Blocked with the reason (as a failed flush is) and the table is made by the first flush instead."""
        try:
            schema = offline.arrow_table(row.document["FeatureDefinitions"], [], time.time()).schema
            metadata = self.iceberg_tables().create_empty(self.s3_client(row.region), row.document, schema)
        except Exception as exc:
            self._offline_status(row, "Blocked", f"The offline store cannot write to S3: {exc}")
            return
        self._iceberg_committed(row, metadata)

    def _iceberg_committed(self, row: Any, metadata: str) -> Any:
        """The group's Glue table points at the Iceberg table's new metadata file."""
        def mutate(doc: dict) -> None:
            doc["_IcebergMetadata"] = metadata

        updated = resources.update(KIND, row.region, row.name, mutate) or row
        if updated.document.get("_GlueTableCreated"):
            catalog.update_columns(updated.arn.split(":")[4], updated.region, updated.document)
        return updated

    def _offline_status(self, row: Any, status: str, reason: str | None) -> bool:
        """Set OfflineStoreStatus (with BlockedReason); whether it changed."""
        def mutate(doc: dict) -> None:
            doc["OfflineStoreStatus"] = {"Status": status, **({"BlockedReason": reason[:1024]} if reason else {})}

        if row.document.get("OfflineStoreStatus", {}).get("Status") == status:
            return False
        resources.update(KIND, row.region, row.name, mutate)
        return True

    def s3_client(self, region: str) -> Any:
        """The S3 client the offline store writes (and local Athena reads) with, one per region."""
        if region not in self._s3:
            from sagemaker_emulator.jobs.data import s3_client

            config = self.services.config
            if not (config.s3_endpoint_url or config.self_url):  # never let boto3 fall back to AWS itself
                raise RuntimeError("the emulator's own URL is not known yet (the server is not bound)")

            self._s3[region] = s3_client(self.services, region)
        return self._s3[region]

    def close(self) -> None:
        """Stop the flusher; what is still pending stays in the database and is written after the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.db.close()
