"""`vla-jax export --workdir DIR --out EXPORT_DIR [--step N] [--dtype ...] [--verify]`."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from vla_jax.errors import VLAJaxError
from vla_jax.export.export import dump_json_line, export_workdir
from vla_jax.export.verify import verify_export

DTYPES = ("float32", "bfloat16", "float16", "int8")
# --registry FILE: the dataset's declared action space is checked against (and fills in) the statistics' gripper.
USES_DATASET_REGISTRY = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="training workdir (vla-jax train --workdir)")
    parser.add_argument("--out", required=True, help="export folder to write (created; files overwritten)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=DTYPES,
        help="weights in the file: float32, bfloat16, float16, or int8 (weight-only, per-channel "
        "linear layers; dequantised at load)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="which dataset's action statistics the robot uses (needed when several were trained on)",
    )
    parser.add_argument(
        "--tokenizer", default=None, help="tokenizer folder (default: the workdir config's data.tokenizer)"
    )
    parser.add_argument(
        "--input-channel-order",
        default="RGB",
        choices=("RGB", "BGR"),
        help="channel order of the robot camera frames given to Policy.step (the users' ROS collector delivers BGR)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="run the JAX and the exported torch policy on the same random inputs; print one JSON "
        "line with the max abs action difference; exit 1 above tolerance (1e-4 at float32)",
    )


def run(args: argparse.Namespace) -> int:
    with tqdm(total=2 if args.verify else 1, desc="export", unit="stage") as bar:
        vcfg, params, written = export_workdir(
            args.workdir,
            args.out,
            step=args.step,
            dtype=args.dtype,
            dataset=args.dataset,
            tokenizer=args.tokenizer,
            input_channel_order=args.input_channel_order,
        )
        bar.update()
        if not args.verify:
            print(
                f"wrote {args.out} ({written['dtype']}, {written['policy']['structure']}/{written['policy']['head']})"
            )
            return 0
        bar.set_description("verify")
        result = verify_export(vcfg, params, args.out)
        bar.update()
    print(dump_json_line(result))
    if not result["ok"]:
        raise VLAJaxError(
            f"export --verify: max abs action difference {result['max_abs_action_diff']:.3g} exceeds "
            f"{result['tolerance']:g} at {result['dtype']}; the export does not match the model"
        )
    return 0
