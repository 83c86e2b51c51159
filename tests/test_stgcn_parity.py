"""Parity of ``STGCN`` with the original ST-GCN, against every tensor in shared/fixtures/stgcn.

Tolerances are the fixture README's: logits and pooled features atol 1e-5 / rtol 1e-4, the
unpooled feature map atol 1e-5.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import require_shared

from pose_zsl.models.graph import build_adjacency
from pose_zsl.models.stgcn import STGCN

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "stgcn"
ATOL, RTOL = 1e-5, 1e-4


@pytest.fixture(scope="module", autouse=True)
def _fixtures_present() -> None:
    require_shared(FIXTURES / "reference_state_dict.pt", "the ST-GCN parity fixtures")


def _load(name: str) -> object:
    return torch.load(FIXTURES / name, weights_only=True)


@pytest.fixture(scope="module", autouse=True)
def _two_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    return _load("reference_state_dict.pt")


@pytest.fixture(scope="module")
def perturbed_state(reference_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    overrides = _load("perturbed_overrides.pt")
    assert set(overrides) <= set(reference_state)
    return {**reference_state, **overrides}


def _model(state: dict[str, torch.Tensor], channels_last: bool = False) -> STGCN:
    model = STGCN(in_channels=3, num_classes=60, layout="ntu-rgb+d", partition="spatial")
    model.load_reference_state_dict(state)
    return model.set_channels_last(channels_last).eval()


@pytest.fixture(scope="module")
def reference_model(reference_state: dict[str, torch.Tensor]) -> STGCN:
    return _model(reference_state)


def test_parameter_count_and_state_dict_keys(
    reference_model: STGCN, reference_state: dict[str, torch.Tensor]
) -> None:
    assert sum(p.numel() for p in reference_model.parameters()) == 3_098_832
    assert sum(p.numel() for p in reference_model.edge_importance.parameters()) == 18_750
    own = reference_model.state_dict()
    assert list(own) == list(reference_state)  # same keys, same order
    for key, value in reference_state.items():
        assert own[key].shape == value.shape, key
        assert torch.equal(own[key], value), key


def test_adjacency_equals_reference(reference_state: dict[str, torch.Tensor]) -> None:
    graph_a = _load("graph_A.pt")
    fresh = STGCN(num_classes=60)
    assert torch.equal(fresh.A, graph_a)
    assert torch.equal(torch.from_numpy(build_adjacency("ntu-rgb+d", "spatial")), graph_a)
    assert torch.equal(reference_state["A"], graph_a)


def test_logits_and_pooled_features_300(reference_model: STGCN) -> None:
    with torch.no_grad():
        logits, features = reference_model.forward_with_features(_load("input_300.pt"))
    torch.testing.assert_close(logits, _load("logits_300.pt"), atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(features, _load("features_pooled_300.pt"), atol=ATOL, rtol=RTOL)
    # The head is a plain linear map of the pooled feature.
    torch.testing.assert_close(reference_model.classify(features), logits, atol=1e-6, rtol=0)


def test_logits_64_and_feature_map(reference_model: STGCN) -> None:
    x = _load("input_64.pt")
    with torch.no_grad():
        logits = reference_model(x)
        feature_map = reference_model.extract_feature_map(x)
        features = reference_model.extract_features(x)
    torch.testing.assert_close(logits, _load("logits_64.pt"), atol=ATOL, rtol=RTOL)
    expected_map = _load("features_64.pt")
    assert feature_map.shape == expected_map.shape == (2, 256, 16, 25, 2)
    torch.testing.assert_close(feature_map, expected_map, atol=ATOL, rtol=0)
    torch.testing.assert_close(
        features, expected_map.mean(dim=(2, 3)).mean(dim=-1), atol=ATOL, rtol=RTOL
    )


def test_float64_logits(reference_state: dict[str, torch.Tensor]) -> None:
    model = _model(reference_state).double()
    with torch.no_grad():
        logits = model(_load("input_64.pt").double())
    expected = _load("logits_float64.pt")["logits_64"]
    assert expected.dtype == torch.float64
    torch.testing.assert_close(logits, expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
def test_perturbed_outputs(perturbed_state: dict[str, torch.Tensor], channels_last: bool) -> None:
    model = _model(perturbed_state, channels_last=channels_last)
    expected = _load("perturbed_outputs.pt")
    with torch.no_grad():
        logits_300, features_300 = model.forward_with_features(_load("input_300.pt"))
        logits_64 = model(_load("input_64.pt"))
    torch.testing.assert_close(logits_300, expected["logits_300"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(features_300, expected["features_pooled_300"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(logits_64, expected["logits_64"], atol=ATOL, rtol=RTOL)


def test_perturbation_is_visible(reference_model: STGCN) -> None:
    # Guards the perturbed test: the base weights must not already produce the perturbed logits.
    with torch.no_grad():
        logits = reference_model(_load("input_64.pt"))
    assert (logits - _load("perturbed_outputs.pt")["logits_64"]).abs().max() > 1e-2


def test_batch_rows_are_independent(reference_model: STGCN) -> None:
    x = _load("input_64.pt")
    with torch.no_grad():
        both = reference_model(x)
        second = reference_model(x[1:])
    torch.testing.assert_close(second, both[1:], atol=1e-6, rtol=1e-5)


def test_bfs_graph_model_refuses_reference_checkpoint(
    reference_state: dict[str, torch.Tensor],
) -> None:
    model = STGCN(num_classes=60, reference_exact_graph=False)
    with pytest.raises(ValueError, match="reference_exact_graph=True"):
        model.load_reference_state_dict(reference_state)
