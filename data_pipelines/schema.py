"""Feature leaves of an RLDS/tfds dataset, and the check that a dataset on disk has the ones a transform reads.

A `Leaf` is one tensor of the tfds feature structure, written the way the TFDS catalog
prints it (`float32[3]`, `float32[]` for a scalar, `image uint8[480,640,3] jpeg`,
`string[]`). `leaves(builder.info.features)` lists every leaf by its path inside an
episode (`steps/action/world_vector`, `episode_metadata/file_path`).

`check(name, expected, features, where)` runs when a dataset is opened, before any
TensorFlow op: a standardization written for `float32[1]` that meets `float32[]` (a
scalar, as `viola` publishes its gripper) is one `DataError` naming the dataset, the key,
the expected and the found leaf - not a `ConcatV2` traceback from inside tf.data.
Image height/width and encoding are not checked (copies of OXE datasets are often
resized or re-encoded, and decoding handles JPEG and PNG); channels and dtype are.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping

from data_pipelines.errors import DataError

KINDS = {
    "float": ("float16", "bfloat16", "float32", "float64"),
    "int": ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
}
_PATTERN = re.compile(r"^\s*(image\s+)?([a-z0-9]+)\[([0-9,\s*]*)\]\s*(jpeg|png)?\s*$")


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One tensor of a feature structure. `dtype` may be a kind ("float", "int") to accept any width.

    `shape` dims of None match any size ("*" when written). `values` optionally lists the
    values a field takes (from its published description, e.g. a relative gripper command
    in {-1, 0, 1}); fixtures draw from it, the check ignores it. `utf8` marks an integer
    array holding a zero-padded UTF-8 string (language_table's instruction).
    """

    dtype: str
    shape: tuple = ()
    image: bool = False
    encoding: str | None = None
    values: tuple | None = None
    utf8: bool = False

    @classmethod
    def parse(cls, text: str) -> Leaf:
        """`"float32[3]"`, `"float[*]"`, `"bool[]"`, `"string[]"`, `"image uint8[*,*,3] jpeg"`."""
        m = _PATTERN.match(text)
        if not m:
            raise DataError(
                f"feature spec {text!r}: write it like 'float32[3]', 'float[*]', 'string[]' or 'image uint8[*,*,3]'"
            )
        dims = tuple(None if d.strip() == "*" else int(d) for d in m.group(3).split(",") if d.strip())
        return cls(dtype=m.group(2), shape=dims, image=bool(m.group(1)), encoding=m.group(4))

    def __str__(self) -> str:
        dims = ",".join("*" if d is None else str(d) for d in self.shape)
        text = f"{self.dtype}[{dims}]"
        return f"image {text}{' ' + self.encoding if self.encoding else ''}" if self.image else text

    @property
    def channels(self) -> int | None:
        return self.shape[-1] if self.image and self.shape else None

    def accepts(self, found: Leaf) -> bool:
        """Whether a transform written for `self` can read `found` (images: any size, same channels/dtype)."""
        if self.image:
            return found.image and _dtype_ok(self.dtype, found.dtype) and self.channels in (None, found.channels)
        if found.image or not _dtype_ok(self.dtype, found.dtype) or len(self.shape) != len(found.shape):
            return False
        return all(e is None or e == f for e, f in zip(self.shape, found.shape))


def _dtype_ok(expected: str, found: str) -> bool:
    return expected == found or found in KINDS.get(expected, ())


def leaf_of(feature) -> Leaf:
    """tfds feature (Tensor, Scalar, Text, Image) -> Leaf."""
    import tensorflow_datasets as tfds

    dtype = getattr(feature, "np_dtype", None)
    shape: tuple = tuple(getattr(feature, "shape", ()))  # every leaf feature has one (tfds types it loosely)
    name = "string" if dtype is None or getattr(dtype, "kind", "") in "OSU" else str(dtype)
    if isinstance(feature, tfds.features.Image):
        return Leaf(dtype=name, shape=shape, image=True, encoding=feature.encoding_format)
    return Leaf(dtype=name, shape=shape)


def split_path(path: str) -> list[str]:
    """`"steps/action/[future/target_close]"` -> ["steps", "action", "future/target_close"].

    Some publishers use keys that contain a slash (bc_z's `future/target_close`, kuka's
    `clip_function_input/base_pose_tool_reached`); such a key is written in brackets so a
    path stays unambiguous.
    """
    return [m.group(1) or m.group(2) for m in re.finditer(r"\[([^\]]+)\]|([^/\[\]]+)", path)]


def join_path(parts) -> str:
    return "/".join(f"[{p}]" if "/" in p else p for p in parts)


def leaves(features, prefix: tuple = ()) -> Iterator[tuple[str, Leaf]]:
    """Every leaf of a tfds FeaturesDict as (path, Leaf); a nested `Dataset` (RLDS steps) is walked into."""
    import tensorflow_datasets as tfds

    if isinstance(features, tfds.features.Dataset):
        features = features.feature
    if isinstance(features, tfds.features.FeaturesDict):
        for key in features.keys():
            yield from leaves(features[key], (*prefix, key))
        return
    yield join_path(prefix), leaf_of(features)


def check(name: str, expected: Mapping[str, Leaf], features, where: str, source: str | None = None) -> None:
    """Raise one DataError listing every expected leaf that is missing or has another shape/dtype."""
    found = dict(leaves(features))
    problems = []
    for path, want in expected.items():
        got = found.get(path)
        if got is None:
            parent = split_path(path)[:-1]
            near = sorted(p for p in found if split_path(p)[:-1] == parent)
            problems.append(f"key `{path}` is missing (expected {want}; siblings: {near[:12]})")
        elif not want.accepts(got):
            problems.append(f"key `{path}` is {got}, expected {want}")
    if problems:
        spec = f" (published schema: {source})" if source else ""
        raise DataError(
            f"dataset {name} at {where}: {'; '.join(problems)}{spec}; the registry entry's "
            "standardization reads these keys: fix the entry (or its `expects`) or use a copy of the "
            "dataset with the published feature structure"
        )
