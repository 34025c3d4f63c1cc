"""The adapter registry: keyed by HF model_type, one clear error for an unknown one (at build and at load)."""

import json
import os

import pytest
from runtime_helpers import write_tiny_export

from vla_runtime import Policy, RuntimeConfigError
from vla_runtime.backbones import SUPPORTED, adapter_class, build_backbone


def test_registry_names_hf_model_types():
    assert set(SUPPORTED) >= {"kosmos-2", "paligemma", "smolvlm"}
    for model_type in SUPPORTED:
        assert adapter_class(model_type).model_type == model_type
    with pytest.raises(RuntimeConfigError, match=r"'qwen3_vl' is not supported.*kosmos-2, paligemma"):
        build_backbone({"model_type": "qwen3_vl"})


def test_export_with_an_unknown_backbone_refuses_to_load(tmp_path):
    export = write_tiny_export(str(tmp_path / "e"), structure="policy_head", head="mlp")
    path = os.path.join(export, "config.json")
    config = json.load(open(path))
    config["backbone"]["model_type"] = "flamingo"
    json.dump(config, open(path, "w"))
    with pytest.raises(RuntimeConfigError, match=r"config.json: backbone.model_type 'flamingo' is not one"):
        Policy.load(export)
