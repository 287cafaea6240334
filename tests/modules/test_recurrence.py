"""keel.modules.recurrence: per-direction runs on the padded batch equal packed runs."""

from __future__ import annotations

import pytest
import torch

from keel.modules.recurrence import run_recurrent

_LENGTHS = torch.tensor([5, 1, 3, 5, 2])


def _module(kind: str, **options) -> torch.nn.RNNBase:
    torch.manual_seed(0)
    if kind == "rnn_relu":
        return torch.nn.RNN(4, 3, nonlinearity="relu", batch_first=True, **options)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](
        4, 3, batch_first=True, **options
    )


def _inputs() -> torch.Tensor:
    torch.manual_seed(1)
    values = torch.randn(len(_LENGTHS), int(_LENGTHS.max()), 4)
    # Large values at the padding: any leak into the real steps would show.
    padding = torch.arange(values.shape[1]) >= _LENGTHS.unsqueeze(1)
    return values.masked_fill(padding.unsqueeze(-1), 100.0).requires_grad_()


def _run(module, per_direction):
    inputs = _inputs()
    output, final = run_recurrent(module, inputs, _LENGTHS, per_direction=per_direction)
    # Both results feed the loss, so the gradients of both are compared.
    (output.square().sum() + final.sin().sum()).backward()
    grads = {name: parameter.grad.clone() for name, parameter in module.named_parameters()}
    module.zero_grad()
    return output.detach(), final.detach(), inputs.grad, grads


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn", "rnn_relu"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"bidirectional": True},
        {"num_layers": 2, "bidirectional": True},
        {"num_layers": 2, "bias": False},
    ],
)
def test_per_direction_equals_packed_with_gradients(kind, options):
    module = _module(kind, **options)
    packed = _run(module, per_direction=False)
    per_direction = _run(module, per_direction=True)
    for expected, got in zip(packed[:3], per_direction[:3], strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    for name, grad in packed[3].items():
        torch.testing.assert_close(per_direction[3][name], grad, atol=1e-5, rtol=1e-5)
    output = per_direction[0]
    padding = torch.arange(output.shape[1]) >= _LENGTHS.unsqueeze(1)
    assert bool((output[padding] == 0).all())
    assert not bool((output[~padding] == 0).all())


def test_the_final_state_is_each_direction_at_its_own_end():
    module = _module("lstm", bidirectional=True)
    with torch.no_grad():
        output, final = run_recurrent(module, _inputs(), _LENGTHS, per_direction=True)
    rows = torch.arange(len(_LENGTHS))
    torch.testing.assert_close(final[:, :3], output[rows, _LENGTHS - 1, :3])
    torch.testing.assert_close(final[:, 3:], output[:, 0, 3:])
    # A row alone, unpadded, gives the same numbers.
    alone, _ = module(_inputs()[1:2, :1].detach())
    torch.testing.assert_close(output[1:2, :1], alone)


def test_inter_layer_dropout_applies_in_training_only():
    module = _module("gru", num_layers=2, dropout=0.5)
    module.train()
    inputs = _inputs()  # (seeds the generator itself, so made once)
    first, _ = run_recurrent(module, inputs, _LENGTHS, per_direction=True)
    second, _ = run_recurrent(module, inputs, _LENGTHS, per_direction=True)
    assert not torch.equal(first, second)  # masks drawn per call
    module.eval()
    with torch.no_grad():
        evaluated, _ = run_recurrent(module, _inputs(), _LENGTHS, per_direction=True)
        packed, _ = run_recurrent(module, _inputs(), _LENGTHS, per_direction=False)
    torch.testing.assert_close(evaluated, packed, atol=1e-5, rtol=1e-5)


def test_the_faster_way_is_chosen_per_batch():
    from keel.modules import recurrence

    small = _module("lstm")
    large = torch.nn.LSTM(4, 128, batch_first=True)
    inputs = torch.zeros(4, 10, 4)
    sparse = torch.tensor([10, 1, 1, 1])  # 13 of 40 steps are real
    dense = torch.tensor([10, 9, 8, 10])
    assert recurrence._per_direction_is_faster(small, inputs, sparse)
    assert recurrence._per_direction_is_faster(large, inputs, dense)
    assert not recurrence._per_direction_is_faster(large, inputs, sparse)
    # Inference stays packed, bit for bit what archives recorded.
    assert not recurrence._per_direction_is_faster(small.eval(), inputs, dense)
    projected = torch.nn.LSTM(4, 8, proj_size=2, batch_first=True)
    assert not recurrence._per_direction_is_faster(projected, inputs, dense)
    # Projections take the packed way, with the projected size.
    output, final = run_recurrent(projected, inputs, dense)
    assert output.shape == (4, 10, 2) and final.shape == (4, 2)
