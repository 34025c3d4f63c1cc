"""`vla-runtime` command line: `serve` an export folder, `info` about one, `sizes` for a config."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

import torch

from .bench import main as bench_main
from .bundle import read_config
from .errors import InputError, RuntimeConfigError
from .policy import Policy
from .sizes import model_sizes


def _serve(args) -> int:
    from .server import PolicyServer

    policy = Policy.load(args.export_dir, device=args.device, mode=args.mode)
    server = PolicyServer(policy, args.host, args.port, max_message_bytes=args.max_message_mb * 1024 * 1024)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"vla-runtime serve: listening on {args.host}: reachable from the network", file=sys.stderr)
    try:
        asyncio.run(server.serve_forever())
    except KeyboardInterrupt:
        pass
    return 0


def _info(args) -> int:
    config = read_config(args.export_dir)
    summary = {k: config[k] for k in ("architecture", "dtype", "format_version")}
    summary["policy"] = config["policy"]
    summary["sizes"] = model_sizes(config["backbone"], config["policy"])
    print(json.dumps(summary, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vla-runtime", description="Torch runtime for vla-jax exports.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="serve an export folder over websockets (msgpack-numpy)",
        description="Serve an export folder over websockets (msgpack-numpy, /healthz).",
    )
    serve.add_argument("export_dir", help="folder written by `vla-jax export`")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--device", default="cpu", help="cpu or cuda")
    serve.add_argument(
        "--mode",
        default="receding",
        choices=("receding", "ensemble"),
        help="receding: execute the newest chunk; ensemble: temporal ensembling of overlapping chunks",
    )
    serve.add_argument("--max-message-mb", type=int, default=16, help="largest accepted message")
    serve.set_defaults(fn=_serve)
    info = sub.add_parser(
        "info",
        help="verify an export folder and print its config and sizes",
        description="Verify an export folder (sha256 of every file) and print its summary.",
    )
    info.add_argument("export_dir")
    info.set_defaults(fn=_info)
    bench = sub.add_parser(
        "bench",
        help="per-step latency: incremental vs full re-run of the window",
        description="Per-step latency of Policy.step, incremental vs full re-run (JSON line).",
    )
    bench.add_argument("export_dir")
    bench.add_argument("--steps", type=int, default=20, help="timed steps after the window has filled")
    bench.add_argument("--device", default="cpu")
    bench.add_argument(
        "--dtype",
        default=None,
        choices=("float32", "bfloat16", "float16"),
        help="compute dtype (default: the export's; int8 exports run fp16 on CUDA, fp32 on CPU)",
    )
    bench.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    bench.set_defaults(fn=_bench)
    return parser


def _bench(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    return bench_main(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 0
    try:
        return int(args.fn(args) or 0)
    except (RuntimeConfigError, InputError) as err:
        print(f"vla-runtime {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
