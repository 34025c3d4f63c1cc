"""Instruction -> token ids with the `tokenizers` library only, identical to the training tokenizer.

The export copies the training tokenizer's `tokenizer.json` (the fast tokenizer's
own serialisation), so `Tokenizer.from_file(...).encode(text)` runs the same
normaliser, pre-tokeniser, model and post-processor (`<s> ... </s>`) as
`AutoTokenizer` did in training. config.json's `tokenizer` block says how the ids
were laid out: `{"instruction_length": L, "pad_id": int, "add_special_tokens": true,
"padding_side": "right", "template": "{instruction}"}`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tokenizers import Tokenizer

from .errors import InputError, RuntimeConfigError


@dataclasses.dataclass(frozen=True)
class TokenizerSpec:
    instruction_length: int
    pad_id: int
    add_special_tokens: bool = True
    padding_side: str = "right"
    template: str = "{instruction}"

    @classmethod
    def from_dict(cls, d: dict) -> TokenizerSpec:
        try:
            spec = cls(
                instruction_length=int(d["instruction_length"]),
                pad_id=int(d["pad_id"]),
                add_special_tokens=bool(d.get("add_special_tokens", True)),
                padding_side=d.get("padding_side", "right"),
                template=d.get("template", "{instruction}"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise RuntimeConfigError(f"config.json: 'tokenizer' block is malformed ({err!r}); re-export") from err
        if spec.padding_side not in ("left", "right"):
            raise RuntimeConfigError(f"config.json: tokenizer padding_side {spec.padding_side!r} is not left/right")
        return spec

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class InstructionTokenizer:
    def __init__(self, path: str, spec: TokenizerSpec):
        try:
            self.tokenizer = Tokenizer.from_file(path)
        except Exception as err:  # the tokenizers library raises a bare Exception on a bad file
            raise RuntimeConfigError(f"{path} could not be read by tokenizers ({err}); re-export the folder") from err
        self.spec = spec
        # The fast tokenizer's own truncation/padding: the same code AutoTokenizer(truncation=True,
        # max_length=L) runs in training, so special tokens survive truncation the same way.
        self.tokenizer.enable_truncation(max_length=spec.instruction_length)
        self.tokenizer.enable_padding(direction=spec.padding_side, pad_id=spec.pad_id, length=spec.instruction_length)

    def __call__(self, instruction: str) -> tuple[np.ndarray, np.ndarray]:
        """-> (ids int64 [L], mask bool [L])."""
        if not isinstance(instruction, str):
            raise InputError(f"instruction must be a str, got {type(instruction).__name__}")
        if not instruction.strip():
            raise InputError(
                "instruction is empty; pass the task in words, e.g. "
                "'Navigate around the obstacle on the left side and reach the target'"
            )
        text = self.spec.template.format(instruction=instruction)
        enc = self.tokenizer.encode(text, add_special_tokens=self.spec.add_special_tokens)
        return np.asarray(enc.ids, dtype=np.int64), np.asarray(enc.attention_mask, dtype=bool)
