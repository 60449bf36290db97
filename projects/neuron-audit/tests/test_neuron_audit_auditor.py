import pytest
import torch
from neuron_audit_testing import TokenMLP, half_dead_mlp

from lm import build_model
from neuron_audit.auditor import AuditSettings, NeuronAuditor, run_audit
from neuron_audit.stats import StatsConfig


def test_known_fraction_of_dead_neurons_is_found_exactly() -> None:
    model = half_dead_mlp()
    inputs = torch.rand(500, 4, generator=torch.Generator().manual_seed(0))
    firing = int((inputs[:, 0] > 0.501).sum())
    with NeuronAuditor(model, kinds=("mlp_pre", "mlp_post")) as auditor:
        for chunk in inputs.split(64):
            model(chunk)
    pre, post = auditor.layers()
    assert (pre["kind"], post["kind"]) == ("mlp_pre", "mlp_post")
    assert post["tokens"] == 500
    assert post["dead_neurons"] == [0, 1, 2]
    assert post["dead_ratio"] == 0.5
    assert post["fire_frequency"][3:5] == [1.0, 1.0]
    assert post["fire_frequency"][5] == pytest.approx(firing / 500, abs=1e-6)
    assert post["min"] == 0.0 and pre["min"] == -100.0
    # a neuron firing on under 60% of tokens counts as dead with --dead-fraction 0.6
    assert auditor.layers(dead_fraction=0.6)[1]["dead_count"] == 4


def test_hooks_are_removed_on_exit() -> None:
    model = half_dead_mlp()
    with NeuronAuditor(model) as auditor:
        model(torch.rand(3, 4))
    model(torch.rand(5, 4))
    assert auditor.tokens() == 3
    assert not model[1]._forward_hooks and not model[1]._forward_pre_hooks


def test_padding_tokens_are_masked_out() -> None:
    model = TokenMLP(vocab=4)
    ids = torch.tensor([[1, 2, 0, 0], [3, 1, 1, 0]])  # 0 is the pad token
    mask = (ids != 0).long()
    layers = run_audit(model, [{"input_ids": ids, "attention_mask": mask}], kinds=("mlp_post",))
    assert layers[0]["tokens"] == 5
    assert layers[0]["dead_neurons"] == [0]  # the pad token's neuron only fires on padding
    assert layers[0]["fire_frequency"] == pytest.approx([0.0, 0.6, 0.2, 0.2])


@pytest.mark.parametrize("preset", ["tiny", "llama-tiny"])
def test_padded_batch_matches_the_sequences_audited_alone(preset: str) -> None:
    model = build_model(preset, seed=0)
    generator = torch.Generator().manual_seed(1)
    long = torch.randint(5, 4000, (1, 12), generator=generator)
    short = torch.randint(5, 4000, (1, 7), generator=generator)
    padded = torch.cat([long, torch.cat([short, torch.zeros(1, 5, dtype=torch.long)], 1)])
    mask = torch.ones_like(padded)
    mask[1, 7:] = 0
    settings = AuditSettings(StatsConfig(threshold=0.05))
    together = run_audit(model, [{"input_ids": padded, "attention_mask": mask}], settings)
    apart = run_audit(model, [{"input_ids": long}, {"input_ids": short}], settings)
    assert [r["tokens"] for r in together] == [19] * 6
    for joint, alone in zip(together, apart):
        assert joint["fire_frequency"] == pytest.approx(alone["fire_frequency"], abs=1e-6)
        assert joint["histogram"]["counts"] == alone["histogram"]["counts"]


def test_empty_data_is_an_error_and_training_mode_is_restored() -> None:
    model = TokenMLP()
    model.train()
    batch = {"input_ids": torch.zeros(1, 3, dtype=torch.long), "attention_mask": torch.zeros(1, 3)}
    with pytest.raises(ValueError, match="saw no tokens"):
        run_audit(model, [batch])
    assert model.training


def test_attn_out_is_a_projection_judged_by_magnitude_not_sign() -> None:
    model = build_model("tiny", seed=0)
    projection = {n: p for n, p in model.named_parameters() if ".attn.c_proj." in n}
    assert len(projection) == 4  # weight and bias of 2 blocks
    with torch.no_grad():  # every attention output channel is -1 on every token
        for name, parameter in projection.items():
            parameter.fill_(0.0 if name.endswith("weight") else -1.0)
    batches = [{"input_ids": torch.arange(24).reshape(2, 12)}]
    rows = run_audit(model, batches, kinds=("mlp_post", "attn_out"))
    attn = [r for r in rows if r["kind"] == "attn_out"]
    mlp = [r for r in rows if r["kind"] == "mlp_post"]
    # under the signed rule every channel would be "dead"; a constant -1 carries signal
    assert [r["dead_ratio"] for r in attn] == [0.0, 0.0]
    assert {r["fire_rule"] for r in attn} == {"|act| > threshold"}
    assert {r["fire_rule"] for r in mlp} == {"act > threshold"}
    with torch.no_grad():  # a channel that is exactly 0 everywhere is dead
        for parameter in projection.values():
            parameter.fill_(0.0)
    rows = run_audit(model, batches, kinds=("attn_out",))
    assert [r["dead_ratio"] for r in rows] == [1.0, 1.0]
