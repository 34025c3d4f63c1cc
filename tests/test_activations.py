"""The exact GELU every "gelu" family uses equals torch's (the parity reference), values and gradients."""

import jax
import numpy as np
import torch

from vla_jax.models.vit import ACTIVATIONS, gelu_exact


def test_gelu_exact_matches_torch_values_and_gradients():
    x = np.linspace(-8, 8, 20001, dtype=np.float32)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = torch.nn.functional.gelu(xt)  # approximate="none"
    yt.sum().backward()
    y = np.asarray(gelu_exact(x))
    g = np.asarray(jax.vmap(jax.grad(gelu_exact))(x))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=2e-6, rtol=0)
    np.testing.assert_allclose(g, xt.grad.numpy(), atol=2e-6, rtol=0)
    # the tanh approximation differs by ~5e-4 here, so the check can tell the two apart
    assert np.abs(np.asarray(ACTIVATIONS["gelu_pytorch_tanh"](x)) - yt.detach().numpy()).max() > 1e-4
    assert ACTIVATIONS["gelu"] is gelu_exact
