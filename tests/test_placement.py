"""Two-device tower placement and data-parallel ranks compute what one device computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from audit.config import DataConfig, ModelConfig, RunConfig, SyntheticConfig, TrainConfig
from audit.models import build_model
from audit.models.placement import TwoDeviceAlexNet, place
from audit.train import checkpoint
from audit.train.distributed import Runtime, run_training

CPU2 = (torch.device("cpu"), torch.device("cpu"))  # two CPU "devices": the same code path as two GPUs


def tiny(**kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(width=0.125, input_size=32, fc_width=33, dropout=0.0, init="paper", init_std=0.1, **kw)
    return build_model(cfg, 7)


@pytest.mark.parametrize("kw", [{}, {"remove_conv": 2}, {"remove_conv": 3}, {"remove_conv": 4}, {"remove_conv": 5},
                                {"conv6": True}, {"lrn": False},
                                {"activation": "tanh", "pooling": "non_overlapping"},
                                {"towers": 1}])  # one tower: every layer joined, LRN across the halves (halo)
def test_two_device_equals_grouped_outputs_and_gradients(kw: dict) -> None:
    """In float64: float32 rounding can flip a max-pool's pick between two nearly equal maps, and the
    gradient then flows through the other one (it did for one pool5 window of 10,240 at remove_conv=4)."""
    net = tiny(**kw).double()
    placed = TwoDeviceAlexNet(net, CPU2).double()
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y_grouped, y_placed = net(x), placed(x)
    torch.testing.assert_close(y_placed, y_grouped, rtol=1e-5, atol=1e-5 * y_grouped.abs().max().item())
    (y_grouped.square().sum()).backward()
    (y_placed.square().sum()).backward()
    grads = placed.to_canonical({n: p.grad for n, p in placed.named_parameters()})
    assert set(grads) == {n for n, _ in net.named_parameters()}
    for name, p in net.named_parameters():  # rounding differs: compare on the gradient's own scale
        scale = p.grad.abs().max().item()
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-5, atol=1e-5 * scale, msg=name)


def test_cross_device_copies_only_where_towers_meet() -> None:
    """Grouped convs stay per tower (no copy); joined layers (conv1, conv3, FCs) see both towers."""
    placed = TwoDeviceAlexNet(tiny(), CPU2)
    kinds = {key: kind for key, _, kind, _ in placed.layers}
    assert [k for k, v in kinds.items() if v == "grouped"] == ["features_conv2", "features_conv4", "features_conv5"]
    assert [k for k, v in kinds.items() if v == "joined"] == ["features_conv1", "features_conv3", "classifier_fc6",
                                                              "classifier_fc7", "classifier_fc8"]
    assert kinds["features_norm1"] == kinds["features_norm2"] == "tower_lrn"  # each tower normalises its own maps
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


# ---------------------------------------------------------------------- data parallel (DDP, gloo)
class FileLogger:
    """A picklable RunLogger (factory) for rank 0 in a spawned process: metrics go to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> FileLogger:
        return self

    def dataset(self, info: dict[str, str], manifest: Path | None) -> None:
        pass

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps([epoch, {k: v for k, v in metrics.items() if k != "epoch_seconds"}]) + "\n")

    def artifact(self, path: Path, folder: str = "weights") -> None:
        pass

    def read(self) -> list[list]:
        return [json.loads(line) for line in self.path.read_text().splitlines()]


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    """Each rank takes its half of the one-process batch (same generator: same order, crops, flips,
    colour noise), DDP averages the gradients: the same SGD steps up to float rounding (dropout 0)."""
    cfg = RunConfig(
        model=ModelConfig(width=0.125, input_size=28, fc_width=32, dropout=0.0, init="torch"),
        data=DataConfig(synthetic=SyntheticConfig(classes=10, train_per_class=16, val_per_class=4, size=32),
                        normalise="unit", pca_noise=0.1, crop=28, resize=32),
        train=TrainConfig(epochs=3, batch_size=16, lr=0.05, schedule="constant"))
    results, weights = {}, {}
    for ranks in (1, 2):
        log = FileLogger(tmp_path / f"ranks{ranks}.jsonl")
        out = run_training(cfg, log, tmp_path / f"runs{ranks}", None, "r", False, Runtime(processes=ranks, threads=2))
        assert out.status == "finished" and out.epochs == 3
        results[ranks] = log.read()
        weights[ranks] = torch.load(tmp_path / f"runs{ranks}" / "checkpoints" / cfg.config_hash / "final.pt")
    assert [e for e, _ in results[2]] == [1, 2, 3]
    for (_, one), (_, two) in zip(results[1], results[2]):
        assert one.keys() == two.keys()
        for key in one:
            assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-4), key
    torch.manual_seed(cfg.seed)
    start = build_model(cfg.model, 10).state_dict()  # the run's initial weights
    assert max((w - start[k]).abs().max().item() for k, w in weights[1].items()) > 1e-2, "training moved them"
    for name, w in weights[1].items():  # 30 SGD steps with momentum: rounding differences add up a little
        torch.testing.assert_close(weights[2][name], w, rtol=1e-3, atol=1e-4 * w.abs().max().item(), msg=name)
