"""The streaming interleaved window (`VLAConfig.interleaved_attention="streaming"`): its mask, its config
errors, and that it is a different, trainable model. That the runtime's cached step computes exactly this is
runtime/tests/test_runtime_policy.py's streaming cases; that the runtime's two-stage computation (each block
alone, then the action tokens over the blocks' keys) equals this one-pass mask is tests/test_export_backbones.py.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_vla import FAST_COMPILE, _adam_fit, jit, make_batch  # noqa: E402

from vla_jax.errors import VLAJaxError  # noqa: E402
from vla_jax.models.backbone import init_params  # noqa: E402
from vla_jax.models.idefics_config import IdeficsConfig  # noqa: E402
from vla_jax.models.kosmos2 import Kosmos2Config  # noqa: E402
from vla_jax.models.smolvlm import SmolVLMConfig  # noqa: E402
from vla_jax.vla import VLAConfig, VLAPolicy, init_policy, streaming_mask  # noqa: E402

BACKBONE = SmolVLMConfig.tiny()


def _config(**kw):
    base = dict(
        backbone=BACKBONE,
        structure="interleaved",
        head="mlp",
        window_size=3,
        action_chunk=2,
        action_dim=3,
        head_hidden_size=32,
        head_layers=1,
        interleaved_attention="streaming",
    )
    return VLAConfig(**{**base, **kw})


def test_streaming_mask_is_own_block_plus_the_action_tokens_view_of_earlier_blocks():
    s, t = 3, 3  # blocks of [text, image, action]; row 1 has block 1's text slot padded
    valid = np.ones((2, t * s), bool)
    valid[1, 3] = False
    got = np.asarray(streaming_mask(jnp.asarray(valid), s))
    for r in range(2):
        slots = np.flatnonzero(valid[r])  # packed slot i holds unpacked slot slots[i]
        want = np.zeros((t * s, t * s), bool)
        for i, q in enumerate(slots):
            for j, k in enumerate(slots):
                action_q, action_k = q % s == s - 1, k % s == s - 1
                want[i, j] = q // s == k // s or (action_q and not action_k)
        n = len(slots)
        np.testing.assert_array_equal(got[r, :n, :n], want[:n, :n])
        assert not got[r, :, n:].any()  # padding keys (packed to the end) are never seen


def test_streaming_config_errors_name_the_fix():
    with pytest.raises(VLAJaxError, match="absolute position embeddings.*paligemma"):
        _config(backbone=Kosmos2Config.tiny())
    with pytest.raises(VLAJaxError, match="cross-attention"):
        _config(backbone=IdeficsConfig.tiny())
    with pytest.raises(VLAJaxError, match="structure='interleaved'"):
        _config(structure="policy_head", head="lstm")
    with pytest.raises(VLAJaxError, match="interleaved_attention='window' is unknown; use one of causal, streaming"):
        _config(interleaved_attention="window")
    assert _config().to_dict()["interleaved_attention"] == "streaming"
    assert VLAConfig.from_dict(_config().to_dict()) == _config()


def test_streaming_differs_from_causal_only_where_history_is_read_and_trains():
    cfg = _config()
    causal = cfg.replace(interleaved_attention="causal")
    batch = make_batch()
    backbone = jit(lambda: init_params(BACKBONE, 0))()
    params = init_policy(cfg, 0, backbone_params=backbone, compiler_options=FAST_COMPILE)
    params["action_token"] = np.random.default_rng(0).normal(0, 0.5, params["action_token"].shape).astype(np.float32)

    def action(c, p):
        return np.asarray(jit(lambda p, b: VLAPolicy(c).apply({"params": p}, b))(p, batch)["action"])

    stream, full = action(cfg, params), action(causal, params)
    # A window's first valid block sees only itself under both masks; every later one reads history differently.
    np.testing.assert_allclose(stream[0, 0], full[0, 0], atol=1e-6)
    np.testing.assert_allclose(stream[1, 1], full[1, 1], atol=1e-6)  # sample 1's frame 0 is masked out
    assert np.abs(stream[0, 1:] - full[0, 1:]).max() > 1e-4
    losses, grads = _adam_fit(cfg, batch, params, 30)
    assert float(jnp.abs(grads["action_token"]).max()) > 0
    assert losses[-1] < losses[0] / 3, (losses[0], losses[-1])
    assert all(np.isfinite(jax.tree_util.tree_leaves(grads)[0]).ravel())
