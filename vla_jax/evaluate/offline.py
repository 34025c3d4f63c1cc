"""The users' per-frame metrics of a training workdir on held-out episodes (`vla-jax eval-offline`).

The workdir's model sees the validation split exactly as training saw its
train split (same loader, window, chunk, image size; no augmentation), and its
prediction for each frame (first action of the chunk at the newest history
slot, the one the robot would execute) is de-normalised with the workdir's
statistics and compared with the recorded action in robot units.
"""

from __future__ import annotations

import jax
import numpy as np
from tqdm import tqdm

from data_pipelines.loader import make_loader
from data_pipelines.tokenize import load_tokenizer
from vla_jax.errors import VLAJaxError
from vla_jax.evaluate.jax_policy import reference_actions
from vla_jax.evaluate.offline_metrics import offline_metrics
from vla_jax.train.checkpoint import load_for_inference
from vla_jax.train.model import loader_config, vla_config
from vla_runtime.policy_io import ActionStatistics


def evaluate_offline(
    workdir: str, data_dir: str, *, split: str | None = None, step: int | None = None, batch_size: int = 32
) -> dict:
    config, params, statistics = load_for_inference(workdir, step)
    if config.data.get("source") != "loader" or not config.data.get("tokenizer"):
        raise VLAJaxError(
            f"{workdir} was not trained on a dataset through data_pipelines (data.source="
            f"{config.data.get('source')!r}); offline metrics need a loader-trained workdir"
        )
    if len(statistics) != 1:
        raise VLAJaxError(f"{workdir}/statistics.json holds {len(statistics)} datasets; eval-offline scores one")
    stats = ActionStatistics.from_dict(next(iter(statistics.values())), f"{workdir}/statistics.json")
    # Raw targets (no normalisation), the real frames (no augmentation, no mirroring).
    data_config = loader_config(
        config,
        data_dir=str(data_dir),
        normalization="none",
        augment=False,
        mirror_augment=False,
        **({"split": split} if split else {}),
    )
    loader = make_loader(
        data_config,
        tokenizer=load_tokenizer(str(config.data.tokenizer)),
        global_batch_size=batch_size,
        seed=0,
        train=False,
    )
    # The JAX reference policy's forward pass: the model sees frames and instruction only (never the targets).
    apply = reference_actions(vla_config(config))
    params = jax.tree.map(jax.numpy.asarray, params)
    a = stats.action_dim
    preds, targets, masks = [], [], []
    for batch in tqdm(loader, desc="eval-offline", unit="batch"):
        model_batch = {k: batch[k] for k in ("image", "image_mask", "tokens", "token_mask")}
        n = len(batch["action"])
        if n < batch_size:  # pad the last batch so it reuses the compiled shape
            model_batch = {
                k: np.concatenate([v, np.repeat(v[-1:], batch_size - n, axis=0)]) for k, v in model_batch.items()
            }
        out = np.asarray(apply(params, model_batch), np.float64)[:n, -1, 0, :a]
        preds.append(stats.denormalize(out))  # policy_io: the robot's units and clipping rule
        targets.append(stats.dataset_gripper(batch["action"][:, -1, 0, :a]))  # the loader's gripper is canonical
        masks.append(batch["action_mask"][:, -1, 0])
    if not preds:
        raise VLAJaxError(f"{data_dir}: the evaluation split is empty; convert with --val-fraction > 0")
    names = ["linear_x", "linear_y", "angular_z"][:a] if a <= 3 else None
    metrics = offline_metrics(np.concatenate(preds), np.concatenate(targets), np.concatenate(masks), dim_names=names)
    metrics["workdir"], metrics["data"] = str(workdir), str(data_dir)
    return metrics
