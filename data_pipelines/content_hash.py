"""Content fingerprint of a prepared tfds dataset directory: the key of its cached statistics.

File sizes are not a key: re-converting episodes after fixing an action sign gives files of
exactly the same sizes (float32 actions are fixed-width) and would silently reuse stale
statistics. The fingerprint hashes bytes instead: every byte of each file up to
`FULL_HASH_BYTES` (all of a converted mobile dataset, all metadata files), and for larger
shards (OXE shards are 100+ MB, thousands per dataset, often on GCS) their size plus
`WINDOWS` evenly spaced windows of `WINDOW_BYTES` - a rewrite of the records changes the
first window already, at a cost of reading ~0.4 MB per large shard instead of the whole
dataset. Files are read in parallel through `tf.io.gfile` (local paths and gs:// alike).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

FULL_HASH_BYTES = 8 << 20
WINDOWS = 3
WINDOW_BYTES = 128 << 10


def file_digest(path: str) -> str:
    import tensorflow as tf

    h = hashlib.sha256()
    size = tf.io.gfile.stat(path).length
    h.update(str(size).encode())
    with tf.io.gfile.GFile(path, "rb") as f:
        if size <= FULL_HASH_BYTES:
            h.update(f.read())
        else:
            for i in range(WINDOWS):
                f.seek((size - WINDOW_BYTES) * i // (WINDOWS - 1))
                h.update(f.read(WINDOW_BYTES))
    return h.hexdigest()


def directory_fingerprint(directory: str, threads: int = 16) -> str:
    """sha256 over (file name, digest) of every file directly in `directory` (a tfds `<name>/<version>` dir)."""
    import tensorflow as tf

    root = directory.rstrip("/")
    names = sorted(
        n.rstrip("/") for n in tf.io.gfile.listdir(directory) if not tf.io.gfile.isdir(f"{root}/{n.rstrip('/')}")
    )
    paths = [f"{root}/{n}" for n in names]
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(paths)))) as pool:
        digests = list(pool.map(file_digest, paths))
    h = hashlib.sha256()
    for name, digest in zip(names, digests):
        h.update(f"{name}:{digest}\n".encode())
    return h.hexdigest()[:32]
