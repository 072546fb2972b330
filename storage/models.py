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
    resource = ForeignKeyField(Resource, backref="tags", on_delete="CASCADE")
    key = CharField()
    value = CharField()

    class Meta:
        table_name = "tag"
        indexes = ((("resource", "key"), True),)


from .log_models import LOG_MODELS  # noqa: E402  (they subclass BaseModel above)

ALL_MODELS = [Resource, Tag, *LOG_MODELS]
