"""PaliGemma (Gemma 2 and Gemma text), SmolVLM, LLaVA and the CLIP + Kosmos-2 hybrid equal Hugging Face's torch
models stage by stage, and the loader's checks (legacy names, bf16, truncation, errors) hold."""

from __future__ import annotations

import json
import shutil

import jax
import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from tiny_hf import randomize_, save_tiny_random

from vla_jax.cli import main
from vla_jax.convert.converted import load_converted
from vla_jax.convert.hf_checkpoint import load_hf_checkpoint
from vla_jax.convert.verify_hf import STAGES, compare_with_hf, flax_outputs, hf_outputs, random_inputs
from vla_jax.errors import VLAJaxError
from vla_jax.models.stacking import unstack_layers

# Two configs per family (different widths, depths, heads, GQA ratios, tying, scale factors).
CASES = {
    "paligemma2_a": ("paligemma", dict()),
    "paligemma2_b": (
        "paligemma",
        dict(
            text_num_hidden_layers=3,
            text_num_key_value_heads=1,
            text_hidden_size=48,
            text_head_dim=12,
            text_query_pre_attn_scalar=16,
            vision_patch_size=16,
            vision_hidden_size=24,
            vision_num_attention_heads=3,
            tie_word_embeddings=False,
            text_final_logit_softcapping=None,
        ),
    ),
    "paligemma1": ("paligemma", dict(text_model_type="gemma", text_num_key_value_heads=1)),
    "smolvlm_a": ("smolvlm", dict()),
    "smolvlm_b": (
        "smolvlm",
        dict(
            scale_factor=4,
            vision_image_size=64,
            vision_patch_size=8,
            text_num_hidden_layers=3,
            text_num_key_value_heads=4,
            text_rope_theta=100000.0,
            tie_word_embeddings=True,
        ),
    ),
    "llava_a": ("llava", dict()),  # LLaVA-1.5's selection: layer -2 of 3, class token dropped
    "llava_b": (
        "llava",
        dict(
            vision_feature_layer=1,
            vision_feature_select_strategy="full",
            vision_num_hidden_layers=4,
            text_num_key_value_heads=4,
            multimodal_projector_bias=False,
            projector_hidden_act="gelu_pytorch_tanh",
            tie_word_embeddings=True,
        ),
    ),
}


def _save(root, name):
    model_type, overrides = CASES[name]
    return save_tiny_random(model_type, root / name, seed=3, **overrides)


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf_families")
    dirs = {name: _save(root, name) for name in CASES}
    dirs["kosmos2"] = save_tiny_random("kosmos-2", root / "kosmos2", seed=5, vision_num_hidden_layers=1, text_layers=1)
    dirs["clip_wide"] = save_tiny_random("clip_vision_model", root / "clip_wide", seed=6)  # 48 wide != Kosmos-2's 32
    dirs["clip_same"] = save_tiny_random(
        "clip_vision_model",
        root / "clip_same",
        seed=7,
        hidden_size=32,
        num_attention_heads=2,
        num_hidden_layers=3,
        patch_size=16,
    )
    return dirs


@pytest.mark.parametrize("name", sorted(CASES))
def test_family_parity_with_hf(hf, name):
    result = compare_with_hf(hf[name], seed=11, batch=2, text_len=6, fast_compile=True)
    assert result["ok"], result
    assert result["model_type"] == CASES[name][0]
    assert all(0.0 <= result[k] <= 1e-4 for k in STAGES), result


@pytest.mark.parametrize("clip", ["clip_wide", "clip_same"])
def test_hybrid_parity_with_hf(hf, clip):
    result = compare_with_hf(hf["kosmos2"], vision_src=hf[clip], seed=2, fast_compile=True)
    assert result["ok"] and result["model_type"] == "clip-kosmos-2", result
    config, params = load_hf_checkpoint(hf["kosmos2"], vision_src=hf[clip])
    kosmos_dense = load_file(str(hf["kosmos2"] / "model.safetensors"))["image_to_text_projection.dense.weight"]
    dense = params["image_to_text_projection"]["dense"]["kernel"]
    if clip == "clip_same":  # same width: Kosmos-2's own projection input layer is kept
        np.testing.assert_array_equal(dense, kosmos_dense.T)
    else:  # a new input layer [48, 32], freshly initialised
        assert dense.shape == (48, 32) and kosmos_dense.shape == (32, 32)
    clip_w = load_file(str(hf[clip] / "model.safetensors"))["embeddings.patch_embedding.weight"]
    np.testing.assert_array_equal(params["vision_model"]["patch_embedding"]["kernel"], clip_w.transpose(2, 3, 1, 0))


