"""Feature Store's data side: the online store (records in SQLite), the offline store (Parquet in S3)
and the Glue table; the operations are in handlers/feature_groups.py and handlers/featurestore_runtime.py."""

from .service import FeatureStore, GroupView

__all__ = ["FeatureStore", "GroupView"]
