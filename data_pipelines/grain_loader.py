"""grain random access over the ArrayRecord RLDS written by `vla-jax convert-episodes`.

Post-training data is small (tens to hundreds of episodes), so the loader is a
pure function of the seed: a frame index (episode, step) -> this host's slice ->
per-epoch shuffle -> `random_map` (window/chunk, decode, augment, mirror, with a
per-element RNG grain derives from the seed and position) -> batch. The iterator
state grain returns is a small dict (`next_index`), so `get_state`/`set_state`
resume exactly, batch for batch, even with augmentation.

Worker processes (`worker_count > 0`) run via grain's `mp_prefetch`; the
transform re-opens the data source lazily in each worker. Scripts that use them
need an `if __name__ == "__main__":` guard and parsed absl flags
(`from absl import flags; flags.FLAGS.mark_as_parsed()`).
"""

from __future__ import annotations

import collections
import logging
from typing import Any

import grain
import numpy as np
from tqdm import tqdm

from data_pipelines import frame_transforms as ft
from data_pipelines import mobile_episodes as me
from data_pipelines import registry, rlds, rlds_writer, statistics
from data_pipelines import traj_transforms as tt
from data_pipelines.batch import host_batch_size
from data_pipelines.errors import BadDataCounter, DataError
from data_pipelines.tokenize import InstructionTokenizer
from vla_runtime.policy_io import resize_frame

log = logging.getLogger("data_pipelines")
# The registry's mobile specs by the action dims a converted dataset stores.
MOBILE_MIXTURE_FOR_DIMS = {2: "mobile", 3: "mobile_3d"}


def _source(builder_dir: str, split: str):
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(builder_dir)
    if "array_record" not in {f.value for f in builder.info.available_file_formats()}:
        raise DataError(
            f"{builder_dir}: no ArrayRecord files; re-run `vla-jax convert-episodes` (it writes both "
            "TFRecord and ArrayRecord) for random access with grain"
        )
    if split not in builder.info.splits:
        raise DataError(f"{builder_dir}: no split {split!r} (has {list(builder.info.splits)})")
    decoders: Any = {"steps": {"observation": {"image": tfds.decode.SkipDecoding()}}}
    return builder.as_data_source(split, decoders=decoders)  # pyright: ignore[reportCallIssue]  (decorated in tfds)


def _episode_arrays(ep) -> tuple[np.ndarray, list, str]:
    steps = ep["steps"]
    actions = np.stack([np.asarray(steps[j]["action"], np.float32) for j in range(len(steps))])
    images = [steps[j]["observation"]["image"] for j in range(len(steps))]
    text = steps[0]["language_instruction"]
    return actions, images, text.decode() if isinstance(text, bytes) else str(text)


