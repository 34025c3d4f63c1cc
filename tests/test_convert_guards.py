"""convert-hf / verify-hf / load_converted: non-finite tensors and damaged safetensors are one line each."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from tiny_hf import save_tiny_random_kosmos2

from vla_jax.cli import main
from vla_jax.convert.converted import PARAMS_FILE, load_converted
from vla_jax.convert.hf_checkpoint import load_hf_checkpoint
from vla_jax.errors import VLAJaxError

OVERRIDES = dict(vision_num_hidden_layers=1, text_layers=1, vision_patch_size=16, latent_query_num=3)
TENSOR = "text_model.model.layers.0.self_attn.q_proj.weight"


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return save_tiny_random_kosmos2(tmp_path_factory.mktemp("hf") / "k2", seed=1, **OVERRIDES)


def _copy(hf_dir, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(hf_dir, dst)
    return dst


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_tensor_is_refused_naming_it(hf_dir, tmp_path, value):
    src = _copy(hf_dir, tmp_path)
    tensors = load_file(str(src / "model.safetensors"))
    tensors[TENSOR][2, 3] = value
    save_file(tensors, str(src / "model.safetensors"))
    with pytest.raises(VLAJaxError, match=f"tensor {TENSOR} in .*model.safetensors holds 1 non-finite"):
        load_hf_checkpoint(src)


@pytest.mark.parametrize("damage", ["header", "truncated"])
@pytest.mark.parametrize("command", ["convert-hf", "verify-hf"])
def test_damaged_safetensors_is_one_line_in_both_commands(hf_dir, tmp_path, capsys, damage, command):
    src = _copy(hf_dir, tmp_path)
    data = (src / "model.safetensors").read_bytes()
    (src / "model.safetensors").write_bytes(b"\x00" * 8 + data[8:] if damage == "header" else data[: len(data) // 2])
    args = [command, "--src", str(src)] + (["--out", str(tmp_path / "out")] if command == "convert-hf" else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vla-jax {command}: error: ") and "\n" not in err
    assert "model.safetensors" in err


def test_convert_out_that_is_a_file_is_one_line(hf_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["convert-hf", "--src", str(hf_dir), "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_converted_folder_damage_is_one_line(hf_dir, tmp_path):
    out = tmp_path / "converted"
    assert main(["convert-hf", "--src", str(hf_dir), "--out", str(out)]) == 0
    params = load_file(str(out / PARAMS_FILE))
    key = sorted(params)[0]
    params[key].reshape(-1)[0] = np.nan
    save_file(params, str(out / PARAMS_FILE))
    with pytest.raises(VLAJaxError, match=f"parameter {key} holds non-finite"):
        load_converted(out)
    (out / PARAMS_FILE).write_bytes(b"garbage")
    with pytest.raises(VLAJaxError, match="is not a readable safetensors file"):
        load_converted(out)