def test_prefix_lm_and_sliding_window_are_what_make_paligemma_2_match(hf):
    """Drop PaliGemma's bidirectional prefix, or Gemma 2's sliding window: the LM stage misses HF by far."""
    config, params = load_hf_checkpoint(hf["paligemma2_a"])
    inputs = random_inputs(config, seed=0, batch=2, text_len=6)
    theirs = hf_outputs(hf["paligemma2_a"], inputs, config=config)
    causal = {k: v for k, v in inputs.items() if k != "token_type_ids"}
    no_window = config.replace(text={"sliding_window": 10_000})
    hf_lm = theirs["lm_last_hidden"]
    lm = lambda cfg, x: flax_outputs(cfg, params, x, fast_compile=True)["lm_last_hidden"]  # noqa: E731
    assert np.abs(lm(config, inputs) - hf_lm).max() < 1e-4
    assert np.abs(lm(config, causal) - hf_lm).max() > 1e-2
    assert np.abs(lm(no_window, inputs) - hf_lm).max() > 1e-2


def test_released_tensor_names_and_bf16_load_the_same(hf, tmp_path):
    """transformers 4.x names (google/paligemma2-3b-pt-224's files) and a bf16 file give the same params."""
    src = tmp_path / "legacy"
    shutil.copytree(hf["paligemma2_b"], src)
    tensors = load_file(str(src / "model.safetensors"))
    legacy = {
        ("vision_tower.vision_model." + k[len("vision_tower.") :] if k.startswith("vision_tower.") else k): v
        for k, v in tensors.items()
    }
    assert any(k.startswith("language_model.model.") for k in legacy)  # what transformers 5 writes, too
    save_file(legacy, str(src / "model.safetensors"))
    _, a = load_hf_checkpoint(hf["paligemma2_b"])
    _, b = load_hf_checkpoint(src)
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)

    save_file({k: v.astype(ml_dtypes.bfloat16) for k, v in tensors.items()}, str(src / "model.safetensors"))
    _, c = load_hf_checkpoint(src)
    rounded = jax.tree_util.tree_map(lambda x: x.astype(ml_dtypes.bfloat16).astype(np.float32), a)
    jax.tree_util.tree_map(np.testing.assert_array_equal, c, rounded)


def test_num_layers_reads_only_the_first_layers(hf):
    full_cfg, full = load_hf_checkpoint(hf["smolvlm_b"])
    cfg, cut = load_hf_checkpoint(hf["smolvlm_b"], num_layers=1)
    assert (cfg.vision.num_hidden_layers, cfg.text.num_hidden_layers) == (1, 1)
    assert (cfg.text.hidden_size, cfg.vocab_size) == (full_cfg.text.hidden_size, full_cfg.vocab_size)
    q = "text_model/decoder/layers/self_attn/q_proj/kernel".split("/")
    get = lambda tree: jax.tree_util.tree_reduce(lambda a, k: a[k], q, tree)  # noqa: E731
    np.testing.assert_array_equal(get(cut), get(full)[:1])
    result = compare_with_hf(hf["smolvlm_b"], num_layers=2, seed=1, fast_compile=True)
    assert result["ok"] and result["num_layers"] == 2, result


