import json
from pathlib import Path

import pytest
import torch

from lm import build_model, train_step
from neuron_audit.alerts import AlertWarning, parse_rules
from neuron_audit.monitor import AuditCallback


def test_callback_logs_dead_ratios_every_n_steps_and_alerts(tmp_path: Path) -> None:
    model = build_model("tiny", vocab_size=300, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    log, alerts = tmp_path / "audit.jsonl", tmp_path / "alerts.jsonl"
    rules = parse_rules(["*.dead_ratio >= 0"])  # always true: every logging step alerts
    with AuditCallback(model, log, every_n_steps=2, rules=rules, alerts_path=alerts) as callback:
        with pytest.warns(AlertWarning):
            for step in range(1, 6):
                train_step(model, optimizer, torch.randint(0, 300, (2, 16), generator=generator))
                callback.on_step_end(step)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert [r["tokens"] for r in records] == [64, 64]  # two steps of 2 x 16 tokens, then reset
    assert set(records[0]["dead_ratio"]) == {"mlp_pre", "mlp_post", "attn_out"}
    assert len(records[0]["dead_ratio"]["mlp_post"]) == 2
    assert records[0]["alerts"] == 6 and len(alerts.read_text().splitlines()) == 12
    assert not model.get_submodule(
        "transformer.h.0.mlp.act"
    )._forward_hooks  # closed: hooks removed


def test_every_n_steps_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="every_n_steps"):
        AuditCallback(build_model("tiny"), tmp_path / "log.jsonl", every_n_steps=0)
