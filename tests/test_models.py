"""The networks: the paper's sizes, every knob's shapes, tower separation, init, the CIFAR-10 nets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from audit.config import ModelConfig
from audit.models import AlexNet, CifarFig1, CifarLRN, LocalResponseNorm, build_model
from audit.models.cifar import LocallyConnected2d


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward(model: nn.Module, size: int, batch: int = 2) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(torch.randn(batch, 3, size, size))


# --- the paper's sizes -------------------------------------------------------------------------


def test_parameter_count_is_the_papers() -> None:
    model = build_model(ModelConfig(), 1000)
    convs = sum(n_params(m) for m in model.features if isinstance(m, nn.Conv2d))
    assert (n_params(model), convs) == (60_965_224, 2_334_080)
    assert len(model.state_dict()) == 16  # conv1 is exposed without registering it twice


def test_parameter_count_without_groups() -> None:
    assert n_params(build_model(ModelConfig(towers=1), 1000)) == 62_378_344


def test_full_size_forward_shapes() -> None:
    model = AlexNet(1000)
    maps: dict[str, torch.Size] = {}

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        maps["conv1"] = output.shape

    model.features.conv1.register_forward_hook(record)
    assert forward(model, 224, batch=1).shape == (1, 1000)
    assert maps["conv1"] == (1, 96, 55, 55)
    assert model.feature_shape == (256, 6, 6)
    assert model.conv1 is model.features.conv1 and model.conv1.weight.shape == (96, 3, 11, 11)


KNOBS = [
    {},
    {"activation": "tanh"},
    {"lrn": False},
    {"lrn_alpha_over_n": False},
    {"pooling": "non_overlapping"},
    {"dropout": 0.0},
    {"remove_conv": 2},
    {"remove_conv": 3},
    {"remove_conv": 4},
    {"remove_conv": 5},
    {"conv6": True},
    {"remove_conv": 3, "conv6": True},
    {"towers": 1},
    {"fc_width": 64},
]


def knob_id(knob: dict) -> str:
    return ",".join(f"{a}={b}" for a, b in knob.items()) or "default"


@pytest.mark.parametrize("knob", KNOBS, ids=knob_id)
def test_every_knob_at_224(knob: dict) -> None:
    cfg = ModelConfig(width=0.25, **knob)
    out = forward(build_model(cfg, 10), 224)
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("size", [16, 24, 32, 48, 56, 63, 64, 99, 100])
@pytest.mark.parametrize("pooling", ["overlapping", "non_overlapping"])
def test_small_inputs(size: int, pooling: str) -> None:
    model = build_model(ModelConfig(input_size=size, width=0.25, pooling=pooling), 10)
    assert forward(model, size).shape == (2, 10)
    expected_stem = (11, 4) if size >= 56 else (5, 1 if size <= 48 else 2)
    assert (model.conv1.kernel_size[0], model.conv1.stride[0]) == expected_stem


SMALL_KNOBS = [{"remove_conv": 2}, {"remove_conv": 3}, {"remove_conv": 4}, {"remove_conv": 5}, {"conv6": True},
               {"towers": 1}, {"activation": "tanh"}, {"lrn": False}]


@pytest.mark.parametrize("knob", SMALL_KNOBS, ids=knob_id)
def test_knobs_at_small_sizes(knob: dict) -> None:
    for size, width in ((32, 0.5), (64, 0.25)):
        model = build_model(ModelConfig(input_size=size, width=width, **knob), 100)
        assert forward(model, size).shape == (2, 100)


def test_width_rounds_to_even_channels() -> None:
    model = AlexNet(10, width=0.3, input_size=32)
    channels = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)]
    assert channels == [28, 76, 116, 116, 76] and all(c % 2 == 0 for c in channels)
    assert model.classifier.fc6.out_features == round(4096 * 0.3)


def convs(model: AlexNet) -> list[tuple[str, int, int, int]]:
    """(name, in channels, out channels, groups) of every conv layer, in order."""
    return [(n, m.in_channels, m.out_channels, m.groups) for n, m in model.features.named_children()
            if isinstance(m, nn.Conv2d)]


def test_removed_layers_rewire_the_next_one() -> None:
    """The successor reads the predecessor's maps; every other layer keeps its own grouping."""
    full = [("conv1", 3, 24, 1), ("conv2", 24, 64, 2), ("conv3", 64, 96, 1), ("conv4", 96, 96, 2),
            ("conv5", 96, 64, 2)]
    assert convs(AlexNet(10, width=0.25)) == full
    assert convs(AlexNet(10, width=0.25, remove_conv=2))[1] == ("conv3", 24, 96, 1)
    assert convs(AlexNet(10, width=0.25, remove_conv=3))[2:] == [("conv4", 64, 96, 2), ("conv5", 96, 64, 2)]
    assert convs(AlexNet(10, width=0.25, remove_conv=4))[2:] == [("conv3", 64, 96, 1), ("conv5", 96, 64, 2)]
    no5 = AlexNet(10, width=0.25, remove_conv=5)
    assert convs(no5)[-1] == ("conv4", 96, 96, 2) and no5.classifier.fc6.in_features == 96 * 6 * 6
    no2 = AlexNet(10, width=0.25, remove_conv=2)
    assert [n for n, _ in no2.features.named_children()][3:6] == ["pool1", "pool2", "conv3"]  # conv2's LRN goes too
    assert no2.feature_shape == AlexNet(10, width=0.25).feature_shape


