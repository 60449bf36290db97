import pytest
import torch
from neuron_audit_testing import half_dead_mlp

from neuron_audit.auditor import run_audit
from neuron_audit.stripping import SynapticStripping, strip_neurons


def test_the_most_negative_incoming_weights_are_zeroed() -> None:
    weight = torch.tensor([[-1.0, -4.0, -2.0, 3.0], [-1.0, -1.0, 1.0, 1.0]])
    assert strip_neurons(weight, [0], 0.5, axis=0) == 2
    assert weight.tolist() == [[-1.0, 0.0, 0.0, 3.0], [-1.0, -1.0, 1.0, 1.0]]
    # Conv1D stores (in, out): neuron 1 is column 1; only negative weights are ever cut
    conv = torch.tensor([[1.0, 2.0], [1.0, -5.0], [1.0, 3.0]])
    assert strip_neurons(conv, [1], 1.0, axis=1) == 1
    assert conv.tolist() == [[1.0, 2.0], [1.0, 0.0], [1.0, 3.0]]
    with pytest.raises(ValueError, match="fraction"):
        strip_neurons(weight, [0], 0.0, axis=0)


def test_stripping_revives_a_dead_neuron() -> None:
    model = half_dead_mlp()
    first = model.get_submodule("0")
    assert isinstance(first, torch.nn.Linear)
    with torch.no_grad():
        first.weight[0] = torch.tensor([-1.0, -4.0, -2.0, -3.0])
        first.bias[0] = 0.5  # 0.5 - (positive inputs) < 0: dead
    inputs = 0.5 + 0.5 * torch.rand(200, 4, generator=torch.Generator().manual_seed(0))
    validation = [{"input": inputs}]

    def audit_dead() -> list[int]:
        layers = run_audit(_Wrapped(model), validation, kinds=("mlp_post",))
        return list(layers[0]["dead_neurons"])

    assert audit_dead() == [0, 1, 2]
    stripper = SynapticStripping(_Wrapped(model), fraction=0.25)
    record = stripper.on_epoch_end(1, validation)
    assert record["dead_before_strip"] == 3
    assert record["weights_zeroed"] == 1  # neurons 1-2 have no negative weight to cut
    assert first.weight[0].tolist() == [-1.0, 0.0, -2.0, -3.0]
    SynapticStripping(_Wrapped(model), fraction=1.0).on_epoch_end(2, validation)
    assert first.weight[0].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert audit_dead() == [1, 2]  # neuron 0 fires again (bias 0.5); 1-2 had no weights to cut


class _Wrapped(torch.nn.Module):
    """Calls the MLP with the batch's ``input`` tensor, as run_audit passes keywords."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.inner(input)
        return output
