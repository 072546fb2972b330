"""`sagemaker-emulator serve`: start the emulator on one port."""

from __future__ import annotations

import argparse
import faulthandler
import gc
import ipaddress
import logging
import signal
import sys
from pathlib import Path

from . import standin_cli
from .config import Config, load_image_map
from .protocol.sigv4 import parse_credentials
from .runtime import container_access
from .server.app import create_app
from .server.http_server import make_server

log = logging.getLogger("sagemaker_emulator")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Running:
    """An emulator bound to its port: the app, the HTTP server, and (once `start`ed) the side listener
    for containers and the background work (recovery, event subscribers). `serve` runs one in the
    foreground; tests run one in a thread to reach its `app.services` (e.g. the event bus)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.app = create_app(config)
        self.server = make_server(config.host, config.port, self.app)
        port = self.server.server_port
        shown_host = config.host if _is_loopback(config.host) else "127.0.0.1"
        self.url = f"http://{shown_host}:{port}"
        config.self_url = f"http://127.0.0.1:{port}" if not _is_loopback(config.host) else self.url
        self.side = None

    def start(self) -> None:
        self.side = container_access.start_listener(self.config, self.app, self.app.services.runtime, make_server)
        self.app.services.start_background()

    def close(self) -> None:
        self.server.server_close()
        if self.side is not None:
            self.side.shutdown()
            self.side.server_close()
        self.app.services.close()


def serve(config: Config) -> None:
    running = Running(config)
    if not _is_loopback(config.host):
        log.warning("listening on %s: anyone who can reach this address can drive Docker through "
                    "the emulator; bind 127.0.0.1 unless you mean it", config.host)
    print(f"SageMaker emulator listening on {running.url} (data dir {config.data_dir})", flush=True)
    print(f"export AWS_ENDPOINT_URL={running.url}", flush=True)

    def _stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    running.start()
    # Everything loaded so far (botocore models, moto's backends: millions of objects) lives as long
    # as the process: keep it out of the cyclic collector's full passes, and collect the young
    # generation less often (each request allocates a few hundred short-lived objects).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 20, 20)
    try:
        running.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        running.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="start the emulator")
    defaults = Config()
    run.add_argument("--host", default=defaults.host, help="address to bind (default %(default)s)")
    run.add_argument("--port", type=int, default=defaults.port, help="port (default %(default)s; 0 = any free)")
    run.add_argument("--data-dir", type=Path, default=defaults.data_dir,
                     help="where state lives (default %(default)s; env SAGEMAKER_EMULATOR_DATA_DIR)")
    run.add_argument("--account-id", default=defaults.account_id, help="account id in ARNs (default %(default)s)")
    run.add_argument("--region", default=defaults.region, help="region for unsigned requests (default %(default)s)")
    run.add_argument("--image-map", default=None,
                     help="JSON (or a JSON file) mapping requested images to local ones "
                          "(env SAGEMAKER_EMULATOR_IMAGE_MAP)")
    run.add_argument("--pull-images", action="store_true", default=defaults.pull_images,
                     help="try `docker pull` for images missing locally")
    run.add_argument("--stop-grace-seconds", type=float, default=defaults.stop_grace_seconds,
                     help="SIGTERM to SIGKILL grace when stopping jobs (default %(default)s, as AWS)")
    run.add_argument("--limit-resources", action="store_true", default=defaults.limit_resources,
                     help="cap container CPU/memory at the instance type's size")
    run.add_argument("--s3-endpoint-url", default=defaults.s3_endpoint_url,
                     help="S3-compatible endpoint for job data (default: the embedded S3)")
    run.add_argument("--s3-fsync", action="store_true", default=defaults.s3_fsync,
                     help="fsync every S3 object before acknowledging it: survives a power cut, at disk speed "
                          "(default: survives a crash of the emulator; env SAGEMAKER_EMULATOR_S3_FSYNC)")
    run.add_argument("--require-signature", nargs="?", type=parse_credentials, const=parse_credentials("1"),
                     default=None, metavar="KEY:SECRET[,...]",
                     help="refuse requests without a valid SigV4 signature (bare flag: testing:testing; "
                          "env SAGEMAKER_EMULATOR_REQUIRE_SIGNATURE)")
    run.add_argument("--docker-host", default=defaults.docker_host or None,
                     help="Docker engine, unix:///path or tcp://host:port (default: DOCKER_HOST, else the local "
                          "socket; env SAGEMAKER_EMULATOR_DOCKER_HOST)")
    run.add_argument("--workspace", choices=("bind", "copy"), default=defaults.workspace or None,
                     help="how job and model files reach containers: host bind mounts, or copies through the "
                          "engine API (default: bind, copy for a tcp:// engine; env SAGEMAKER_EMULATOR_WORKSPACE)")
    run.add_argument("--execution", choices=("docker", "none"), default=defaults.execution,
                     help="docker: jobs and endpoints run containers; none: record-only, no container runs, jobs "
                          "complete at once and endpoints answer --canned-reply (env SAGEMAKER_EMULATOR_EXECUTION)")
    run.add_argument("--canned-reply", default=defaults.canned_reply,
                     help="what endpoints answer under --execution none (default %(default)s)")
    run.add_argument("--log-level", default="INFO", help="logging level (default %(default)s)")
    standin_cli.add_parser(sub)
    coverage = sub.add_parser("coverage", help="which SageMaker operations are served, refused or pending")
    coverage.add_argument("--markdown", action="store_true", help="print the README's generated table")
    args = parser.parse_args(argv)
    if args.command == "images":
        return standin_cli.run(args)
    if args.command == "coverage":
        from .resources import coverage as report

        print(report.markdown() if args.markdown else
              " ".join(f"{key}={value}" for key, value in report.counts().items()))
        return 0
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config(host=args.host, port=args.port, data_dir=args.data_dir.expanduser(),
                    account_id=args.account_id, region=args.region,
                    image_map=load_image_map(args.image_map) if args.image_map else defaults.image_map,
                    pull_images=args.pull_images, stop_grace_seconds=args.stop_grace_seconds,
                    limit_resources=args.limit_resources, s3_endpoint_url=args.s3_endpoint_url, s3_fsync=args.s3_fsync,
                    require_signature=defaults.require_signature if args.require_signature is None
                    else args.require_signature, docker_host=args.docker_host or "", workspace=args.workspace or "",
                    execution=args.execution, canned_reply=args.canned_reply)
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
