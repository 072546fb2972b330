"""Letting job containers call the emulator, as containers on SageMaker call AWS.

On SageMaker a training or processing container reaches S3 (and every other service) with the
instance role's credentials: AWS's training toolkit downloads `sagemaker_submit_directory` from
S3 itself, user scripts read and write S3 with boto3. Here "AWS" is the emulator, which listens on
loopback. So, when a Docker engine is present, the server also listens on the default bridge's
gateway address (reachable from containers, not from other machines), and job containers get
`AWS_ENDPOINT_URL` pointing there, a region and credentials (dummy ones, or the first pair the
signature mode accepts) unless their Environment sets them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


def bridge_gateway(runtime: Any) -> str | None:
    """Where containers reach the host, if they run on this machine (a remote engine's gateway is its own)."""
    try:
        if runtime.remote:
            log.info("the Docker engine is on another host: job containers will not reach the emulator")
            return None
        gateway = runtime.bridge_gateway()
    except Exception as exc:  # no engine: containers then simply get no endpoint
        log.info("no Docker bridge gateway found (%s): job containers will not reach the emulator", exc)
        return None
    if gateway is None:
        log.info("no Docker bridge gateway found: job containers will not reach the emulator")
    return gateway


def start_listener(config: Any, app: Any, runtime: Any, make_server: Any) -> Any | None:
    """A second listener on the bridge gateway (same port when free); sets `config.container_url`."""
    if not config.container_access:
        return None
    host = config.host
    if host in ("0.0.0.0", "::"):  # already reachable on every address, the gateway's included
        gateway = bridge_gateway(runtime)
        if gateway:
            config.container_url = f"http://{gateway}:{config.self_url.rsplit(':', 1)[1]}"
        return None
    gateway = bridge_gateway(runtime)
    if gateway is None:
        return None
    port = int(config.self_url.rsplit(":", 1)[1])
    server = None
    for candidate in (port, 0):
        try:
            server = make_server(gateway, candidate, app)
            break
        except OSError as exc:
            log.info("cannot listen on %s:%s for containers (%s)", gateway, candidate, exc)
    if server is None:
        return None
    threading.Thread(target=server.serve_forever, name="container-listener", daemon=True).start()
    config.container_url = f"http://{gateway}:{server.server_port}"
    log.info("job containers reach the emulator at %s", config.container_url)
    return server


def environment(config: Any, region: str, user_env: dict[str, str] | None) -> dict[str, str]:
    """What a job container needs to call the emulator's AWS services; the user's values win."""
    if not config.container_url:
        return {}
    credentials = getattr(config, "require_signature", None) or {}
    key, secret = next(iter(credentials.items()), ("sagemaker-emulator", "sagemaker-emulator"))
    env = {"AWS_ENDPOINT_URL": config.container_url, "AWS_DEFAULT_REGION": region, "AWS_REGION": region,
           "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    user_env = user_env or {}
    if "AWS_ACCESS_KEY_ID" in user_env or "AWS_PROFILE" in user_env:  # the user brings credentials
        env.pop("AWS_ACCESS_KEY_ID")
        env.pop("AWS_SECRET_ACCESS_KEY")
    return {k: v for k, v in env.items() if k not in user_env}
