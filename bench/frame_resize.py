"""Camera frame -> model size (`vla_runtime.policy_io.resize_frame`): ms per frame on one core, per camera size.

    python -m bench.frame_resize                                   # 480x640, 720x1280, 1080x1920, 256x256 -> 224
    python -m bench.frame_resize --target 48 48                    # to the demo width
    git archive 4fffc4f runtime/vla_runtime | tar -x -C /tmp/before
    python -m bench.frame_resize --before /tmp/before/runtime      # A/B; exit 1 if any frame's bytes differ
    python -m bench.frame_resize --quick                           # toy sizes (smoke test)

The resize runs on every robot step whose camera does not deliver the model's size (`to_model_frame`), and in the
grain loader and the episode converters, which call the same function so that training and the robot see the
same bytes. An optimisation of it must not move one byte: ``--before`` (another revision's resize, in this
process) compares every camera size's output with the other revision's and fails the run when one differs.
Timing: ``--rounds`` rounds; in each, every side is called ``--calls`` times and its fastest call kept (the
shared host's load hits the sides alike); reported: the median over rounds per side and, with ``--before``, the
median and range of before / after per round. Frames are random uint8 (the arithmetic has no data-dependent
branch, so content does not change the time).
"""

from __future__ import annotations

import importlib
import os
import statistics
import tempfile
import time

import numpy as np

from bench import common
from vla_runtime.policy_io import RESIZE_MODES

CAMERAS = ((480, 640), (720, 1280), (1080, 1920), (256, 256))  # VGA, 720p, 1080p, OXE's 256 x 256 frames
QUICK_CAMERAS = ((48, 64), (30, 40))


def _camera(text: str) -> tuple[int, int]:
    h, sep, w = text.partition("x")
    if not sep or not h.isdigit() or not w.isdigit() or min(int(h), int(w)) < 2:
        raise ValueError(f"--cameras {text!r}: give HEIGHTxWIDTH, each at least 2, e.g. 480x640")
    return int(h), int(w)


def _fastest(resize, frame, size, mode, calls: int) -> float:
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        resize(frame, size, mode)
        best = min(best, time.perf_counter() - t0)
    return best


def measure(sides: dict, frame: np.ndarray, size: tuple[int, int], mode: str, rounds: int, calls: int) -> dict:
    """`sides`: name -> resize_frame; the first is the reference the others' bytes are compared with."""
    outputs = {name: resize(frame, size, mode) for name, resize in sides.items()}
    reference = next(iter(outputs.values()))
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, resize in sides.items():
            times[name].append(_fastest(resize, frame, size, mode, calls))
    row = {
        "camera": list(frame.shape[:2]),
        "target": list(size),
        "mode": mode,
        **{f"{name}_ms": statistics.median(t) * 1e3 for name, t in times.items()},
    }
    if len(outputs) > 1:  # with one side there is nothing to compare: no field that cannot be false
        row["bytes_equal"] = all(np.array_equal(out, reference) for out in outputs.values())
    if "before" in times:
        ratios = [b / a for b, a in zip(times["before"], times["after"])]
        row.update(before_over_after=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios))
    row["load_1min"] = round(os.getloadavg()[0], 2)
    return row


def _resize_frame_of(runtime):
    return importlib.import_module(f"{runtime.__name__}.policy_io").resize_frame


def run(args) -> tuple[dict, list[str]]:
    from bench.runtime_step import import_runtime

    cameras = args.cameras or (QUICK_CAMERAS if args.quick else CAMERAS)
    h, w = args.target or ((16, 16) if args.quick else (224, 224))
    size = (int(h), int(w))
    rng = np.random.default_rng(0)
    results, rows, moved = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_frame_resize_") as tmp:
        sides = {"after": _resize_frame_of(import_runtime(None, tmp))}
        if args.before:
            sides = {"before": _resize_frame_of(import_runtime(args.before, tmp)), **sides}
        for h, w in cameras:
            frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            r = measure(sides, frame, size, args.mode, args.rounds, args.calls)
            results.append(r)
            if not r.get("bytes_equal", True):
                moved.append(f"{h}x{w}")
            rows.append(
                [f"{h}x{w}", f"{size[0]}x{size[1]}", r.get("before_ms", "-"), r["after_ms"]]
                + [r.get("before_over_after", "-"), r.get("bytes_equal", "-"), r["load_1min"]]
            )
    common.print_table(
        f"resize_frame ({args.mode}), ms per frame, fastest of {args.calls} calls, median of {args.rounds} rounds",
        ["camera HxW", "target", "before", "after", "before/after", "bytes equal", "load"],
        rows,
    )
    result = {
        "benchmark": "frame_resize",
        "quick": bool(args.quick),
        "before": os.path.abspath(args.before) if args.before else None,
        "mode": args.mode,
        "rounds": args.rounds,
        "calls": args.calls,
        "machine": common.machine_info(),
        "results": results,
    }
    return result, moved


def main(argv=None) -> int:
    p = common.parser("frame_resize", str(__doc__).splitlines()[0])
    p.add_argument(
        "--cameras",
        nargs="+",
        default=None,
        help="HEIGHTxWIDTH camera sizes (default: " + " ".join(f"{h}x{w}" for h, w in CAMERAS) + ")",
    )
    p.add_argument("--target", nargs=2, type=int, metavar=("H", "W"), default=None, help="model size (default 224 224)")
    p.add_argument("--mode", default="resize", choices=RESIZE_MODES, help="resize_mode (default resize)")
    p.add_argument("--before", default=None, help="a runtime/ folder of another revision to compare with")
    p.add_argument("--rounds", type=int, default=0, help="interleaved rounds (default 21; quick 3)")
    p.add_argument("--calls", type=int, default=5, help="calls per side per round, the fastest kept (default 5)")
    args = p.parse_args(argv)
    try:
        args.cameras = [_camera(c) for c in args.cameras] if args.cameras else None
    except ValueError as e:
        p.error(str(e))
    if args.target and min(args.target) < 1:
        p.error(f"--target {args.target[0]} {args.target[1]}: the model's size is at least 1 x 1")
    if args.rounds < 0 or args.calls < 1:
        p.error("--rounds must be >= 0 and --calls >= 1")
    args.rounds = args.rounds or (3 if args.quick else 21)
    result, moved = run(args)
    common.write_result(args.out, result)
    if moved:
        print(f"frame_resize: the output differs from --before's on {', '.join(moved)}: the change moved bytes")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
