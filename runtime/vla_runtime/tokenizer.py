"""Instruction -> token ids with the `tokenizers` library only, identical to the training tokenizer.

The export copies the training tokenizer's `tokenizer.json` (the fast tokenizer's
own serialisation), so `Tokenizer.from_file(...).encode(text)` runs the same
normaliser, pre-tokeniser, model and post-processor (`<s> ... </s>`) as
`AutoTokenizer` did in training. config.json's `tokenizer` block says how the ids
were laid out: `{"max_length": L, "pad_id": int, "add_special_tokens": true,
"padding_side": "right", "template": "{instruction}"}`.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np
from tokenizers import Tokenizer

from .errors import InputError, RuntimeConfigError
from .guards import strict_int


@dataclasses.dataclass(frozen=True)
class TokenizerSpec:
    max_length: int
    pad_id: int
    add_special_tokens: bool = True
    padding_side: str = "right"
    template: str = "{instruction}"

    @classmethod
    def from_dict(cls, d: Dict) -> TokenizerSpec:
        try:
            spec = cls(
                max_length=strict_int(d["max_length"], "config.json tokenizer", "max_length"),
                pad_id=strict_int(d["pad_id"], "config.json tokenizer", "pad_id"),
                add_special_tokens=bool(d.get("add_special_tokens", True)),
                padding_side=d.get("padding_side", "right"),
                template=d.get("template", "{instruction}"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise RuntimeConfigError(f"config.json: 'tokenizer' block is malformed ({err!r}); re-export") from err
        if spec.max_length < 1:
            raise RuntimeConfigError(f"config.json: tokenizer max_length {spec.max_length} must be >= 1; re-export")
        if spec.padding_side not in ("left", "right"):
            raise RuntimeConfigError(f"config.json: tokenizer padding_side {spec.padding_side!r} is not left/right")
        return spec

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)


class InstructionTokenizer:
    def __init__(self, path: str, spec: TokenizerSpec):
        try:
            self.tokenizer = Tokenizer.from_file(path)
        except Exception as err:  # the tokenizers library raises a bare Exception on a bad file
            raise RuntimeConfigError(f"{path} could not be read by tokenizers ({err}); re-export the folder") from err
        self.spec = spec
        # Set by every call: None, or one sentence saying the instruction was cut to max_length tokens.
        self.truncation: Optional[str] = None
        # The fast tokenizer's own truncation/padding: the same code AutoTokenizer(truncation=True,
        # max_length=L) runs in training, so special tokens survive truncation the same way.
        self.tokenizer.enable_truncation(max_length=spec.max_length)
        self.tokenizer.enable_padding(direction=spec.padding_side, pad_id=spec.pad_id, length=spec.max_length)

    def __call__(self, instruction: str) -> Tuple[np.ndarray, np.ndarray]:
        """-> (ids int64 [L], mask bool [L])."""
        if not isinstance(instruction, str):
            raise InputError(f"instruction must be a str, got {type(instruction).__name__}")
        try:
            instruction.encode("utf-8")
        except UnicodeEncodeError as err:  # lone surrogates, e.g. bytes decoded with errors="surrogateescape"
            raise InputError(
                f"instruction is not valid text: {instruction[err.start]!r} at position {err.start} "
                "is a lone surrogate; pass the instruction as UTF-8 text"
            ) from None
        if not instruction.strip():
            raise InputError(
                "instruction is empty; pass the task in words, e.g. "
                "'Navigate around the obstacle on the left side and reach the target'"
            )
        text = self.spec.template.format(instruction=instruction)
        enc = self.tokenizer.encode(text, add_special_tokens=self.spec.add_special_tokens)
        self.truncation = None
        if enc.overflowing:
            kept = [end for (start, end), m in zip(enc.offsets, enc.attention_mask) if m and end > 0]
            cut = max(kept) if kept else 0
            self.truncation = (
                f"instruction is longer than the model's {self.spec.max_length} tokens: only "
                f"{text[:cut]!r} is used, the remaining {len(text) - cut} characters are dropped"
            )
        return np.asarray(enc.ids, dtype=np.int64), np.asarray(enc.attention_mask, dtype=bool)
