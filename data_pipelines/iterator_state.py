"""Exact resume of a tf.data pipeline: its iterator checkpointed with `tf.train.Checkpoint`.

tf.data serialises the whole iterator state - file positions, interleave cycles, the
shuffle buffer, RNG states of `sample_from_datasets` and `shuffle`, the elements already
inside parallel maps and prefetch buffers - so a restored iterator yields exactly the
elements the original would have yielded next. The loader's JSON state (what the trainer
stores in its orbax checkpoint) names the file, relative to the state directory:

    <workdir>/data_iterators/process_<i>/batches_<n>.index / .data-00000-of-00001

Size: dominated by the shuffle buffer, which holds still-encoded frames (about
shuffle_buffer x window x JPEG size per host), plus the decoded batches in flight
(prefetch). The newest `keep` files per process are kept, like the trainer's checkpoints.
Stateful ops whose state cannot be saved (the bad-data `py_function`s, which only raise or
count) are ignored by policy: they do not influence which elements come next.
"""

from __future__ import annotations

import logging
import re

from data_pipelines.errors import DataError

log = logging.getLogger("data_pipelines")
_NAME = re.compile(r"batches_(\d+)\.index$")


class IteratorCheckpoints:
    """Save / restore / prune one process's tf.data iterator checkpoints under `directory`."""

    def __init__(self, directory: str, process_index: int, keep: int = 3):
        self.root = str(directory).rstrip("/")
        self.process_index = int(process_index)
        self.keep = max(1, int(keep))

    @property
    def folder(self) -> str:
        return f"{self.root}/process_{self.process_index}"

    def save(self, iterator, batches: int) -> str:
        """Write the iterator's state after `batches` batches; returns its name relative to the directory."""
        import tensorflow as tf

        tf.io.gfile.makedirs(self.folder)
        relative = f"process_{self.process_index}/batches_{int(batches)}"
        tf.train.Checkpoint(iterator=iterator).write(f"{self.root}/{relative}")
        self._prune()
        return relative

    def restore(self, iterator, relative: str) -> None:
        import tensorflow as tf

        prefix = f"{self.root}/{relative}"
        if not tf.io.gfile.exists(prefix + ".index"):
            raise DataError(
                f"{prefix}.index: the data iterator checkpoint named by the training checkpoint is "
                "missing; copy the workdir's data_iterators/ folder along with checkpoints/, or resume "
                "without it by deleting 'iterator' from the loader state (exact but slower replay)"
            )
        try:
            tf.train.Checkpoint(iterator=iterator).read(prefix).assert_consumed()
        except (tf.errors.OpError, AssertionError, ValueError) as err:
            raise DataError(
                f"{prefix}: cannot restore the data iterator ({str(err).splitlines()[0][:200]}); "
                "resume with the data config the run was started with"
            ) from None

    def _prune(self) -> None:
        import tensorflow as tf

        found = []
        for path in tf.io.gfile.glob(f"{self.folder}/batches_*.index"):
            m = _NAME.search(path)
            if m:
                found.append((int(m.group(1)), path[: -len(".index")]))
        for _, prefix in sorted(found)[: -self.keep]:
            for path in tf.io.gfile.glob(prefix + ".*"):
                tf.io.gfile.remove(path)
