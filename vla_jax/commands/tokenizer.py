"""`vla-jax tokenizer --from-dataset NAME --data-dir DIR --out TOKENIZER_DIR`: a tokenizer for a from-scratch model.

Trains the byte-level BPE tokenizer of `data_pipelines.tokenize.train_tokenizer` on the instructions
of a dataset's (or a mixture's) train split and saves it where `AutoTokenizer`, `config.data.tokenizer`
and `vla-jax export` load it. The printed JSON gives the longest instruction in tokens, so
`data.instruction_length` can be set to hold it.
"""

from __future__ import annotations

import argparse
import json

from data_pipelines import registry, rlds
from data_pipelines.errors import DataError
from data_pipelines.tokenize import train_tokenizer

# The dispatcher adds `--registry FILE` (your own datasets) and loads those files before `run`.
USES_DATASET_REGISTRY = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-dataset", required=True, help="dataset or mixture whose instructions to train on")
    parser.add_argument("--data-dir", required=True, help="folder holding <dataset>/<version>/ (local or gs://)")
    parser.add_argument("--out", required=True, help="tokenizer folder to write (tokenizer.json + config)")
    parser.add_argument("--vocab-size", type=int, default=512, help="vocabulary size incl. 256 bytes (default 512)")


def run(args: argparse.Namespace) -> int:
    if args.vocab_size < 261:  # 256 byte symbols + 4 special tokens + at least one merge
        raise DataError(f"--vocab-size {args.vocab_size}: needs at least 261 (256 bytes, 4 special tokens, 1 merge)")
    texts: list[str] = []
    for name, _ in registry.get_mixture(args.from_dataset):
        texts += rlds.episode_instructions(registry.get_spec(name), args.data_dir)
    if not texts:
        raise DataError(f"{args.from_dataset}: no instructions in its train split; nothing to train a tokenizer on")
    tok = train_tokenizer(texts, args.out, vocab_size=args.vocab_size)
    lengths = [len(tok(t)["input_ids"]) for t in set(texts)]
    summary = {
        "tokenizer": args.out,
        "episodes_instructions": len(texts),
        "distinct_instructions": len(set(texts)),
        "vocab_size": len(tok),
        "longest_instruction_tokens": max(lengths),
    }
    print(json.dumps(summary))
    return 0
