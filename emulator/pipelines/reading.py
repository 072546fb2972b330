"""Std:JsonGet's reads: a JSON document from S3 (the emulator's own S3, or the configured endpoint)."""

from __future__ import annotations

import json
from typing import Any

from sagemaker_emulator.jobs.data import s3_client
from sagemaker_emulator.staging import ObjectStore

MAX_JSON = 10 * 1024 * 1024


def read_json(services: Any, region: str, uri: str) -> Any:
    """Only s3:// URIs: an expression must not read the emulator host's files."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri} is not an s3:// URI")
    with ObjectStore(s3_client(services, region)).open(uri) as stream:
        data = stream.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise ValueError(f"{uri} is larger than {MAX_JSON} bytes")
    return json.loads(data)