def test_verify_cli_json_line_and_exit_codes(hf, capsys):
    assert main(["verify-hf", "--src", str(hf["smolvlm_a"]), "--num-layers", "1"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(STAGES) <= set(line) and line["ok"] and line["model_type"] == "smolvlm"
    assert main(["verify-hf", "--src", str(hf["smolvlm_a"]), "--num-layers", "1", "--tol", "1e-12"]) == 1


def test_unsupported_model_type_lists_the_supported_ones(hf, tmp_path, capsys):
    src = tmp_path / "fuyu"
    shutil.copytree(hf["smolvlm_a"], src)
    cfg = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**cfg, "model_type": "fuyu"}))
    with pytest.raises(VLAJaxError, match=r"'fuyu' is not supported; supported: kosmos-2, paligemma, smolvlm"):
        load_hf_checkpoint(src)
    assert main(["convert-hf", "--src", str(src), "--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_missing_unexpected_and_misshaped_tensors_are_named(hf, tmp_path):
    src = tmp_path / "bad"
    shutil.copytree(hf["paligemma2_a"], src)
    good = load_file(str(src / "model.safetensors"))
    name = "language_model.model.layers.1.post_feedforward_layernorm.weight"
    save_file({k: v for k, v in good.items() if k != name}, str(src / "model.safetensors"))
    with pytest.raises(
        VLAJaxError,
        match=r"model\.language_model\.layers\.1\.post_feedforward_layernorm\.weight "
        r"is missing",
    ):
        load_hf_checkpoint(src)
    save_file({**good, "multi_modal_projector.linear.bias": np.zeros(7, np.float32)}, str(src / "model.safetensors"))
    with pytest.raises(VLAJaxError, match=r"multi_modal_projector\.linear\.bias .*shape \[7\], expected \[32\]"):
        load_hf_checkpoint(src)
    save_file(
        {
            **good,
            "lm_head.weight": good["language_model.model.embed_tokens.weight"],
            "language_model.model.layers.0.self_attn.q_norm.weight": np.zeros(8, np.float32),
        },
        str(src / "model.safetensors"),
    )
    with pytest.raises(VLAJaxError, match=r"1 tensor\(s\) .*self_attn\.q_norm\.weight"):  # tied lm_head is fine
        load_hf_checkpoint(src)


def test_convert_cli_hybrid_round_trip(hf, tmp_path, capsys):
    out = tmp_path / "hybrid"
    assert (
        main(["convert-hf", "--src", str(hf["kosmos2"]), "--vision-src", str(hf["clip_wide"]), "--out", str(out)]) == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model_type"] == "clip-kosmos-2" and summary["vision_layers"] == 2
    config, params = load_converted(out)
    direct_cfg, direct = load_hf_checkpoint(hf["kosmos2"], vision_src=hf["clip_wide"])
    assert config == direct_cfg and config.model_type == "clip-kosmos-2"
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, direct)
    assert json.loads((out / "config.json").read_text())["model_type"] == "kosmos-2"  # HF's Kosmos2Model builds it


def test_hybrid_takes_a_full_clip_model_folder_ignoring_its_text_tower(hf, tmp_path):
    """openai/clip-* hub folders are CLIPModel (model_type "clip"): the vision tower loads, the text tower not."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    text = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=99)
    vision = dict(
        hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=3, image_size=32, patch_size=8
    )
    randomize_(CLIPModel(CLIPConfig(text_config=text, vision_config=vision)), 3).save_pretrained(tmp_path / "clip")
    config, params = load_hf_checkpoint(hf["kosmos2"], vision_src=tmp_path / "clip")
    assert config.vision.hidden_size == 48 and config.model_type == "clip-kosmos-2"
    saved = load_file(str(tmp_path / "clip" / "model.safetensors"))
    assert any(k.startswith("text_model.") for k in saved)
    patch = next(v for k, v in saved.items() if k.endswith("embeddings.patch_embedding.weight") and "vision" in k)
    np.testing.assert_array_equal(params["vision_model"]["patch_embedding"]["kernel"], patch.transpose(2, 3, 1, 0))


def test_llava_released_names_and_the_unused_tower_tail(hf, tmp_path):
    """llava-hf's transformers 4.x names load the same params; the CLIP layer past the feature layer and
    post_layernorm are read (not dropped) into `vision_model/tail` and `post_layernorm`."""
    src = tmp_path / "legacy"
    shutil.copytree(hf["llava_a"], src)
    tensors = load_file(str(src / "model.safetensors"))
    legacy = {
        ("vision_tower.vision_model." + k[len("vision_tower.") :] if k.startswith("vision_tower.") else k): v
        for k, v in tensors.items()
    }
    save_file(legacy, str(src / "model.safetensors"))
    _, a = load_hf_checkpoint(hf["llava_a"])
    _, b = load_hf_checkpoint(src)
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    tail = a["vision_model"]["tail"]["layers"]["fc1"]["kernel"]
    assert tail.shape[0] == 1  # layer 2 of 3: feature layer -2 stops after layer 1
    np.testing.assert_array_equal(tail[0], tensors["vision_tower.encoder.layers.2.mlp.fc1.weight"].T)
    np.testing.assert_array_equal(
        a["vision_model"]["post_layernorm"]["scale"], tensors["vision_tower.post_layernorm.weight"]
    )


@pytest.mark.parametrize("name", ["paligemma2_a", "smolvlm_a"])
def test_unrolled_remat_and_bf16_run_the_same_model(hf, name):
    """scan_layers=False + remat gives the scanned float32 numbers; bfloat16 compute stays close."""
    config, params = load_hf_checkpoint(hf[name])
    inputs = random_inputs(config, seed=4, batch=2, text_len=6)
    ref = flax_outputs(config, params, inputs, fast_compile=True)
    unrolled = flax_outputs(
        config.replace(scan_layers=False, remat=True), unstack_layers(params), inputs, fast_compile=True
    )
    bf16 = flax_outputs(config.replace(dtype="bfloat16"), params, inputs, fast_compile=True)
    for k in STAGES:
        np.testing.assert_allclose(unrolled[k], ref[k], atol=1e-5)
        scale = np.abs(ref[k]).max()
        assert np.abs(bf16[k].astype(np.float32) - ref[k]).max() < 0.1 * scale, k
