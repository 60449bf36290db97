"""Measure, visualise, alert on and revive dead neurons in transformers.

``find_capture_points`` locates ``mlp_pre`` / ``mlp_post`` / ``attn_out`` per block;
:class:`NeuronAuditor` streams per-neuron fire counts and histograms through forward hooks in
constant memory; ``run_audit`` returns per-layer metrics. :class:`AuditCallback` logs them during
training, :class:`AlertRule` turns them into alerts, :class:`SynapticStripping` revives dead neurons
and ``run_swap_experiment`` compares activation functions.
"""

from neuron_audit.alerts import AlertRule, AlertWarning, check_alerts, parse_rules
from neuron_audit.auditor import AuditSettings, NeuronAuditor, run_audit
from neuron_audit.hooks import KINDS, CapturePoint, detect_family, find_capture_points
from neuron_audit.metrics import build_report, dead_ratios
from neuron_audit.monitor import AuditCallback
from neuron_audit.stats import NeuronStats, StatsConfig, dead_mask
from neuron_audit.stripping import SynapticStripping, strip_neurons
from neuron_audit.swap import ACTIVATIONS, run_swap_experiment, swap_activation

__all__ = [
    "ACTIVATIONS",
    "KINDS",
    "AlertRule",
    "AlertWarning",
    "AuditCallback",
    "AuditSettings",
    "CapturePoint",
    "NeuronAuditor",
    "NeuronStats",
    "StatsConfig",
    "SynapticStripping",
    "build_report",
    "check_alerts",
    "dead_mask",
    "dead_ratios",
    "detect_family",
    "find_capture_points",
    "parse_rules",
    "run_audit",
    "run_swap_experiment",
    "strip_neurons",
    "swap_activation",
]
