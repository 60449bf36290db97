"""Where to look: the capture points of a model, found by module structure.

A :class:`CapturePoint` names one tensor per transformer block:

* ``mlp_pre`` -- the input of the MLP activation module (pre-activation),
* ``mlp_post`` -- the output of the MLP activation module,
* ``attn_out`` -- the output of the attention output projection.

GPT-2 (``transformer.h[i].mlp.act``, ``attn.c_proj``), Llama
(``model.layers[i].mlp.act_fn``, ``self_attn.o_proj``) and BERT
(``encoder.layer[i].intermediate.intermediate_act_fn``,
``attention.output.dense``) layouts are found by structure. Any other
``nn.Module`` falls back to its activation modules, found by type, in
registration order (``mlp_pre`` / ``mlp_post`` only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn
from transformers.activations import ACT2CLS

Kind = Literal["mlp_pre", "mlp_post", "attn_out"]
KINDS: tuple[Kind, ...] = ("mlp_pre", "mlp_post", "attn_out")


def _activation_classes() -> tuple[type[nn.Module], ...]:
    classes: set[type[nn.Module]] = {
        nn.ReLU,
        nn.ReLU6,
        nn.LeakyReLU,
        nn.PReLU,
        nn.RReLU,
        nn.ELU,
        nn.SELU,
        nn.CELU,
        nn.GELU,
        nn.SiLU,
        nn.Mish,
        nn.Softplus,
        nn.Hardswish,
        nn.Tanh,
        nn.Sigmoid,
    }
    for entry in ACT2CLS.values():
        candidate = entry[0] if isinstance(entry, tuple) else entry
        if isinstance(candidate, type) and issubclass(candidate, nn.Module):
            classes.add(candidate)
    return tuple(sorted(classes, key=lambda cls: cls.__qualname__))


#: Module types treated as activations by the generic fallback (torch's and transformers').
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = _activation_classes()


@dataclasses.dataclass(frozen=True)
class CapturePoint:
    """One activation tensor to audit.

    ``side`` says whether the hook reads the module's input or output. ``incoming`` is the linear
    layer whose outputs are this point's neurons (for Synaptic Stripping); ``incoming_axis`` is the
    axis of its weight that indexes those neurons (0 for ``nn.Linear``, 1 for GPT-2's ``Conv1D``).
    """

    layer: int
    kind: Kind
    name: str
    module: nn.Module
    side: Literal["input", "output"]
    incoming: nn.Module | None = None
    incoming_axis: int = 0

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.layer}"


@dataclasses.dataclass(frozen=True)
class BlockLayout:
    """Attribute paths of one model family: blocks, MLP activation, attention output."""

    family: str
    blocks: str
    activation: str
    attention_output: str
    incoming: str
    incoming_axis: int


LAYOUTS: tuple[BlockLayout, ...] = (
    BlockLayout("gpt2", "transformer.h", "mlp.act", "attn.c_proj", "mlp.c_fc", 1),
    BlockLayout("llama", "model.layers", "mlp.act_fn", "self_attn.o_proj", "mlp.gate_proj", 0),
    BlockLayout(
        "bert",
        "encoder.layer",
        "intermediate.intermediate_act_fn",
        "attention.output.dense",
        "intermediate.dense",
        0,
    ),
)


def _get(root: nn.Module, path: str) -> nn.Module | None:
    module: object = root
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module if isinstance(module, nn.Module) else None


def _find_blocks(model: nn.Module, layout: BlockLayout) -> tuple[str, nn.ModuleList] | None:
    # Match the path at the root or under one wrapper (e.g. BertForMaskedLM.bert).
    for prefix, module in model.named_modules():
        if prefix.count(".") > 0:
            continue
        blocks = _get(module, layout.blocks)
        if isinstance(blocks, nn.ModuleList) and len(blocks) > 0:
            return (f"{prefix}." if prefix else "") + layout.blocks, blocks
    return None


def detect_family(model: nn.Module) -> str:
    """``gpt2``, ``llama`` or ``bert`` when the layout is known, else ``generic``."""
    for layout in LAYOUTS:
        found = _find_blocks(model, layout)
        if found is not None and _get(found[1][0], layout.activation) is not None:
            return layout.family
    return "generic"


def _structured_points(
    model: nn.Module, layout: BlockLayout, kinds: tuple[Kind, ...]
) -> Iterator[CapturePoint]:
    found = _find_blocks(model, layout)
    if found is None:
        return
    prefix, blocks = found
    for index, block in enumerate(blocks):
        activation = _get(block, layout.activation)
        output = _get(block, layout.attention_output)
        incoming = _get(block, layout.incoming)
        if activation is None or output is None:
            raise ValueError(
                f"Block {index} of this {layout.family} model has no {layout.activation} or "
                f"{layout.attention_output} module."
            )
        base = f"{prefix}.{index}"
        for kind in kinds:
            if kind == "attn_out":
                yield CapturePoint(
                    index, kind, f"{base}.{layout.attention_output}", output, "output"
                )
            else:
                yield CapturePoint(
                    index,
                    kind,
                    f"{base}.{layout.activation}",
                    activation,
                    "input" if kind == "mlp_pre" else "output",
                    incoming,
                    layout.incoming_axis,
                )


def _preceding_linear(model: nn.Module, name: str) -> nn.Module | None:
    """The ``nn.Linear`` registered just before the activation ``name`` in its parent."""
    parent_name, _, child_name = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    previous: nn.Module | None = None
    for sibling_name, sibling in parent.named_children():
        if sibling_name == child_name:
            return previous if isinstance(previous, nn.Linear) else None
        previous = sibling
    return None


def _generic_points(model: nn.Module, kinds: tuple[Kind, ...]) -> Iterator[CapturePoint]:
    layer = 0
    seen: set[int] = set()
    for name, module in model.named_modules():
        if not isinstance(module, ACTIVATION_TYPES) or id(module) in seen:
            continue
        seen.add(id(module))  # a module reused in several places is one capture point
        incoming = _preceding_linear(model, name)
        for kind in kinds:
            if kind != "attn_out":
                side: Literal["input", "output"] = "input" if kind == "mlp_pre" else "output"
                yield CapturePoint(layer, kind, name, module, side, incoming, 0)
        layer += 1


def find_capture_points(
    model: nn.Module, kinds: tuple[Kind, ...] | list[Kind] = KINDS
) -> list[CapturePoint]:
    """Capture points of ``model`` for ``kinds``, ordered by layer then kind.

    Known transformer layouts are matched by structure; any other module by activation type. Raises
    ``ValueError`` when nothing can be audited.
    """
    wanted = tuple(kind for kind in KINDS if kind in kinds)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not wanted:
        raise ValueError(f"Unknown kinds {unknown or list(kinds)}; choose from {list(KINDS)}.")
    family = detect_family(model)
    if family == "generic":
        points = list(_generic_points(model, wanted))
    else:
        layout = next(layout for layout in LAYOUTS if layout.family == family)
        points = list(_structured_points(model, layout, wanted))
    if not points:
        raise ValueError(
            f"Found no activation modules to audit in {type(model).__name__} (looked for "
            "GPT-2, Llama and BERT blocks, then activation modules such as nn.ReLU or nn.GELU)."
        )
    return sorted(points, key=lambda p: (p.layer, KINDS.index(p.kind)))


def flatten_tokens(tensor: torch.Tensor) -> torch.Tensor:
    """View an activation as ``(tokens, neurons)``: the last axis is neurons."""
    if tensor.dim() == 0:
        raise ValueError("Cannot audit a scalar activation.")
    return tensor.reshape(-1, tensor.shape[-1]) if tensor.dim() != 1 else tensor.reshape(1, -1)
