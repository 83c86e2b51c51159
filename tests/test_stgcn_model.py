"""ST-GCN model behaviour that needs no fixture: shapes, layouts, validation, checkpoints."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pose_zsl.models.stgcn import REFERENCE_CHANNELS, STGCN, block_channels
from pose_zsl.skeleton.layouts import get_layout

SMALL = 0.125  # width multiplier that keeps these tests fast


def _input(n: int = 2, c: int = 3, t: int = 12, v: int = 25, m: int = 2) -> torch.Tensor:
    return torch.randn(n, c, t, v, m, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize(
    ("layout", "partition", "subsets"),
    [
        ("ntu-rgb+d", "spatial", 3),
        ("kinect-v1", "uniform", 1),
        ("openpose-18", "distance", 2),
        ("coco-17", "spatial", 3),
    ],
)
def test_shapes_per_layout(layout: str, partition: str, subsets: int) -> None:
    joints = get_layout(layout).num_joints
    model = STGCN(
        in_channels=2, num_classes=5, layout=layout, partition=partition, width_multiplier=SMALL
    ).eval()
    assert model.A.shape == (subsets, joints, joints)
    x = _input(c=2, v=joints, m=1)
    with torch.no_grad():
        logits, features = model.forward_with_features(x)
        feature_map = model.extract_feature_map(x)
    assert logits.shape == (2, 5)
    assert features.shape == (2, model.feature_dim) == (2, 32)
    assert feature_map.shape == (2, 32, 3, joints, 1)  # T' = ceil(12 / 4)


def test_width_multiplier_and_reference_widths() -> None:
    assert block_channels(1.0) == REFERENCE_CHANNELS
    assert block_channels(0.25) == (16, 16, 16, 16, 32, 32, 32, 64, 64, 64)
    assert STGCN(num_classes=3, width_multiplier=0.25).feature_dim == 64
    with pytest.raises(ValueError, match="width_multiplier"):
        block_channels(0.0)


def test_full_width_layer_list_matches_reference() -> None:
    model = STGCN(num_classes=60)
    assert sum(p.numel() for p in model.parameters()) == 3_098_832
    residuals = [block.residual_mode for block in model.st_gcn_networks]
    assert (
        residuals
        == ["none"] + ["identity"] * 3 + ["conv"] + ["identity"] * 2 + ["conv"] + ["identity"] * 2
    )
    strides = [block.tcn[2].stride[0] for block in model.st_gcn_networks]
    assert strides == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert model.st_gcn_networks[0].tcn[4].p == 0.0
    assert all(block.tcn[4].p == 0.5 for block in model.st_gcn_networks[1:])


def test_without_edge_importance() -> None:
    model = STGCN(num_classes=60, edge_importance=False)
    assert sum(p.numel() for p in model.parameters()) == 3_080_082
    assert not any(key.startswith("edge_importance") for key in model.state_dict())
    with torch.no_grad():
        assert model.eval()(_input(t=4)).shape == (2, 60)


def test_bodies_are_averaged_after_pooling_including_zero_bodies() -> None:
    torch.manual_seed(0)
    model = STGCN(num_classes=4, width_multiplier=SMALL).eval()
    with torch.no_grad():
        model.data_bn.running_mean.uniform_(-0.5, 0.5)
        x = _input(m=2)
        x[1, ..., 1] = 0.0  # a single-person clip padded with an all-zero body
        both = model.extract_features(x)
        first = model.extract_features(x[..., :1].contiguous())
        second = model.extract_features(x[..., 1:].contiguous())
    torch.testing.assert_close(both, (first + second) / 2, atol=1e-6, rtol=1e-5)
    assert (both[1] - first[1]).abs().max() > 1e-4  # the zero body does count


def test_data_bn_channel_order_is_joint_major() -> None:
    model = STGCN(num_classes=4, width_multiplier=SMALL).eval()
    with torch.no_grad():
        model.data_bn.bias.zero_()
        model.data_bn.weight.zero_()
        model.data_bn.bias[3 * 7 + 2] = 1.0  # joint 7, channel z
        captured: list[torch.Tensor] = []
        handle = model.st_gcn_networks[0].register_forward_pre_hook(
            lambda _module, args: captured.append(args[0])
        )
        model(_input())
        handle.remove()
    block_input = captured[0]  # (N*M, C, T, V)
    nonzero = block_input.abs().sum(dim=(0, 2))
    assert nonzero[2, 7] > 0
    assert nonzero.sum() == nonzero[2, 7]


@pytest.mark.parametrize("training", [False, True])
def test_channels_last_matches_contiguous_in_float64(training: bool) -> None:
    torch.manual_seed(1)
    model = STGCN(num_classes=6, width_multiplier=SMALL, dropout=0.0).double()
    with torch.no_grad():
        for importance in model.edge_importance:
            importance.uniform_(0.5, 1.5)
    model.train(training)
    x = _input(t=16).double()
    results = []
    for channels_last in (False, True):
        model.set_channels_last(channels_last)
        model.zero_grad()
        logits = model(x)
        logits.square().sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        results.append((logits.detach(), grads))
    (logits_a, grads_a), (logits_b, grads_b) = results
    torch.testing.assert_close(logits_b, logits_a, atol=1e-10, rtol=1e-9)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grads_b[name], grad, atol=1e-9, rtol=1e-7, msg=name)


def test_training_step_learns() -> None:
    torch.manual_seed(0)
    model = STGCN(num_classes=2, width_multiplier=SMALL, dropout=0.0).train()
    x = _input(n=4, t=8, m=1)
    labels = torch.tensor([0, 1, 0, 1])
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(x), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_config_rebuilds_the_architecture() -> None:
    model = STGCN(
        in_channels=2,
        num_classes=9,
        layout="openpose-18",
        partition="distance",
        edge_importance=False,
        width_multiplier=SMALL,
        reference_exact_graph=False,
        max_hop=2,
    )
    rebuilt = STGCN(**model.config())
    assert rebuilt.config() == model.config()
    assert model.config()["layout"] == "openpose-18"
    rebuilt.load_reference_state_dict(model.state_dict())


def test_construction_is_deterministic_for_a_seed() -> None:
    torch.manual_seed(3)
    first = STGCN(num_classes=5, width_multiplier=SMALL).state_dict()
    torch.manual_seed(3)
    second = STGCN(num_classes=5, width_multiplier=SMALL).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (_input(v=20), r"V=20 joints, layout 'ntu-rgb\+d' expects 25"),
        (_input(c=2), "C=2 channels, expected in_channels=3"),
        (torch.randn(2, 3, 12, 25), r"must be 5-D \(N, C, T, V, M\)"),
        (_input(t=0), "empty dimension"),
        (torch.zeros(1, 3, 4, 25, 1, dtype=torch.int64), "floating point"),
    ],
)
def test_rejects_malformed_input(x: torch.Tensor, message: str) -> None:
    model = STGCN(num_classes=3, width_multiplier=SMALL)
    with pytest.raises(ValueError, match=message):
        model(x)
    with pytest.raises(ValueError, match=message):
        model.extract_features(x)


def test_rejects_non_finite_input() -> None:
    model = STGCN(num_classes=3, width_multiplier=SMALL)
    x = _input()
    x[0, 1, 3, 4, 0] = float("nan")
    x[1, 0, 0, 0, 1] = float("inf")
    with pytest.raises(ValueError, match=r"2 NaN/inf"):
        model(x)
    with pytest.raises(ValueError, match="NaN/inf"):
        model.extract_features(x)
    model.check_finite = False  # the caller has validated on the host
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 3)


def test_load_reference_state_dict_roundtrip() -> None:
    torch.manual_seed(0)
    source = STGCN(num_classes=7, width_multiplier=SMALL).eval()
    target = STGCN(num_classes=7, width_multiplier=SMALL).eval()
    target.load_reference_state_dict(source.state_dict())
    x = _input()
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), atol=0, rtol=0)


def test_load_reports_shape_mismatch() -> None:
    checkpoint = STGCN(num_classes=60, width_multiplier=SMALL).state_dict()
    model = STGCN(num_classes=120, width_multiplier=SMALL)
    with pytest.raises(ValueError, match=r"fcn.weight: checkpoint \(60, 32, 1, 1\) vs model"):
        model.load_reference_state_dict(checkpoint)


def test_load_reports_missing_and_unexpected_keys() -> None:
    checkpoint = STGCN(num_classes=5, width_multiplier=SMALL).state_dict()
    del checkpoint["data_bn.running_var"]
    checkpoint["head.weight"] = torch.zeros(1)
    model = STGCN(num_classes=5, width_multiplier=SMALL)
    with pytest.raises(ValueError) as info:
        model.load_reference_state_dict(checkpoint)
    text = str(info.value)
    assert "missing keys (1): data_bn.running_var" in text
    assert "unexpected keys (1): head.weight" in text


def test_load_without_edge_importance_names_the_missing_masks() -> None:
    checkpoint = STGCN(num_classes=5, width_multiplier=SMALL, edge_importance=False).state_dict()
    model = STGCN(num_classes=5, width_multiplier=SMALL)
    with pytest.raises(ValueError, match=r"missing keys \(10\): edge_importance.0"):
        model.load_reference_state_dict(checkpoint)


def test_load_rejects_other_graph_and_non_finite_weights() -> None:
    bfs = STGCN(num_classes=5, width_multiplier=SMALL, reference_exact_graph=False)
    exact = STGCN(num_classes=5, width_multiplier=SMALL)
    with pytest.raises(ValueError, match="adjacency 'A' differs"):
        exact.load_reference_state_dict(bfs.state_dict())
    corrupt = exact.state_dict()
    corrupt["fcn.bias"] = torch.full_like(corrupt["fcn.bias"], float("nan"))
    with pytest.raises(ValueError, match="'fcn.bias' contains NaN/inf"):
        exact.load_reference_state_dict(corrupt)
    with pytest.raises(ValueError, match="state_dict mapping"):
        exact.load_reference_state_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layout": "smpl"}, "unknown skeleton layout 'smpl'"),
        ({"partition": "radial"}, "unknown partition 'radial'"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"num_classes": 0}, "num_classes must be >= 1"),
    ],
)
def test_rejects_bad_constructor_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        STGCN(**{"num_classes": 3, **kwargs})


@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_traces_as_one_graph(channels_last: bool) -> None:
    model = STGCN(
        num_classes=3, width_multiplier=SMALL, check_finite=False, channels_last=channels_last
    )
    explanation = torch._dynamo.explain(model)(_input(t=8))
    assert explanation.graph_break_count == 0
    assert explanation.graph_count == 1
