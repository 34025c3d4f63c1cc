"""HF folder -> our params: strict checks, sharded checkpoints, and the convert-hf / verify-hf CLI."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from tiny_hf import build_tiny_random_kosmos2, save_tiny_random_kosmos2

from vla_jax.cli import main
from vla_jax.convert.converted import load_converted
from vla_jax.convert.hf_checkpoint import load_hf_checkpoint
from vla_jax.errors import VLAJaxError

OVERRIDES = dict(vision_num_hidden_layers=1, text_layers=2, vision_patch_size=16, latent_query_num=3)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    path = save_tiny_random_kosmos2(tmp_path_factory.mktemp("hf") / "k2", seed=4, **OVERRIDES)
    (path / "tokenizer_config.json").write_text("{}")  # stands in for the real tokenizer files
    return path


def _copy(hf_dir, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(hf_dir, dst)
    return dst


def _edit_tensors(path, fn):
    tensors = load_file(str(path / "model.safetensors"))
    fn(tensors)
    save_file(tensors, str(path / "model.safetensors"))


def test_convert_cli_round_trip(hf_dir, tmp_path, capsys):
    out = tmp_path / "converted"
    assert main(["convert-hf", "--src", str(hf_dir), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["text_layers"] == 2 and (out / "tokenizer_config.json").is_file()
    config, params = load_converted(out)
    _, direct = load_hf_checkpoint(hf_dir)
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, direct)
    assert summary["parameters"] == sum(x.size for x in jax.tree_util.tree_leaves(params))
    # the HF torch weights land transposed and stacked: layer 1 of q_proj
    hf = load_file(str(hf_dir / "model.safetensors"))
    np.testing.assert_array_equal(
        params["text_model"]["decoder"]["layers"]["self_attn"]["q_proj"]["kernel"][1],
        hf["text_model.model.layers.1.self_attn.q_proj.weight"].T,
    )
    # unrolled layout on request
    _, unrolled = load_converted(out, scan_layers=False)
    np.testing.assert_array_equal(
        unrolled["text_model"]["decoder"]["layers_1"]["ffn"]["fc1"]["kernel"],
        params["text_model"]["decoder"]["layers"]["ffn"]["fc1"]["kernel"][1],
    )
    # refusing to overwrite without --force is a one-line error
    assert main(["convert-hf", "--src", str(hf_dir), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_sharded_checkpoint_matches_single_file(hf_dir, tmp_path):
    sharded = tmp_path / "sharded"
    build_tiny_random_kosmos2(seed=4, **OVERRIDES).save_pretrained(sharded, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    _, a = load_hf_checkpoint(sharded)
    _, b = load_hf_checkpoint(hf_dir)
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_missing_tensor_is_named(hf_dir, tmp_path):
    src = _copy(hf_dir, tmp_path)
    _edit_tensors(src, lambda t: t.pop("text_model.model.layers.1.ffn.ffn_layernorm.bias"))
    with pytest.raises(VLAJaxError, match=r"text_model\.model\.layers\.1\.ffn\.ffn_layernorm\.bias is missing"):
        load_hf_checkpoint(src)


def test_wrong_shape_is_named(hf_dir, tmp_path, capsys):
    src = _copy(hf_dir, tmp_path)
    _edit_tensors(src, lambda t: t.update({"image_to_text_projection.latent_query": np.zeros((4, 32), np.float32)}))
    with pytest.raises(VLAJaxError, match=r"latent_query .*shape \[4, 32\], expected \[3, 32\]"):
        load_hf_checkpoint(src)
    # through the CLI: exit 2 and exactly one line naming the tensor
    assert main(["verify-hf", "--src", str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "image_to_text_projection.latent_query" in err


def test_unexpected_tensor_is_an_error(hf_dir, tmp_path):
    src = _copy(hf_dir, tmp_path)
    _edit_tensors(
        src,
        lambda t: t.update({"text_model.model.layers.0.encoder_attn.q_proj.weight": np.zeros((32, 32), np.float32)}),
    )
    with pytest.raises(VLAJaxError, match="encoder_attn.q_proj.weight"):
        load_hf_checkpoint(src)


def test_wrong_model_type_names_config(hf_dir, tmp_path):
    src = _copy(hf_dir, tmp_path)
    cfg = json.loads((src / "config.json").read_text())
    cfg["model_type"] = "clip"
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VLAJaxError, match=r"config\.json.*'clip'"):
        load_hf_checkpoint(src)


def test_verify_cli_ok_and_tampered(hf_dir, tmp_path, capsys):
    assert main(["verify-hf", "--src", str(hf_dir), "--batch", "2", "--seed", "3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ok"] is True and result["tol"] == 1e-4
    assert max(result[k] for k in ("vision_tower", "projector", "lm_last_hidden")) <= 1e-4
    # The exit code really follows --tol (a tampered-shape checkpoint is covered above: exit 2).
    assert main(["verify-hf", "--src", str(hf_dir), "--tol", "1e-12"]) == 1
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ok"] is False
