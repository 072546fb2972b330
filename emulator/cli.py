"""`sagemaker-emulator serve`: start the emulator on one port."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .config import Config

log = logging.getLogger("sagemaker_emulator")


class _QuietHandler(WSGIRequestHandler):
    """Per-request access lines would drown the job/endpoint progress users want to see."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if log.isEnabledFor(logging.DEBUG):
            super().log_request(code, size)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(config: Config) -> None:
    app = create_app(config)
    server = make_server(config.host, config.port, app, threaded=True, request_handler=_QuietHandler)
    port = server.server_port
    shown_host = config.host if _is_loopback(config.host) else "127.0.0.1"
    url = f"http://{shown_host}:{port}"
    if not _is_loopback(config.host):
        log.warning("listening on %s: anyone who can reach this address can drive Docker through "
                    "the emulator; bind 127.0.0.1 unless you mean it", config.host)
    print(f"SageMaker emulator listening on {url} (data dir {config.data_dir})", flush=True)
    print(f"export AWS_ENDPOINT_URL={url}", flush=True)

    def _stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.services.close()


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
    run.add_argument("--log-level", default="INFO", help="logging level (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config(host=args.host, port=args.port, data_dir=args.data_dir.expanduser(),
                    account_id=args.account_id, region=args.region)
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
