"""Instruction tokenization with the backbone's own tokenizer (`AutoTokenizer`).

`train_tokenizer` builds a small byte-level BPE tokenizer offline with the
`tokenizers` library and saves it as a folder `AutoTokenizer` loads - for tests
and for the from-scratch demo model, which have no pretrained checkpoint.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from data_pipelines.errors import DataError
from vla_runtime.policy_io import TokenLayout, layout_tokens

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def load_tokenizer(path: str):
    """The tokenizer saved in a checkpoint / export folder (needs tokenizer.json or its HF files)."""
    from transformers import AutoTokenizer

    if not os.path.isdir(path):
        raise DataError(f"{path}: tokenizer folder does not exist; pass the backbone checkpoint folder")
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise DataError(
            f"{path}: cannot load a tokenizer ({err}); the folder needs tokenizer.json "
            "(or the backbone's tokenizer files) - copy them from the checkpoint"
        ) from err
    if tok.pad_token_id is None:
        raise DataError(f"{path}: tokenizer has no pad token; set pad_token in tokenizer_config.json")
    return tok


def train_tokenizer(texts: Iterable[str], out_dir: str, vocab_size: int = 512, model_max_length: int = 64):
    """Train a byte-level BPE tokenizer on `texts`, save it to `out_dir`, return it (AutoTokenizer-loadable)."""
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values())
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos, eos = SPECIAL_TOKENS["bos_token"], SPECIAL_TOKENS["eos_token"]
    # BOS/EOS around every instruction, as the Kosmos-2 / XLM-R family tokenizers do.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length, **SPECIAL_TOKENS)
    os.makedirs(out_dir, exist_ok=True)
    fast.save_pretrained(out_dir)
    return load_tokenizer(out_dir)


class InstructionTokenizer:
    """Instructions -> (tokens, mask) of `instruction_length`: the backbone's tokenizer truncates, policy_io's
    TokenLayout pads (as the robot runtime does); ids are cached (a dataset has few distinct texts)."""

    def __init__(self, tokenizer, instruction_length: int):
        self.tokenizer = tokenizer
        self.instruction_length = int(instruction_length)
        self.layout = TokenLayout(instruction_length=self.instruction_length, pad_id=int(tokenizer.pad_token_id))
        self.truncated = 0  # distinct instructions cut to instruction_length (each logged once)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        if text not in self._cache:
            ids = self.tokenizer(text, truncation=True, max_length=self.instruction_length)["input_ids"]
            if len(ids) == self.instruction_length:  # maybe cut: say so once per distinct instruction, never silently
                full = len(self.tokenizer(text)["input_ids"])
                if full > self.instruction_length:
                    self.truncated += 1
                    logging.getLogger("data_pipelines").warning(
                        "instruction of %d tokens truncated to instruction_length %d (raise the instruction "
                        "length to keep it whole): %.80r",
                        full,
                        self.instruction_length,
                        text,
                    )
            self._cache[text] = layout_tokens(ids, self.layout)
        return self._cache[text]

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """-> tokens int32 [b, L] (right-padded with pad id), token_mask bool [b, L]."""
        rows = [self.encode(text.decode() if isinstance(text, bytes) else str(text)) for text in texts]
        if not rows:
            return np.zeros((0, self.instruction_length), np.int32), np.zeros((0, self.instruction_length), bool)
        return np.stack([r[0] for r in rows]).astype(np.int32), np.stack([r[1] for r in rows])


class ByteTokenizer:
    """UTF-8 bytes as tokens (ids 3..258; 0 pad, 1 bos, 2 eos) - for `inspect-data` without a checkpoint.

    Only for looking at data: a model must use its backbone's tokenizer.
    """

    pad_token_id, bos_token_id, eos_token_id = 0, 1, 2

    def __call__(self, text: str, truncation: bool = True, max_length: int | None = None) -> dict:
        ids = [self.bos_token_id] + [b + 3 for b in text.encode("utf-8")] + [self.eos_token_id]
        if truncation and max_length:
            ids = ids[: max_length - 1] + [self.eos_token_id] if len(ids) > max_length else ids
        return {"input_ids": ids}
