"""Two-device tower placement computes the grouped model's function, and checkpoints are layout-free."""

from __future__ import annotations

import pytest
import torch

from audit.config import ModelConfig
from audit.models import build_model
from audit.models.placement import TwoDeviceAlexNet, place
from audit.train import checkpoint

CPU2 = (torch.device("cpu"), torch.device("cpu"))  # two CPU "devices": the same code path as two GPUs


def tiny(**kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(width=0.125, input_size=32, fc_width=33, dropout=0.0, init="paper", init_std=0.1, **kw)
    return build_model(cfg, 7)


@pytest.mark.parametrize("kw", [{}, {"remove_conv": 3}, {"remove_conv": 4}, {"lrn": False},
                                {"activation": "tanh", "pooling": "non_overlapping"}])
def test_two_device_equals_grouped_outputs_and_gradients(kw: dict) -> None:
    net = tiny(**kw)
    placed = TwoDeviceAlexNet(net, CPU2)
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y_grouped, y_placed = net(x), placed(x)
    torch.testing.assert_close(y_placed, y_grouped, rtol=1e-5, atol=1e-5 * y_grouped.abs().max().item())
    (y_grouped.square().sum()).backward()
    (y_placed.square().sum()).backward()
    grads = placed.to_canonical({n: p.grad for n, p in placed.named_parameters()})
    assert set(grads) == {n for n, _ in net.named_parameters()}
    for name, p in net.named_parameters():  # float32 rounding differs: compare on the gradient's own scale
        scale = p.grad.abs().max().item()
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-5, atol=1e-5 * scale, msg=name)


def test_cross_device_copies_only_where_towers_meet() -> None:
    """Grouped convs stay per tower (no copy); joined layers (conv1, conv3, FCs) see both towers."""
    placed = TwoDeviceAlexNet(tiny(), CPU2)
    kinds = {key: kind for key, _, kind, _ in placed.layers}
    assert [k for k, v in kinds.items() if v == "grouped"] == ["features_conv2", "features_conv4", "features_conv5"]
    assert [k for k, v in kinds.items() if v == "joined"] == ["features_conv1", "features_conv3", "classifier_fc6",
                                                              "classifier_fc7", "classifier_fc8"]
    conv2 = placed.a["features_conv2"]
    assert conv2.groups == 1 and conv2.in_channels == tiny().features.conv2.in_channels // 2


def test_state_and_optimiser_round_trip_between_layouts() -> None:
    """A checkpoint written from two-device training loads into a single-device model and back."""
    net = tiny()
    placed = TwoDeviceAlexNet(net, CPU2)
    opt = torch.optim.SGD(placed.parameters(), lr=0.1, momentum=0.9)
    placed(torch.randn(4, 3, 32, 32)).sum().backward()
    opt.step()
    state, opt_state = checkpoint.model_state(placed), checkpoint.optimizer_state(placed, opt)
    assert set(state) == set(net.state_dict()) and set(opt_state["momentum"]) == set(state)

    single = tiny()
    single.load_state_dict(state)
    single_opt = torch.optim.SGD(single.parameters(), lr=0.1, momentum=0.9)
    checkpoint.load_optimizer_state(single, single_opt, opt_state)
    again = TwoDeviceAlexNet(tiny(), CPU2)
    again_opt = torch.optim.SGD(again.parameters(), lr=0.1, momentum=0.9)
    checkpoint.load_model_state(again, checkpoint.model_state(single))
    checkpoint.load_optimizer_state(again, again_opt, checkpoint.optimizer_state(single, single_opt))
    for (name, p), (_, q) in zip(placed.named_parameters(), again.named_parameters()):
        assert torch.equal(p, q), name
        assert torch.equal(opt.state[p]["momentum_buffer"], again_opt.state[q]["momentum_buffer"]), name


def test_place_single_and_errors() -> None:
    net = tiny()
    assert place(net, "single", torch.device("cpu")) is net
    with pytest.raises(ValueError, match="two-tower AlexNet"):
        place(build_model(ModelConfig(arch="cifar_fig1", input_size=32, lrn=False), 10), "two-device",
              torch.device("cpu"))
    with pytest.raises(ValueError, match="placement"):
        place(net, "three-device", torch.device("cpu"))