def test_each_removal_builds_its_own_network() -> None:
    """Issue 19: without conv3 and without conv4 used to be the same network."""
    designs = [convs(AlexNet(10, width=0.25, remove_conv=n, init="kaiming")) for n in (None, 2, 3, 4, 5)]
    assert len({tuple(d) for d in designs}) == 5


def test_without_conv3_the_towers_first_meet_at_fc6() -> None:
    model = AlexNet(10, width=0.25, input_size=32, remove_conv=3)
    cross, own = conv1_grad_by_tower(model, "pool5")
    assert cross == 0.0 and own > 0.0
    cross, _ = conv1_grad_by_tower(AlexNet(10, width=0.25, input_size=32, remove_conv=4), "pool5")
    assert cross > 0.0  # conv3 still joins them


def test_conv6_sits_over_the_last_pooling_layer() -> None:
    model = AlexNet(10, width=0.25, conv6=True)
    names = [n for n, _ in model.features.named_children()]
    assert names[-3:] == ["pool5", "conv6", "act6"]
    assert convs(model)[-1] == ("conv6", 64, 64, 2)
    assert model.feature_shape == (64, 6, 6)
    n_plain = n_params(AlexNet(10, width=0.25))
    assert n_params(model) - n_plain == 64 * 32 * 9 + 64
    assert n_params(build_model(ModelConfig(conv6=True), 1000)) - 60_965_224 == 256 * 128 * 9 + 256


def test_dropout_acts_on_fc6_and_fc7_outputs() -> None:
    names = [name for name, _ in AlexNet(10, width=0.25, dropout=0.3).classifier.named_children()]
    assert names == ["fc6", "act6", "drop6", "fc7", "act7", "drop7", "fc8"]
    assert AlexNet(10, width=0.25, dropout=0.3).classifier.drop6.p == 0.3


def test_channels_last_path_computes_the_same_function() -> None:
    a = AlexNet(10, width=0.25, input_size=32)
    b = AlexNet(10, width=0.25, input_size=32, cpu_channels_last=False)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32)
    a.eval(), b.eval()
    torch.testing.assert_close(a(x), b(x), rtol=1e-4, atol=1e-5)


def test_num_classes_must_agree() -> None:
    assert forward(build_model(ModelConfig(num_classes=7, input_size=32), 7), 32).shape == (2, 7)
    with pytest.raises(ValueError, match="num_classes"):
        build_model(ModelConfig(num_classes=7), 10)


# --- towers ------------------------------------------------------------------------------------


