import pytest
from neuron_audit_testing import half_dead_mlp
from torch import nn
from transformers import BertConfig, BertModel

from lm import build_model
from neuron_audit.hooks import detect_family, find_capture_points


def test_gpt2_points_follow_block_structure() -> None:
    model = build_model("tiny", seed=0)
    points = find_capture_points(model)
    assert detect_family(model) == "gpt2"
    assert [(p.layer, p.kind) for p in points] == [
        (layer, kind) for layer in (0, 1) for kind in ("mlp_pre", "mlp_post", "attn_out")
    ]
    assert points[0].name == "transformer.h.0.mlp.act" and points[0].side == "input"
    assert points[1].side == "output"
    assert points[2].name == "transformer.h.0.attn.c_proj"
    assert (
        points[1].incoming is model.get_submodule("transformer.h.0.mlp.c_fc")
        and points[1].incoming_axis == 1
    )


def test_llama_points_use_the_gate_activation_and_o_proj() -> None:
    model = build_model("llama-tiny", seed=0)
    names = {p.kind: p.name for p in find_capture_points(model) if p.layer == 1}
    assert detect_family(model) == "llama"
    assert names == {
        "mlp_pre": "model.layers.1.mlp.act_fn",
        "mlp_post": "model.layers.1.mlp.act_fn",
        "attn_out": "model.layers.1.self_attn.o_proj",
    }


def test_bert_points_are_found_by_structure() -> None:
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
    )
    points = find_capture_points(BertModel(config), ("mlp_post", "attn_out"))
    assert len(points) == 6
    assert points[0].name == "encoder.layer.0.intermediate.intermediate_act_fn"
    assert points[1].name == "encoder.layer.0.attention.output.dense"


def test_any_module_falls_back_to_activation_types() -> None:
    model = nn.Sequential(half_dead_mlp(), nn.Tanh())
    points = find_capture_points(model, ["mlp_post"])
    assert detect_family(model) == "generic"
    assert [(p.layer, p.name) for p in points] == [(0, "0.1"), (1, "1")]
    assert points[0].incoming is model.get_submodule("0.0")  # the Linear before the ReLU
    assert points[1].incoming is None


def test_modules_without_activations_are_an_error() -> None:
    with pytest.raises(ValueError, match="no activation modules"):
        find_capture_points(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="Unknown kinds"):
        find_capture_points(build_model("tiny"), ["mlp_mid"])  # type: ignore[list-item]
