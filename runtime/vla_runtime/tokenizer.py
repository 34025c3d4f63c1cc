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
        # The fast tokenizer's own truncation: the same code AutoTokenizer(truncation=True, max_length=L)
        # runs in training, so special tokens survive truncation the same way; policy_io pads.
        self.tokenizer.enable_truncation(max_length=layout.instruction_length)

    def __call__(self, instruction: str) -> tuple[np.ndarray, np.ndarray]:
        """-> (ids int64 [L], mask bool [L])."""
        if not isinstance(instruction, str):
            raise InputError(f"instruction must be a str, got {type(instruction).__name__}")
        if not instruction.strip():
            raise InputError(
                "instruction is empty; pass the task in words, e.g. "
                "'Navigate around the obstacle on the left side and reach the target'"
            )
        text = self.layout.template.format(instruction=instruction)
        return layout_tokens(
            self.tokenizer.encode(text, add_special_tokens=self.layout.add_special_tokens).ids, self.layout
        )
