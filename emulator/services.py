"""The running emulator's shared state: configuration, database and the wire services.

One `Services` object per server process; handlers reach it through `RequestContext.services`.
"""

from __future__ import annotations

import logging
import os
import uuid

from storage.database import open_database

from .config import Config
from .protocol.json_protocol import JsonService, collect_handlers
from .protocol.service import service_model

log = logging.getLogger(__name__)


def _sagemaker_handlers() -> list:
    from handlers import endpoint_configs, models, tags

    return [models, endpoint_configs, tags]


def _logs_handlers() -> list:
    from handlers import logs

    return [logs]


class Services:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.instance_id = uuid.uuid4().hex[:12]
        # moto reads the account id from the environment on every request.
        os.environ["MOTO_ACCOUNT_ID"] = config.account_id
        self.db = open_database(config.data_dir)
        self.sagemaker = JsonService(
            "sagemaker", collect_handlers(service_model("sagemaker"), _sagemaker_handlers()))
        self.logs = JsonService("logs", collect_handlers(service_model("logs"), _logs_handlers()))
        self.json_services = [self.sagemaker, self.logs]

    def close(self) -> None:
        self.db.close()
