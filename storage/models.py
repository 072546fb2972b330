"""peewee models.

Every SageMaker resource is one `Resource` row: the columns the API filters and sorts on
(kind, region, name, status, times) are real indexed columns, and the Describe document is kept as
JSON in `data`, so a new field AWS adds costs no migration and list queries stay index-only.
"""

from __future__ import annotations

import json
from typing import Any

from peewee import (
    AutoField,
    CharField,
    FloatField,
    ForeignKeyField,
    Model,
    TextField,
)

from .database import database_proxy


class BaseModel(Model):
    class Meta:
        database = database_proxy


class SchemaInfo(BaseModel):
    key = CharField(primary_key=True)
    value = CharField()

    class Meta:
        table_name = "schema_info"


class Resource(BaseModel):
    id = AutoField()
    tags: Any  # the Tag rows' backref (declared by Tag.resource)
    kind = CharField()  # ARN resource type: model, endpoint-config, endpoint, training-job, ...
    region = CharField()
    name = CharField()
    arn = CharField(unique=True)  # lower-cased, see docs/decisions.md
    status = CharField(null=True)
    creation_time = FloatField()
    last_modified_time = FloatField()
    data = TextField()

    class Meta:
        table_name = "resource"
        indexes = (
            (("kind", "region", "name"), True),
            (("kind", "region", "creation_time"), False),
            (("kind", "region", "status"), False),
        )

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.data)

    @document.setter
    def document(self, value: dict[str, Any]) -> None:
        self.data = json.dumps(value)


class Tag(BaseModel):
    id = AutoField()
    resource = ForeignKeyField(Resource, backref="tags", on_delete="CASCADE")
    key = CharField()
    value = CharField()

    class Meta:
        table_name = "tag"
        indexes = ((("resource", "key"), True),)


class Relation(BaseModel):
    """A parent/child link between two resources: a tuning job and its training jobs, a pipeline
    execution and its steps, a model package group and its versions. `kind` names the relation
    (e.g. "tuning-job/training-job") so one parent can have children of several kinds.

    Indexed both ways, so "the children of X" and "the parent of Y" are lookups, not scans; links
    die with either end (ON DELETE CASCADE). Added in schema version 2 (storage/database.py).
    """

    parent = ForeignKeyField(Resource, on_delete="CASCADE", index=False)  # the composite indexes serve
    child = ForeignKeyField(Resource, on_delete="CASCADE", index=False)
    kind = CharField()

    class Meta:
        table_name = "relation"
        indexes = (
            (("parent", "kind", "child"), True),
            (("child", "kind"), False),
        )


class AsyncInvocation(BaseModel):
    """An InvokeEndpointAsync request accepted (202) and not yet answered in S3: the durable queue
    hosting/async_inference.py works from, so a request survives a restart or a kill -9. The row
    goes once the output or failure object is written (and its notification sent)."""

    id = AutoField()
    region = CharField()
    endpoint = CharField()
    inference_id = CharField()
    request = TextField()  # JSON: input location, headers, output/failure URIs, timeout, deadline, notifications
    accepted = FloatField()

    class Meta:
        table_name = "async_invocation"
        indexes = ((("region", "endpoint"), False),)


RESOURCE_MODELS = [Resource, Tag, Relation, AsyncInvocation]  # the log tables are in log_models.LOG_MODELS
