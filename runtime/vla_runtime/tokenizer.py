"""Instruction -> token ids with the `tokenizers` library only, identical to the training tokenizer.

The export copies the training tokenizer's `tokenizer.json` (the fast tokenizer's
own serialisation), so `Tokenizer.from_file(...).encode(text)` runs the same
normaliser, pre-tokeniser, model and post-processor (`<s> ... </s>`) as
`AutoTokenizer` did in training. config.json's `tokenizer` block (policy_io.TokenLayout)
says how the ids are laid out: `{"instruction_length": L, "pad_id": int,
"add_special_tokens": true, "padding_side": "right", "template": "{instruction}"}`.
"""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from .errors import InputError, RuntimeConfigError
from .policy_io import TokenLayout, layout_tokens


class InstructionTokenizer:
    def __init__(self, path: str, layout: TokenLayout):
        try:
            self.tokenizer = Tokenizer.from_file(path)
        except Exception as err:  # the tokenizers library raises a bare Exception on a bad file
            raise RuntimeConfigError(f"{path} could not be read by tokenizers ({err}); re-export the folder") from err
        self.layout = layout
        # Set by every call: None, or one sentence saying the instruction was cut to instruction_length tokens.
        self.truncation: str | None = None
        # The fast tokenizer's own truncation: the same code AutoTokenizer(truncation=True, max_length=L)
        # runs in training, so special tokens survive truncation the same way; policy_io pads.
        self.tokenizer.enable_truncation(max_length=layout.instruction_length)

    def __call__(self, instruction: str) -> tuple[np.ndarray, np.ndarray]:
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
        text = self.layout.template.format(instruction=instruction)
        enc = self.tokenizer.encode(text, add_special_tokens=self.layout.add_special_tokens)
        self.truncation = None
        if enc.overflowing:
            kept = [end for (_, end), m in zip(enc.offsets, enc.attention_mask) if m and end > 0]
            cut = max(kept) if kept else 0
            self.truncation = (
                f"instruction is longer than the model's {self.layout.instruction_length} tokens: only "
                f"{text[:cut]!r} is used, the remaining {len(text) - cut} characters are dropped"
            )
        return layout_tokens(enc.ids, self.layout)
