import pytest
from neuron_audit_testing import tiny_tokenizer
from torch import nn

from lm import build_model
from neuron_audit.auditor import run_audit
from neuron_audit.hooks import find_capture_points
from neuron_audit.swap import run_swap_experiment, swap_activation


@pytest.mark.parametrize(("preset", "path"), [("tiny", "mlp.act"), ("llama-tiny", "mlp.act_fn")])
def test_swap_replaces_every_mlp_activation(preset: str, path: str) -> None:
    model = build_model(preset, seed=0)
    assert swap_activation(model, "leaky_relu") == 2
    points = find_capture_points(model, ("mlp_post",))
    assert all(isinstance(p.module, nn.LeakyReLU) for p in points)
    assert all(p.name.endswith(path) for p in points)
    with pytest.raises(ValueError, match="Unknown activation"):
        swap_activation(model, "softsign")


def test_relu_fires_exactly_where_the_pre_activation_is_above_threshold() -> None:
    tokenizer = tiny_tokenizer()
    model = build_model("tiny", tokenizer=tokenizer, seed=0)
    batch = tokenizer(
        ["Return the sum of the list.", "The tuple is long."], padding=True, return_tensors="pt"
    )
    batches = [{"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}]
    pre = run_audit(model, batches, kinds=("mlp_pre",))
    results = run_swap_experiment(model, batches, ["relu", "gelu"])
    assert list(results) == ["original (NewGELUActivation)", "relu", "gelu"]
    # block 0's pre-activations do not depend on the activation: ReLU fires iff pre > threshold
    relu = run_audit(_swapped(model, "relu"), batches, kinds=("mlp_post",))
    assert relu[0]["fire_frequency"] == pre[0]["fire_frequency"]
    assert results["relu"]["dead_ratio"][0] == pre[0]["dead_ratio"]
    assert results["relu"]["dead_ratio_abs"][0] == results["relu"]["dead_ratio"][0]
    assert len(results["gelu"]["dead_ratio"]) == 2


def _swapped(model: nn.Module, activation: str) -> nn.Module:
    import copy

    variant = copy.deepcopy(model)
    swap_activation(variant, activation)
    return variant
