import json
from pathlib import Path
from typing import Any

import pytest
import torch
from neuron_audit_testing import TokenMLP

from neuron_audit.alerts import AlertRule, AlertWarning, check_alerts, parse_rules
from neuron_audit.auditor import run_audit

LAYERS: list[dict[str, Any]] = [
    {"layer": 0, "kind": "mlp_post", "dead_ratio": 0.1, "mean_fire_frequency": 0.5},
    {"layer": 1, "kind": "mlp_post", "dead_ratio": 0.3, "mean_fire_frequency": 0.2},
    {"layer": 0, "kind": "attn_out", "dead_ratio": 0.0, "mean_fire_frequency": 0.5},
]


def test_rules_parse_percentages_scopes_and_wildcards() -> None:
    rule = AlertRule.parse("mlp_post.dead_ratio > 20%")
    assert (rule.kind, rule.metric, rule.op, rule.value, rule.scope) == (
        "mlp_post",
        "dead_ratio",
        ">",
        0.2,
        "any",
    )
    assert AlertRule.parse("mean *.dead_ratio>=0.15").scope == "mean"


def test_any_scope_fires_per_offending_layer() -> None:
    alerts = AlertRule.parse("mlp_post.dead_ratio > 0.2").evaluate(LAYERS)
    assert [(a["kind"], a["layer"], a["observed"]) for a in alerts] == [("mlp_post", 1, 0.3)]
    assert AlertRule.parse("mlp_post.dead_ratio > 0.3").evaluate(LAYERS) == []


def test_mean_scope_averages_layers_of_each_kind() -> None:
    alerts = AlertRule.parse("mean *.dead_ratio >= 0.2").evaluate(LAYERS)
    assert [(a["kind"], a["layer"]) for a in alerts] == [("mlp_post", None)]
    assert alerts[0]["observed"] == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mlp_post dead_ratio > 1", "Cannot parse"),
        ("mlp_mid.dead_ratio > 0.1", "Unknown kind"),
        ("mlp_post.loss > 0.1", "Unknown metric"),
    ],
)
def test_bad_rules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rules([text])


def test_check_alerts_warns_and_appends_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "alerts.jsonl"
    rules = parse_rules(["*.dead_ratio > 0.05"])
    with pytest.warns(AlertWarning, match="neuron-audit alert: mlp_post dead_ratio"):
        alerts = check_alerts(rules, LAYERS, log_path=log, step=7)
    assert len(alerts) == 2
    with pytest.warns(AlertWarning):
        check_alerts(rules, LAYERS, log_path=log)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 4 and records[0]["step"] == 7 and records[0]["layer"] == 0


def test_nan_activations_are_reported_and_can_raise_an_alert() -> None:
    model = TokenMLP(vocab=4)
    with torch.no_grad():
        model.embed.weight[2, 1] = float("nan")  # token 2 makes neuron 1 NaN
    ids = torch.tensor([[0, 2, 2, 3]])
    layers = run_audit(model, [{"input_ids": ids, "attention_mask": torch.ones_like(ids)}])
    post = next(row for row in layers if row["kind"] == "mlp_post")
    assert post["nan_count"] == 2
    with pytest.warns(AlertWarning, match="nan_count"):
        alerts = check_alerts(parse_rules(["*.nan_count > 0"]), layers)
    assert {alert["kind"] for alert in alerts} == {"mlp_pre", "mlp_post"}
