"""What every loader yields and promises: the batch keys (docs/design.md), the loader protocol, a host's share.

Batch keys: image uint8 [b,T,H,W,3], image_mask bool [b,T], tokens int32 [b,L], token_mask bool [b,L],
action f32 [b,T,C,A], action_mask bool [b,T,C], action_dim_mask bool [b,A], dataset_id int32 [b]
(b = the host's rows of the global batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from data_pipelines.errors import BadDataCounter, DataError

BATCH_KEYS = ("image", "image_mask", "tokens", "token_mask", "action", "action_mask", "action_dim_mask", "dataset_id")


class Loader(Protocol):
    """The loader protocol the trainer relies on (exact resume via get_state/set_state)."""

    statistics: dict[str, Any]  # {dataset: {"action": {mean,std,min,max,q01,q99,mask}, "normalization": mode}}
    bad_episodes: BadDataCounter  # episodes skipped under skip_bad_episodes=True, by reason

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]: ...

    def get_state(self) -> dict[str, Any]: ...  # JSON-serialisable iterator position

    def set_state(self, state: dict[str, Any]) -> None: ...


def host_batch_size(global_batch_size: int, process_count: int) -> int:
    """Rows of the global batch each host loads."""
    if global_batch_size % process_count:
        raise DataError(
            f"global_batch_size={global_batch_size} is not divisible by process_count={process_count}; "
            "pick a multiple of the number of hosts"
        )
    return global_batch_size // process_count
