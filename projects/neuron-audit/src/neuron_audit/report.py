"""A single self-contained HTML report: tables plus the PNG plots embedded as data URIs."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from ml_core import atomic_output

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; } .alert { color: #a00; font-weight: bold; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
</style></head><body>
<h1>{{ title }}</h1>
{% if report.random_weights %}<p class="alert">{{ report.model_note }}</p>{% endif %}
<p>Model <code>{{ report.model }}</code> ({{ report.family }} layout),
{{ report.tokens }} tokens audited (padding excluded); a neuron fires when
<code>{{ report.settings.fire_rule }}</code> with threshold {{ report.settings.threshold }}
({% for kind in report.settings.abs_only_kinds %}<code>{{ kind }}</code>{% endfor %}, a linear
projection whose negative values carry signal, always uses <code>|act| &gt; threshold</code>);
dead = fires on {% if report.settings.dead_fraction == 0 %}no token{% else %}fewer than
{{ report.settings.dead_fraction }} of tokens{% endif %}.</p>
{% if alerts %}<h2 class="alert">Alerts ({{ alerts|length }})</h2><ul>
{% for a in alerts %}<li class="alert">{{ a.rule }}: {{ a.message }}</li>{% endfor %}</ul>
{% else %}<p>No alert fired.</p>{% endif %}
<h2>Summary</h2>
<table><tr><th>kind</th><th>dead</th><th>neurons</th><th>dead ratio</th>
<th>worst layer</th><th>worst layer ratio</th></tr>
{% for kind, s in report.summary.items() %}<tr><th>{{ kind }}</th><td>{{ s.dead_count }}</td>
<td>{{ s.neurons }}</td><td>{{ "%.2f%%"|format(100 * s.dead_ratio) }}</td>
<td>{{ s.max_layer }}</td><td>{{ "%.2f%%"|format(100 * s.max_layer_dead_ratio) }}</td></tr>
{% endfor %}</table>
<h2>Per layer</h2>
<table><tr><th>layer</th><th>kind</th><th>module</th><th>width</th><th>dead</th>
<th>dead ratio</th><th>fire rule</th><th>mean freq.</th><th>min</th><th>mean</th><th>max</th>
<th>NaN values</th></tr>
{% for r in report.layers %}<tr><td>{{ r.layer }}</td><td>{{ r.kind }}</td>
<td><code>{{ r.module }}</code></td><td>{{ r.width }}</td><td>{{ r.dead_count }}</td>
<td>{{ "%.2f%%"|format(100 * r.dead_ratio) }}</td><td><code>{{ r.fire_rule }}</code></td>
<td>{{ "%.3f"|format(r.mean_fire_frequency) }}</td>
{% for v in (r.min, r.mean, r.max) %}<td>{{ "-" if v is none else "%.3g"|format(v) }}</td>
{% endfor %}<td>{{ r.nan_count }}</td></tr>
{% endfor %}</table>
<h2>Plots</h2>
{% for name, data in images %}<h3>{{ name }}</h3>
<img alt="{{ name }}" src="data:image/png;base64,{{ data }}">
{% endfor %}
</body></html>
"""


def render_report(
    report: Mapping[str, Any],
    images: Sequence[str | os.PathLike[str]],
    alerts: Sequence[Mapping[str, Any]] = (),
    *,
    title: str = "Dead-neuron audit",
) -> str:
    """HTML text with every PNG in ``images`` embedded."""
    encoded = [
        (Path(image).name, base64.b64encode(Path(image).read_bytes()).decode("ascii"))
        for image in images
    ]
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(TEMPLATE).render(
        title=title, report=report, images=encoded, alerts=alerts
    )


def write_report(
    path: str | os.PathLike[str],
    report: Mapping[str, Any],
    images: Sequence[str | os.PathLike[str]],
    alerts: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write the HTML report to ``path`` atomically."""
    text = render_report(report, images, alerts)
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)
