"""`vla-runtime` command line: `serve` an export folder, `info` about one, `sizes` for a config."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

import torch

from .bench import main as bench_main
from .errors import InputError, RuntimeConfigError
from .policy import Policy
from .sizes import model_sizes
from .structures import COMPILE_MODES


def _at_least(low: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{what} must be >= {low}, got {value}")
        return value

    return parse


def _port(text: str) -> int:
    value = _at_least(0, "--port")(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"--port must be 0..65535, got {value}")
    return value


def _serve(args) -> int:
    from .server import Limits, PolicyServer

    torch.set_num_threads(args.threads)
    limits = Limits(
        max_message_bytes=args.max_message_mb * 1024 * 1024,
        max_pixels=args.max_pixels,
        max_side=args.max_side,
        max_connections=args.max_connections,
        max_inflight_per_connection=args.max_inflight_per_connection,
        max_inflight_total=args.max_inflight,
    )
    policy = Policy.load(args.export_dir, device=args.device, mode=args.mode, compile=args.compile)
    server = PolicyServer(policy, args.host, args.port, limits=limits)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.ERROR)  # handshake noise from port scanners: not ours
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"vla-runtime serve: listening on {args.host}: reachable from the network", file=sys.stderr)
    try:
        asyncio.run(server.serve_forever())
    except KeyboardInterrupt:
        pass
    except OSError as err:  # port taken, address not on this machine, privileged port
        raise RuntimeConfigError(
            f"cannot listen on {args.host}:{args.port} ({err.strerror or err}); pick another "
            "--port (or stop the program using it) or a --host of this machine"
        ) from None
    return 0


def _info(args) -> int:
    # The same checks as on the robot: hashes, weights finite at the stored dtype, statistics, tokenizer.
    config = Policy.load(args.export_dir, device="cpu").config
    summary = {k: config[k] for k in ("architecture", "dtype", "format_version")}
    summary["policy"] = config["policy"]
    summary["sizes"] = model_sizes(config["backbone"], config["policy"])
    print(json.dumps(summary, indent=2))
    return 0


COMPILE_HELP = (
    "torch.compile the backbone's per-step calls at load (Policy.load(compile=MODE); reduce-overhead = CUDA "
    "graphs): loading compiles every shape an episode makes (1.7-63 s at demo width on an Intel Xeon core), "
    "the steps compile nothing (bench/RESULTS.md 4e)"
)


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
    serve.add_argument("--port", type=_port, default=8000, help="TCP port (0: any free one)")
    serve.add_argument("--device", default="cpu", help="cpu or cuda")
    serve.add_argument(
        "--mode",
        default="receding",
        choices=("receding", "ensemble"),
        help="receding: execute the newest chunk; ensemble: temporal ensembling of overlapping chunks",
    )
    serve.add_argument(
        "--max-message-mb",
        type=_at_least(1, "--max-message-mb"),
        default=16,
        help="largest accepted message in MiB (default 16); a bigger one closes that connection",
    )
    serve.add_argument(
        "--max-pixels",
        type=_at_least(1, "--max-pixels"),
        default=1920 * 1080,
        help="largest accepted frame, H x W (default 1920x1080); bigger ones get an error reply",
    )
    serve.add_argument(
        "--max-side",
        type=_at_least(1, "--max-side"),
        default=4096,
        help="longest accepted frame side in pixels (default 4096); longer ones get an error reply",
    )
    serve.add_argument(
        "--max-connections",
        type=_at_least(1, "--max-connections"),
        default=32,
        help="clients at once (default 32); one more gets an error reply and close code 1013",
    )
    serve.add_argument(
        "--max-inflight-per-connection",
        type=_at_least(1, "--max-inflight-per-connection"),
        default=1,
        help="requests a connection may have unanswered (default 1: request/reply); "
        "more are answered 'busy' at once, never queued",
    )
    serve.add_argument(
        "--max-inflight",
        type=_at_least(1, "--max-inflight"),
        default=32,
        help="requests unanswered over all connections (default 32); more are answered 'busy'",
    )
    serve.add_argument(
        "--threads",
        type=_at_least(1, "--threads"),
        default=1,
        help="torch intra-op threads for inference (default 1: at batch 1 more threads cost more "
        "than they save on a busy CPU; see bench/RESULTS.md)",
    )
    serve.add_argument("--compile", default=None, choices=COMPILE_MODES, help=COMPILE_HELP)
    serve.set_defaults(fn=_serve)
    info = sub.add_parser(
        "info",
        help="verify an export folder and print its config and sizes",
        description="Verify an export folder as Policy.load does (sha256 of every file, finite "
        "weights and statistics, tokenizer) and print its summary.",
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
    bench.add_argument("--compile", default=None, choices=COMPILE_MODES, help=COMPILE_HELP)
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