class WindowTransform:
    """(episode, step) index -> one sample with docs/design.md keys (tokens added after batching)."""

    def __init__(self, builder_dir, split, index, cfg, stats, train: bool):
        self.builder_dir, self.split, self.index = builder_dir, split, index
        self.window, self.chunk = int(cfg["window_size"]), int(cfg["action_chunk"])
        self.action_dim, self.size = int(cfg["action_dim"]), int(cfg["image_size"])
        self.resize_mode = cfg["resize_mode"]
        self.mode, self.stats = cfg["normalization"], stats
        self.augment = ft.AugmentConfig.from_dict(cfg["augment_kwargs"]) if (train and cfg["augment"]) else None
        self.mirror = bool(train and cfg["mirror_augment"])
        self.cache_size = int(cfg["episode_cache"])
        self._src = None
        self._cache: collections.OrderedDict = collections.OrderedDict()

    def __getstate__(self):  # ship the recipe, not the open files or the cache, to grain workers
        return {**self.__dict__, "_src": None, "_cache": collections.OrderedDict()}

    def _episode(self, ep_idx: int):
        """Parsed episode (actions, still-encoded frames, text), LRU-cached: parsing costs more than the
        JPEG decode of the T frames actually used, and a cached episode is only its encoded bytes."""
        if ep_idx in self._cache:
            self._cache.move_to_end(ep_idx)
            return self._cache[ep_idx]
        if self._src is None:
            self._src = _source(self.builder_dir, self.split)
        ep = _episode_arrays(self._src[ep_idx])
        if self.cache_size > 0:
            self._cache[ep_idx] = ep
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return ep

    def __call__(self, i, rng: np.random.Generator) -> dict:
        ep_idx, t = self.index[int(i)]
        actions, images, text = self._episode(int(ep_idx))
        n = len(actions)
        obs_idx, image_mask, act_idx, action_mask = tt.window_indices_np(n, int(t), self.window, self.chunk)
        size = (self.size, self.size)
        frames = np.stack([resize_frame(ft.decode_np(images[j]), size, self.resize_mode) for j in obs_idx])
        chunk = actions[act_idx]  # [T, C, a]
        if self.augment is not None:
            frames = ft.augment_np(frames, rng, self.augment)
        if self.mirror and rng.random() < 0.5:
            frames, chunk, text = me.mirror_frame(frames, chunk, text)
        frames = frames * image_mask[:, None, None, None].astype(np.uint8)
        chunk = statistics.normalize(chunk.astype(np.float32), self.stats, self.mode).astype(np.float32)
        chunk, dim_mask = tt.pad_action_dims_np(chunk, self.action_dim)
        return {
            "image": frames,
            "image_mask": image_mask,
            "action": chunk,
            "action_mask": action_mask,
            "action_dim_mask": dim_mask,
            "dataset_id": np.int32(0),
            "instruction": text,
        }


