"""Durable S3: buckets and objects in the data dir (SQLite metadata, one file per body).

See store.py for the layout and the crash guarantees, app.py for what is ours and what moto
still answers, and docs/decisions.md for why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .app import S3App, owns

__all__ = ["S3App", "owns", "s3_app"]


def s3_app(services: Any, moto: Callable, new_request_id: Callable[[], str]) -> S3App | None:
    """Our S3 for this server, or None when the configuration keeps moto's (`s3_backend = "moto"`)."""
    config = services.config
    if config.s3_backend == "moto":
        return None
    if config.s3_backend != "disk":
        raise ValueError(f"s3_backend must be 'disk' or 'moto', not {config.s3_backend!r}")
    from .store import S3Store

    store = S3Store(config.data_dir / "s3", fsync=config.s3_fsync)
    return S3App(store, moto, config.account_id, config.region, new_request_id)