def input_grad_by_tower(layer: nn.Conv2d, side: int = 5) -> tuple[float, float]:
    """|d(tower-B outputs)/d(tower-A inputs)| and |d(tower-B outputs)/d(tower-B inputs)|."""
    x = torch.randn(1, layer.in_channels, side, side, requires_grad=True)
    layer(x)[:, layer.out_channels // 2:].sum().backward()
    half = layer.in_channels // 2
    return x.grad[:, :half].abs().sum().item(), x.grad[:, half:].abs().sum().item()


def test_towers_are_disconnected_at_conv2_conv4_conv5_and_joined_at_conv3() -> None:
    features = AlexNet(10, width=0.25, input_size=32).features
    for name in ("conv2", "conv4", "conv5"):
        cross, own = input_grad_by_tower(getattr(features, name))
        assert cross == 0.0 and own > 0.0, name
    cross, own = input_grad_by_tower(features.conv3)
    assert cross > 0.0 and own > 0.0


def conv1_grad_by_tower(model: AlexNet, upto: str) -> tuple[float, float]:
    """d(tower-B maps after layer ``upto``)/d(conv1 kernels of tower A, of tower B)."""
    names = [name for name, _ in model.features.named_children()]
    stem = model.features[: names.index(upto) + 1]
    out = stem(torch.randn(2, 3, 32, 32))
    out[:, out.shape[1] // 2:].sum().backward()
    grad = model.conv1.weight.grad
    half = grad.shape[0] // 2
    return grad[:half].abs().sum().item(), grad[half:].abs().sum().item()


def test_towers_stay_apart_through_lrn_and_pooling_until_conv3() -> None:
    cross, own = conv1_grad_by_tower(AlexNet(10, width=0.25, input_size=32), "pool2")
    assert cross == 0.0 and own > 0.0
    cross, _ = conv1_grad_by_tower(AlexNet(10, width=0.25, input_size=32), "act3")
    assert cross > 0.0
    cross, _ = conv1_grad_by_tower(AlexNet(10, width=0.25, input_size=32, towers=1), "pool2")
    assert cross > 0.0


# --- init --------------------------------------------------------------------------------------


def test_paper_init() -> None:
    model = build_model(ModelConfig(input_size=64, width=0.5), 100)
    layers = dict([*model.features.named_children(), *model.classifier.named_children()])
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        expected_bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert torch.all(layers[name].bias == expected_bias), name
        assert layers[name].weight.mean().abs() < 2e-3, name
        assert layers[name].weight.std().item() == pytest.approx(0.01, rel=0.05), name


def test_paper_init_bias_constants_follow_the_layers_that_remain() -> None:
    for kw, expected in (({"remove_conv": 3}, [0, 1, 1, 1, 1, 1, 0]), ({"remove_conv": 4}, [0, 1, 0, 1, 1, 1, 0]),
                         ({"conv6": True}, [0, 1, 0, 1, 1, 1, 1, 1, 0])):
        model = AlexNet(10, width=0.25, input_size=32, bias_one=0.5, **kw)
        constants = model.bias_constants(0.5)
        assert list(constants.values()) == [0.5 * e for e in expected], kw
        params = dict(model.named_parameters())
        for name, value in constants.items():
            prefix = "classifier" if name.startswith("fc") else "features"
            assert torch.all(params[f"{prefix}.{name}.bias"] == value), (kw, name)


def test_init_options() -> None:
    model = build_model(ModelConfig(input_size=32, width=0.25, bias_one=0.1, init_std=0.02), 10)
    assert torch.all(model.features.conv2.bias == 0.1)
    assert model.classifier.fc6.weight.std().item() == pytest.approx(0.02, rel=0.05)
    torch_init = build_model(ModelConfig(input_size=32, width=0.25, init="torch"), 10)
    bound = 1 / (torch_init.features.conv2.weight[0].numel() ** 0.5)
    assert torch_init.features.conv2.bias.abs().max() <= bound


# --- CIFAR-10 nets -----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["cifar_fig1", "cifar_lrn"])
@pytest.mark.parametrize("size", [24, 32])
def test_cifar_nets(arch: str, size: int) -> None:
    model = build_model(ModelConfig(arch=arch, input_size=size, activation="tanh"), 10)
    assert forward(model, size).shape == (2, 10)
    assert model.conv1.in_channels == 3


@pytest.mark.parametrize(("arch", "cls"), [("cifar_fig1", CifarFig1), ("cifar_lrn", CifarLRN)])
def test_cifar_lrn_knob(arch: str, cls: type) -> None:
    def count(lrn: bool) -> int:
        model = build_model(ModelConfig(arch=arch, input_size=24, lrn=lrn, init="torch"), 10)
        assert isinstance(model, cls)
        return sum(isinstance(m, LocalResponseNorm) for m in model.modules())

    assert (count(True), count(False)) == (2, 0)


def test_cifar_widths_and_paper_init() -> None:
    model = build_model(ModelConfig(arch="cifar_lrn", input_size=32, width=0.5, init="paper"), 10)
    assert model.features.conv1.out_channels == 32 and model.features.local4.out_channels == 16
    assert model.classifier.fc10.in_features == 16 * 8 * 8
    assert torch.all(model.features.local3.bias == 0)
    assert model.features.local3.weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_per_layer_init_std_as_cuda_convnet_layer_files() -> None:
    cfg = ModelConfig(arch="cifar_fig1", input_size=32, init="paper", init_std=0.01, init_std_by_layer={"conv1": 1e-4})
    model = build_model(cfg, 10)
    assert model.features.conv1.weight.std().item() == pytest.approx(1e-4, rel=0.1)
    assert model.features.conv2.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert model.classifier.fc10.weight.std().item() == pytest.approx(0.01, rel=0.1)
    with pytest.raises(ValueError, match="names no layer of this net: conv9"):
        build_model(cfg.model_copy(update={"init_std_by_layer": {"conv9": 0.1}}), 10)
    with pytest.raises(ValueError, match="needs init: paper"):
        ModelConfig(arch="cifar_fig1", init="torch", init_std_by_layer={"conv1": 1e-4})


def test_locally_connected_with_shared_weights_is_a_convolution() -> None:
    layer = LocallyConnected2d(4, 3, in_size=6, kernel_size=3, padding=1)
    conv = nn.Conv2d(4, 3, 3, padding=1)
    with torch.no_grad():
        layer.weight.copy_(conv.weight.reshape(1, 3, -1).expand_as(layer.weight))
        layer.bias.copy_(conv.bias[:, None, None].expand_as(layer.bias))
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(layer(x), conv(x))
    assert layer.weight.shape == (36, 3, 36)  # one kernel per output position


def test_locally_connected_uses_each_positions_own_kernel() -> None:
    """Against unfold + einsum, the textbook form, with unshared weights and channels_last input."""
    layer = LocallyConnected2d(5, 4, in_size=7, kernel_size=3, padding=1)
    x = torch.randn(3, 5, 7, 7).to(memory_format=torch.channels_last)
    cols = F.unfold(x, 3, padding=1)                                  # [N, in*k*k, L]
    expected = torch.einsum("ncl,loc->nol", cols, layer.weight).reshape(3, 4, 7, 7) + layer.bias
    torch.testing.assert_close(layer(x), expected)


def test_the_one_gpu_net_is_the_papers_footnote() -> None:
    """Half the kernels in conv1-conv4, conv5 and the fc layers kept, no grouping: about the two-tower net's size."""
    with torch.device("meta"):
        one = build_model(ModelConfig(arch="alexnet_one_gpu", towers=1, init="torch"), 1000)
        two = build_model(ModelConfig(init="torch"), 1000)
    convs = [m for m in one.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [48, 128, 192, 192, 256] and {c.groups for c in convs} == {1}
    assert [m.out_features for m in one.classifier if isinstance(m, nn.Linear)] == [4096, 4096, 1000]
    sizes = [sum(p.numel() for p in net.parameters()) for net in (one, two)]
    assert sizes == [59_798_312, 60_965_224]
    with pytest.raises(ValueError, match="set model.towers: 1"):
        build_model(ModelConfig(arch="alexnet_one_gpu"), 10)


def test_the_batch_norm_figure1_net_normalises_before_each_activation() -> None:
    net = build_model(ModelConfig(arch="cifar_fig1_bn", lrn=False, input_size=32, activation="tanh"), 10)
    names = [name for name, _ in net.features.named_children()]
    assert names[:3] == ["conv1", "bn1", "act1"] and names.count("bn2") == names.count("bn3") == 1
    assert all(m.bias is None for m in net.features if isinstance(m, nn.Conv2d))
    assert net(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    with pytest.raises(ValueError, match="set model.lrn: false"):
        build_model(ModelConfig(arch="cifar_fig1_bn", input_size=32), 10)