class MobileGrainLoader:
    """Loader protocol over converted mobile episodes (kind="mobile_grain")."""

    def __init__(self, cfg, *, tokenizer, global_batch_size, process_index, process_count, seed, train):
        self.cfg, self.train, self.seed = cfg, train, int(seed)
        self.batch_size = host_batch_size(global_batch_size, process_count)
        self.bad_episodes = BadDataCounter("mobile")
        self.builder_dir, stored = self._find_dataset(cfg)
        mixture = cfg["mixture"] or MOBILE_MIXTURE_FOR_DIMS.get(stored)
        if mixture is None:
            raise DataError(f"{self.builder_dir}: episodes have {stored}-D actions; mobile episodes have 2 or 3")
        self.spec = registry.get_spec(registry.get_mixture(mixture)[0][0])
        self.name = cfg["dataset_name"] or self.spec.name  # the statistics' key, as the export names it
        if stored != self.spec.action_dim:
            raise DataError(
                f"{self.builder_dir}: episodes have {stored}-D actions but mixture {mixture!r} "
                f"expects {self.spec.action_dim}-D; use mixture 'mobile' for 2-D or 'mobile_3d' for 3-D"
            )
        split = cfg.get("split") or (self.spec.train_split if train else self.spec.val_split)
        if split is None:
            raise DataError(
                f"dataset {self.spec.name!r} declares no val split; set data.config.split or register one (val_split)"
            )
        self.split: str = split
        src = _source(self.builder_dir, self.split)
        if len(src):
            metadata = src[0]["episode_metadata"]
            key = rlds_writer.RESIZE_MODE_KEY
            stored = metadata[key].decode() if key in metadata else "resize"  # older datasets
            if stored != cfg["resize_mode"]:
                raise DataError(
                    f"{self.builder_dir}: convert-episodes resized these frames with resize_mode={stored!r} but the "
                    f"data config says {cfg['resize_mode']!r}; set data.config.resize_mode={stored!r} or convert "
                    f"again with --resize-mode {cfg['resize_mode']}"
                )
        self.index, lengths = self._frame_index(src, int(cfg["min_episode_length"]))
        if self.spec.action_dim > int(cfg["action_dim"]):
            raise DataError(
                f"data config action_dim={cfg['action_dim']} < {self.spec.action_dim} dims of "
                f"{self.spec.name}; raise action_dim"
            )
        self.statistics = {self.name: {**self._statistics(), "normalization": cfg["normalization"]}}
        self.tokenize = InstructionTokenizer(tokenizer, cfg["instruction_length"])
        n = len(self.index)
        if n < process_count:
            raise DataError(f"{self.builder_dir} split {self.split}: {n} frames for {process_count} hosts")
        ds = grain.MapDataset.range(n)[process_index::process_count]
        if train:
            ds = ds.shuffle(seed=self.seed).repeat(None)  # a new permutation every epoch, fixed by the seed
        transform = WindowTransform(self.builder_dir, self.split, self.index, cfg, self.statistics[self.name], train)
        ds = ds.random_map(transform, seed=self.seed).batch(self.batch_size, drop_remainder=train)
        it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
        if int(cfg["worker_count"]) > 0:
            it_ds = it_ds.mp_prefetch(
                grain.MultiprocessingOptions(
                    num_workers=int(cfg["worker_count"]), per_worker_buffer_size=int(cfg["worker_buffer_size"])
                )
            )
        self._iter = iter(it_ds)
        log.info("mobile_grain: %d episodes, %d frames in %s/%s", len(lengths), n, self.builder_dir, self.split)

    @staticmethod
    def _find_dataset(cfg) -> tuple[str, int]:
        """(builder dir, stored action dims) of the converted dataset `dataset_name` (or the registry's) in data_dir."""
        import tensorflow_datasets as tfds

        names = (
            cfg["dataset_name"]
            or registry.get_spec(registry.get_mixture(cfg["mixture"] or "mobile")[0][0]).directory_names
        )
        try:
            builder_dir = rlds.find_builder_dir(names, cfg["data_dir"])
        except DataError as err:
            raise DataError(
                f"{err}; if `vla-jax convert-episodes --name NAME` wrote it, set data.config.dataset_name=NAME"
            ) from None
        features: Any = tfds.builder_from_directory(builder_dir).info.features
        return builder_dir, int(features["steps"]["action"].shape[-1])

    def _frame_index(self, src, min_length: int):
        index, lengths = [], []
        for e in tqdm(range(len(src)), desc="index episodes", unit="episode", disable=None):
            steps = src[e]["steps"]
            n = len(steps)
            if n < min_length:
                err = DataError(
                    f"{self.builder_dir} split {self.split}: episode {e} ({src[e]['episode_metadata']['file_path']}"
                    f"): key `steps` has {n} steps < min_episode_length={min_length}"
                )
                if not self.cfg["skip_bad_episodes"]:
                    raise err
                self.bad_episodes.record(err, reason="too_short")
                continue
            lengths.append(n)
            index.extend((e, t) for t in range(n))
        if not index:
            raise DataError(f"{self.builder_dir} split {self.split}: no usable episodes")
        return np.asarray(index, np.int32), lengths

    def _statistics(self) -> dict:
        import tensorflow_datasets as tfds

        builder = tfds.builder_from_directory(self.builder_dir)
        identity = {
            **rlds.dataset_identity(self.spec, builder, self.spec.train_split),
            "mirror": bool(self.cfg["mirror_augment"]),
        }

        def compute():
            src = _source(self.builder_dir, self.spec.train_split)
            acts = [_episode_arrays(src[e])[0] for e in range(len(src))]
            a = np.concatenate(acts)[:, : self.spec.action_dim]
            if self.cfg["mirror_augment"]:  # mirrored samples must stay inside the normalisation range
                a = np.concatenate([a, a * me.MIRROR_SIGN[: a.shape[1]]])
            return statistics.compute_statistics(a, self.spec.normalize_mask, len(acts))

        return statistics.load_or_compute(self.name, identity, compute, self.cfg.get("stats_cache_dir"))

    def __iter__(self):
        for batch in self._iter:
            tokens, token_mask = self.tokenize(list(batch.pop("instruction")))
            batch["tokens"], batch["token_mask"] = tokens, token_mask
            yield batch

    def get_state(self) -> dict:
        return {"kind": "mobile_grain", "grain": self._iter.get_state()}

    def set_state(self, state: dict) -> None:
        if state.get("kind") != "mobile_grain":
            raise DataError(
                f"loader state {str(state)[:200]} is not a mobile_grain state; resume with the original data config"
            )
        self._iter.set_state(state["grain"])
