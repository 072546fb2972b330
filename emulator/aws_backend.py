"""Every AWS call that is not SageMaker's (S3, STS, IAM, ECR, CloudWatch, ...) goes to moto.

moto's own server dispatcher runs in this process as a WSGI app, so its services share our port
and their state lives as long as the emulator process does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def moto_wsgi_app() -> Callable[[dict, Callable], Iterable[bytes]]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)
