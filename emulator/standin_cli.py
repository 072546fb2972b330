"""`sagemaker-emulator images list | build [NAME ...] | remove [NAME ...]`: the stand-ins for AWS's images.

Jobs and endpoints build a missing stand-in on first use; this prebuilds them (CI, a fresh machine)
and shows what is there. NAME is `sklearn:1.2-1`, `sagemaker-emulator/xgboost:1.7-1` or an AWS URI.
"""

from __future__ import annotations

import argparse
import sys
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    images = sub.add_parser("images", help="list, build or remove the local stand-ins for AWS's framework images")
    images.add_argument("action", choices=("list", "build", "remove"))
    images.add_argument("names", nargs="*", help="stand-ins (default: all); e.g. sklearn:1.2-1 or an ECR URI")


def run(args: argparse.Namespace) -> int:
    from .runtime import framework_images
    from .runtime.docker_engine import DockerRuntime
    from .runtime.standin_builder import builder_for, recipe_hash

    try:
        standins = [framework_images.standin_named(n) for n in args.names] if args.names \
            else framework_images.all_standins()
    except (KeyError, framework_images.images.ImageUnavailable) as exc:
        print(f"sagemaker-emulator images: {exc}", file=sys.stderr)
        return 2
    builder = builder_for(DockerRuntime(owner="cli"))
    if args.action == "list":
        print(f"{'STAND-IN':34} {'STATUS':10} {'SIZE':>9}  RECIPE")
        for standin in standins:
            size = builder.size(standin)
            status = "missing" if size is None else ("current" if builder.is_current(standin) else "stale")
            shown = "-" if size is None else f"{size / 1e6:.0f} MB"
            print(f"{standin.image:34} {status:10} {shown:>9}  {recipe_hash(standin)}")
        print(f"Supported AWS images: {framework_images.supported()}")
        return 0
    if args.action == "remove":
        for standin in standins:
            print(f"{standin.image}: {'removed' if builder.remove(standin) else 'not present'}")
        return 0
    failed = 0
    for standin in standins:
        started = time.time()
        if builder.is_current(standin):
            print(f"{standin.image}: up to date")
            continue
        try:
            builder.build_now(standin, lambda text: print(f"  {text}", flush=True))
        except Exception as exc:
            print(f"{standin.image}: build failed: {exc}", file=sys.stderr)
            failed += 1
            continue
        size = builder.size(standin) or 0
        print(f"{standin.image}: built in {time.time() - started:.0f} s, {size / 1e6:.0f} MB", flush=True)
    return 1 if failed else 0
