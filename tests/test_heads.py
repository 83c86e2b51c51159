"""Zero-shot heads: losses, the vectorised Relation Network, training guards, learning, files."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pose_zsl.models import heads
from pose_zsl.models.heads import (
    DeViSEConfig,
    RelationNetConfig,
    RelationNetwork,
    config_from_dict,
    default_config,
    hinge_rank_loss,
    infonce_loss,
    load_head,
    relation_mse_loss,
    relation_scores_reference,
    save_head,
    score,
)
from pose_zsl.training.head_trainer import train_head
from pose_zsl.zsl.metrics import zsl_metrics

# --------------------------------------------------------------------------------------------
# A small zero-shot problem: class embeddings share a 5-D latent space, features are a fixed
# random linear map of the class embedding (then noise). Seen classes span the latent space, so a
# head that learns the map transfers to the held-out classes; one that does not stays at chance.
# --------------------------------------------------------------------------------------------

NUM_CLASSES = 20
NUM_UNSEEN = 5
CHANCE = 100.0 / NUM_UNSEEN


def zero_shot_problem(seed: int = 0, per_class: int = 24, noise: float = 0.3) -> dict:
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(NUM_CLASSES, 5)) @ rng.normal(size=(5, 32))
    visual_map = rng.normal(size=(32, 256))
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    features = embeddings[labels] @ visual_map
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    features += noise * rng.normal(size=features.shape) / np.sqrt(256)
    class_ids = np.arange(NUM_CLASSES)
    unseen = np.sort(rng.choice(NUM_CLASSES, NUM_UNSEEN, replace=False))
    seen = np.setdiff1d(class_ids, unseen)
    is_test = np.tile(np.arange(per_class) < per_class // 3, NUM_CLASSES)
    train = ~is_test & np.isin(labels, seen)
    return {
        "features": features.astype(np.float32),
        "labels": labels,
        "embeddings": embeddings.astype(np.float32),
        "class_ids": class_ids,
        "seen": seen,
        "unseen": unseen,
        "train": train,
        "test": is_test,
    }


def zsl_top1(model: heads.ZeroShotHead, problem: dict, embeddings: np.ndarray) -> float:
    test = problem["test"]
    scores = score(model, problem["features"][test], embeddings)
    return zsl_metrics(scores, problem["labels"][test], problem["class_ids"], problem["unseen"])[
        "top1"
    ]


def train_on(problem: dict, kind: str, config, embeddings: np.ndarray | None = None, seed=0):
    train = problem["train"]
    return train_head(
        kind,
        problem["features"][train],
        problem["labels"][train],
        problem["embeddings"] if embeddings is None else embeddings,
        problem["class_ids"],
        seen_class_ids=problem["seen"],
        config=config,
        seed=seed,
    )


@pytest.fixture(scope="module")
def problem() -> dict:
    return zero_shot_problem()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Tiny kernels gain nothing from threads, and on a shared host OpenMP barriers stall on
    # descheduled threads; restore the setting for other test modules.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------------
# Losses on hand-computed cases
# --------------------------------------------------------------------------------------------


def test_hinge_rank_loss_hand_computed():
    scores = torch.tensor([[0.5, 0.45, 0.2, 0.6], [0.0, 1.0, 0.0, 0.95]], dtype=torch.float64)
    target = torch.tensor([0, 1])
    # row 0: wrong classes give max(0, 0.1 - 0.5 + s_j) = 0.05, 0, 0.2 -> 0.25
    # row 1: 0, 0, max(0, 0.1 - 1 + 0.95) = 0.05 -> 0.05; mean over the batch: 0.15
    loss = hinge_rank_loss(scores, target, margin=0.1)
    assert loss.item() == pytest.approx(0.15, abs=1e-12)


def test_hinge_rank_loss_ignores_true_class_and_is_zero_beyond_margin():
    scores = torch.tensor([[1.0, 0.85, 0.89]], dtype=torch.float64)
    assert hinge_rank_loss(scores, torch.tensor([0]), margin=0.1).item() == 0.0
    # margin 0.2: 0.05 + 0.09; the true class never contributes its own margin.
    assert hinge_rank_loss(scores, torch.tensor([0]), margin=0.2).item() == pytest.approx(0.14)


def test_relation_mse_loss_hand_computed():
    relations = torch.tensor([[0.9, 0.2], [0.4, 0.5]], dtype=torch.float64)
    # squared errors against one-hot [[1, 0], [0, 1]]: 0.01, 0.04, 0.16, 0.25 -> mean 0.115
    loss = relation_mse_loss(relations, torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(0.115, abs=1e-12)


def test_infonce_loss_hand_computed():
    similarities = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    loss = infonce_loss(similarities, torch.tensor([0]), temperature=0.5)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2.0)), abs=1e-12)


# --------------------------------------------------------------------------------------------
# The vectorised Relation Network
# --------------------------------------------------------------------------------------------


def test_vectorised_relation_net_equals_pairwise_loop():
    torch.manual_seed(3)
    model = RelationNetwork(feature_dim=8, embedding_dim=5, attribute_hidden=16, relation_hidden=12)
    features = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    classes = torch.nn.functional.normalize(torch.randn(4, 5), dim=1)
    target = torch.tensor([0, 1, 2, 3, 0, 2])

    vectorised = model(features, classes)
    looped = relation_scores_reference(model, features, classes)
    assert vectorised.shape == (6, 4)
    torch.testing.assert_close(vectorised, looped, atol=1e-6, rtol=0)

    grads = []
    looped_again = relation_scores_reference(model, features, classes)
    for relations in (model(features, classes), looped_again):
        model.zero_grad()
        relation_mse_loss(relations, target).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=0)


def test_relation_scores_are_chunked_without_changing_them(monkeypatch):
    torch.manual_seed(0)
    model = RelationNetwork(feature_dim=8, embedding_dim=5, attribute_hidden=16, relation_hidden=12)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(37, 8)).astype(np.float32)
    classes = rng.normal(size=(4, 5)).astype(np.float32)
    whole = score(model, features, classes)
    monkeypatch.setattr(heads, "_SCORE_ELEMENTS", 4 * 12 * 5)  # 5 rows per block
    assert model.score_block_rows(4) == 5
    np.testing.assert_allclose(score(model, features, classes), whole, atol=1e-7)
    # score() gives the relation scores' log-odds (forward gives the sigmoid of the same sum);
    # float32 sigmoid then logit loses ~1e-7 relative, well inside 1e-5 at |log-odds| < 1.
    feats = torch.from_numpy(heads.l2_normalise("f", features))
    probabilities = model(feats, torch.from_numpy(heads.l2_normalise("c", classes)))
    np.testing.assert_allclose(torch.logit(probabilities).detach().numpy(), whole, atol=1e-5)
    assert (whole < 0).any() and (whole > 0).any()  # not squashed into (0, 1)


def test_devise_scores_are_dot_products_of_normalised_inputs():
    torch.manual_seed(0)
    model = heads.DeViSEHead(feature_dim=4, embedding_dim=3, bias=True)
    features = np.array([[3.0, 0.0, 4.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    classes = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, -5.0]], dtype=np.float32)
    unit_f = features / np.linalg.norm(features, axis=1, keepdims=True)
    unit_c = classes / np.linalg.norm(classes, axis=1, keepdims=True)
    weight = model.projection.weight.detach().numpy()
    bias = model.projection.bias.detach().numpy()
    expected = (unit_f @ weight.T + bias) @ unit_c.T
    np.testing.assert_allclose(score(model, features, classes), expected, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Zero-shot integrity and bad input
# --------------------------------------------------------------------------------------------


def test_training_refuses_unseen_class_samples(problem):
    test = problem["test"]  # holds unseen-class samples
    with pytest.raises(ValueError, match="leakage") as error:
        train_head(
            "devise",
            problem["features"][test],
            problem["labels"][test],
            problem["embeddings"],
            problem["class_ids"],
            seen_class_ids=problem["seen"],
            config=DeViSEConfig(epochs=1),
        )
    assert str(problem["unseen"].tolist()) in str(error.value)


@pytest.mark.parametrize("kind", ["devise", "relation_net", "infonce"])
def test_every_head_kind_has_the_leakage_guard(problem, kind):
    labels = problem["labels"][problem["train"]].copy()
    labels[0] = problem["unseen"][0]
    with pytest.raises(ValueError, match=rf"\[{problem['unseen'][0]}\]"):
        train_head(
            kind,
            problem["features"][problem["train"]],
            labels,
            problem["embeddings"],
            problem["class_ids"],
            seen_class_ids=problem["seen"],
            config=default_config(kind, "synthetic"),
        )


def _train_kwargs(problem: dict, **changes) -> dict:
    train = problem["train"]
    kwargs = {
        "kind": "devise",
        "features": problem["features"][train],
        "labels": problem["labels"][train],
        "class_embeddings": problem["embeddings"],
        "class_ids": problem["class_ids"],
        "seen_class_ids": problem["seen"],
        "config": DeViSEConfig(epochs=1),
    }
    kwargs.update(changes)
    return kwargs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: {
                "features": np.where(np.arange(256) == 3, np.nan, p["features"][p["train"]])
            },
            "non-finite",
        ),
        (
            lambda p: {"features": np.zeros((0, 256), np.float32), "labels": np.zeros(0, int)},
            "empty",
        ),
        (lambda p: {"labels": p["labels"][p["train"]][:-1]}, "entries, expected"),
        (lambda p: {"labels": p["labels"][p["train"]] + 0.5}, "integer class ids"),
        (lambda p: {"class_ids": p["class_ids"][:-1]}, "class_ids has 19 entries"),
        (lambda p: {"class_ids": np.r_[p["class_ids"][:-1], 0]}, "repeat"),
        (
            lambda p: {"class_embeddings": np.vstack([np.zeros((1, 32)), p["embeddings"][1:]])},
            "all-zero",
        ),
        (lambda p: {"seen_class_ids": np.r_[p["seen"], 99]}, "no row in class_embeddings"),
        (lambda p: {"kind": "knn"}, "unknown head kind"),
        (lambda p: {"config": RelationNetConfig()}, "needs a DeViSEConfig"),
        (lambda p: {"config": DeViSEConfig(epochs=0)}, "epochs/episodes must be >= 1"),
        (
            lambda p: {"device": "cuda:7"} if not torch.cuda.is_available() else {"kind": "x"},
            "not available|unknown head kind",
        ),
    ],
)
def test_bad_training_input_raises_specific_errors(problem, change, message):
    with pytest.raises(ValueError, match=message):
        train_head(**_train_kwargs(problem, **change(problem)))


def test_config_from_dict_overlays_and_rejects_unknown_keys():
    config = config_from_dict("relation_net", {"episodes": 10, "lr": 0.01}, preset="synthetic")
    assert isinstance(config, RelationNetConfig)
    assert (config.episodes, config.lr, config.relation_hidden) == (10, 0.01, 128)
    assert default_config("relation_net") == RelationNetConfig()
    with pytest.raises(ValueError, match="unknown devise head parameter"):
        config_from_dict("devise", {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="preset"):
        default_config("devise", "fast")  # type: ignore[arg-type]


def test_paper_preset():
    """The ``paper`` preset's schedules; what the paper environments resolve to (the preset
    and their parameters, through Kedro) is checked in ``test_environments``."""
    devise, relation = default_config("devise", "paper"), default_config("relation_net", "paper")
    assert (devise.epochs, devise.lr, devise.momentum, devise.batch_size, devise.margin) == (
        100,
        0.001,
        0.9,
        64,
        0.1,
    )
    assert (relation.episodes, relation.batch_size, relation.lr) == (400_000, 32, 1e-5)
    assert (relation.lr_step, relation.lr_gamma) == (200_000, 0.5)
    assert devise.negatives_include_unseen and relation.negatives_include_unseen


# --------------------------------------------------------------------------------------------
# Training behaviour
# --------------------------------------------------------------------------------------------


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ["devise", "relation_net"])
def test_training_is_deterministic_for_a_seed(problem, kind):
    config = replace(
        default_config(kind, "synthetic"),
        **({"episodes": 15} if kind == "relation_net" else {"epochs": 2}),
    )
    first, _ = train_on(problem, kind, config, seed=5)
    second, _ = train_on(problem, kind, config, seed=5)
    other, _ = train_on(problem, kind, config, seed=6)
    assert _same(_state(first), _state(second))
    assert not _same(_state(first), _state(other))


def test_unseen_label_embeddings_are_negatives_only_when_flagged(problem):
    shifted = problem["embeddings"].copy()
    shifted[problem["unseen"]] = np.random.default_rng(9).normal(size=(NUM_UNSEEN, 32))
    for include, expect_same in ((False, True), (True, False)):
        config = DeViSEConfig(epochs=2, lr=0.01, negatives_include_unseen=include)
        a, _ = train_on(problem, "devise", config)
        b, _ = train_on(problem, "devise", config, embeddings=shifted)
        assert _same(_state(a), _state(b)) is expect_same


def test_history_progress_callback_and_logging(problem, caplog):
    calls = []
    config = replace(default_config("relation_net", "synthetic"), episodes=20, log_every=10)
    with caplog.at_level(logging.INFO, logger="pose_zsl.training.head_trainer"):
        model, history = train_head(
            "relation_net",
            problem["features"][problem["train"]],
            problem["labels"][problem["train"]],
            problem["embeddings"],
            problem["class_ids"],
            seen_class_ids=problem["seen"],
            config=config,
            progress_callback=lambda step, total, loss: calls.append((step, total, loss)),
        )
    assert list(history.columns) == ["kind", "step", "step_unit", "loss", "lr"]
    assert history["step"].tolist() == [10, 20]
    assert set(history["step_unit"]) == {"episode"}
    assert [(s, t) for s, t, _ in calls] == [(10, 20), (20, 20)]
    assert np.isfinite(history["loss"]).all()
    assert "episode 20/20" in caplog.text
    assert model.config == config and not model.training
    np.testing.assert_array_equal(model.seen_class_ids, problem["seen"])


# --------------------------------------------------------------------------------------------
# The zero-shot property: heads transfer to held-out classes (and fail without semantics)
# --------------------------------------------------------------------------------------------


def test_devise_learns_zero_shot_and_fails_with_random_embeddings(problem):
    config = replace(default_config("devise", "synthetic"), epochs=15)
    model, history = train_on(problem, "devise", config)
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert zsl_top1(model, problem, problem["embeddings"]) >= 3 * CHANCE

    # Control: label embeddings unrelated to the features carry nothing to unseen classes.
    random_embeddings = np.random.default_rng(1).normal(size=problem["embeddings"].shape)
    control, _ = train_on(problem, "devise", config, embeddings=random_embeddings)
    assert zsl_top1(control, problem, random_embeddings.astype(np.float32)) < 2 * CHANCE


def test_relation_net_learns_zero_shot(problem):
    config = replace(default_config("relation_net", "synthetic"), episodes=400)
    model, history = train_on(problem, "relation_net", config)
    assert history["loss"].iloc[-1] < 0.5 * history["loss"].iloc[0]
    assert zsl_top1(model, problem, problem["embeddings"]) >= 3 * CHANCE


def test_infonce_learns_zero_shot(problem):
    config = replace(default_config("infonce", "synthetic"), epochs=10)
    model, _ = train_on(problem, "infonce", config)
    assert zsl_top1(model, problem, problem["embeddings"]) >= 3 * CHANCE


# --------------------------------------------------------------------------------------------
# Projection bias (paper eq. 1 scores t M v: no bias)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["devise", "infonce"])
def test_projection_bias_is_off_in_both_presets_and_configurable(problem, kind):
    assert default_config(kind, "paper").bias is False
    assert default_config(kind, "synthetic").bias is False
    # Uncentred: shifting by the training mean would break the oddness checked below.
    config = replace(default_config(kind, "synthetic"), epochs=2, center=False)
    plain, _ = train_on(problem, kind, config)
    assert plain.projection.bias is None
    assert plain.dims()["bias"] is False
    # Without a bias both heads are odd in the feature: score(-f) = -score(f). Negating the
    # input negates every product of the projection's sums exactly in IEEE arithmetic (same
    # kernel, same order), so the only slack is the L2-normalisation's rounding of -f vs f.
    features, embeddings = problem["features"][:12], problem["embeddings"]
    np.testing.assert_allclose(
        score(plain, -features, embeddings), -score(plain, features, embeddings), atol=1e-6
    )
    biased, _ = train_on(problem, kind, replace(config, bias=True))
    assert biased.projection.bias is not None and biased.dims()["bias"] is True
    offset = score(biased, -features, embeddings) + score(biased, features, embeddings)
    assert np.abs(offset).max() > 1e-3  # the bias's per-class offset t.b, twice


def test_projection_bias_must_be_a_boolean():
    with pytest.raises(ValueError, match="bias must be true or false"):
        config_from_dict("devise", {"bias": "no"})


@pytest.mark.parametrize("kind", ["devise", "infonce"])
def test_head_files_written_before_the_bias_field_load_with_their_bias(problem, kind, tmp_path):
    """Older files have no ``bias`` in their config or dims; their projection had a bias."""
    config = replace(default_config(kind, "synthetic"), epochs=2, bias=True)
    model, _ = train_on(problem, kind, config)
    payload = heads.head_artifact(model)
    del payload["config"]["bias"], payload["dims"]["bias"]
    path = tmp_path / "old.pt"
    torch.save(payload, path)
    loaded = load_head(path)
    assert loaded.projection.bias is not None and loaded.config.bias is True
    features, embeddings = problem["features"][:10], problem["embeddings"]
    np.testing.assert_array_equal(
        score(loaded, features, embeddings), score(model, features, embeddings)
    )


# --------------------------------------------------------------------------------------------
# Feature centring (hubness: non-negative features share one dominant direction)
# --------------------------------------------------------------------------------------------


def _hub_case(center: bool) -> tuple[heads.DeViSEHead, np.ndarray, np.ndarray, np.ndarray]:
    """Class k's feature is ``5 e_0 + e_(k+1)``: a large shared non-negative direction plus one
    class-specific one. The projection maps the shared direction onto class 0's embedding, so
    without centring class 0 scores 5 (+1) for every sample against 1 for the true class."""
    features = np.hstack([np.full((3, 1), 5.0), np.eye(3)]).astype(np.float32)
    labels = np.arange(3)
    embeddings = np.eye(3, dtype=np.float32)
    model = heads.DeViSEHead(feature_dim=4, embedding_dim=3, center=center)
    with torch.no_grad():
        model.projection.weight.copy_(torch.tensor(np.hstack([np.eye(3)[:, :1], np.eye(3)])))
        if center:
            unit = heads.l2_normalise("features", features)
            model.feature_mean.copy_(torch.from_numpy(unit.mean(axis=0)))
    return model, features, labels, embeddings


def test_centring_removes_a_shared_offset_that_wins_every_sample():
    plain, features, labels, embeddings = _hub_case(center=False)
    assert (score(plain, features, embeddings).argmax(axis=1) == 0).all()
    centred, *_ = _hub_case(center=True)
    np.testing.assert_array_equal(score(centred, features, embeddings).argmax(axis=1), labels)


@pytest.mark.parametrize("kind", ["devise", "infonce"])
def test_centring_mean_comes_from_the_training_features_only(problem, kind):
    config = replace(default_config(kind, "synthetic"), epochs=2, center=True)
    model, _ = train_on(problem, kind, config)
    train = problem["train"]
    unit = problem["features"] / np.linalg.norm(problem["features"], axis=1, keepdims=True)
    expected = unit[train].mean(axis=0)
    # Both are means of the same float32 unit vectors (float64 accumulation in the head): they
    # differ only by the final rounding to float32, a few ulps of values of order 0.1.
    np.testing.assert_allclose(model.feature_mean.numpy(), expected, rtol=0, atol=1e-6)
    everything = unit.mean(axis=0)  # adds seen-class test and unseen-class samples
    assert np.abs(everything - expected).max() > 1e-3
    # Scoring applies the stored mean: a head without it scores differently.
    features, embeddings = problem["features"][:8], problem["embeddings"]
    shifted = score(model, features, embeddings)
    with torch.no_grad():
        model.feature_mean.zero_()
    assert np.abs(score(model, features, embeddings) - shifted).max() > 1e-3


def test_centring_presets_and_validation():
    assert default_config("devise", "synthetic").center is True
    assert default_config("infonce", "synthetic").center is True
    assert default_config("devise", "paper").center is False
    assert default_config("infonce", "paper").center is False
    with pytest.raises(ValueError, match="center must be true or false"):
        config_from_dict("infonce", {"center": 1})


@pytest.mark.parametrize("kind", ["devise", "infonce"])
def test_centred_heads_round_trip_and_older_files_load_uncentred(problem, kind, tmp_path):
    features, embeddings = problem["features"][:10], problem["embeddings"]
    config = replace(default_config(kind, "synthetic"), epochs=2, center=True)
    centred, _ = train_on(problem, kind, config)
    save_head(centred, tmp_path / "new.pt")
    loaded = load_head(tmp_path / "new.pt")
    assert loaded.dims()["center"] is True and loaded.config.center is True
    np.testing.assert_array_equal(loaded.feature_mean.numpy(), centred.feature_mean.numpy())
    np.testing.assert_array_equal(
        score(loaded, features, embeddings), score(centred, features, embeddings)
    )
    # Files written before the field have no "center" and no stored mean: they never centred.
    plain, _ = train_on(problem, kind, replace(config, center=False))
    payload = heads.head_artifact(plain)
    del payload["config"]["center"], payload["dims"]["center"]
    torch.save(payload, tmp_path / "old.pt")
    old = load_head(tmp_path / "old.pt")
    assert old.config.center is False and not hasattr(old, "feature_mean")
    np.testing.assert_array_equal(
        score(old, features, embeddings), score(plain, features, embeddings)
    )


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(problem, tmp_path: Path):
    config = replace(default_config("relation_net", "synthetic"), episodes=5)
    model, _ = train_on(problem, "relation_net", config)
    path = tmp_path / "heads" / "rn.pt"
    save_head(model, path)
    payload = torch.load(path, weights_only=True)
    assert payload["kind"] == "relation_net" and payload["dims"]["relation_hidden"] == 128

    loaded = load_head(path)
    assert isinstance(loaded, RelationNetwork)
    assert loaded.config == config
    np.testing.assert_array_equal(loaded.seen_class_ids, problem["seen"])
    features = problem["features"][:10]
    embeddings = problem["embeddings"]
    np.testing.assert_array_equal(
        score(loaded, features, embeddings), score(model, features, embeddings)
    )


def test_load_head_rejects_bad_files(problem, tmp_path: Path):
    model, _ = train_on(problem, "devise", DeViSEConfig(epochs=1))
    good = tmp_path / "good.pt"
    save_head(model, good)

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt.pt: not a readable"):
        load_head(corrupt)

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a zero-shot head file"):
        load_head(foreign)

    payload = torch.load(good, weights_only=True)
    payload["dims"]["embedding_dim"] = 31
    mismatched = tmp_path / "mismatched.pt"
    torch.save(payload, mismatched)
    with pytest.raises(ValueError, match="incompatible with the devise architecture"):
        load_head(mismatched)

    payload["version"] = 99
    torch.save(payload, mismatched)
    with pytest.raises(ValueError, match="version 99"):
        load_head(mismatched)

    with pytest.raises(ValueError, match="no such head file"):
        load_head(tmp_path / "missing.pt")


# -- hubness correction (hub_k) ---------------------------------------------------------------


def _hub_problem() -> tuple[heads.DeViSEHead, np.ndarray, np.ndarray, np.ndarray]:
    """An identity DeViSE head whose features all share a dominant direction e0, as non-negative
    ST-GCN features do, and class 0 lies on it: without correction class 0 wins every row."""
    config = replace(DeViSEConfig(), hub_k=5)
    rng = np.random.default_rng(0)
    reference = np.abs(rng.normal(0.0, 0.1, size=(40, 4))) + np.array([1.0, 0, 0, 0])
    model = heads.build_head("devise", 4, 4, config, reference_rows=len(reference))
    with torch.no_grad():
        model.projection.weight.copy_(torch.eye(4))
        model.reference_features.copy_(torch.from_numpy(reference.astype(np.float32)))
    model.config = config
    classes = np.eye(4, dtype=np.float32)[:3]  # class 0 = the dominant direction (a hub)
    truth = np.repeat([1, 2], 10)
    test = np.full((20, 4), 0.05, dtype=np.float32)
    test[:, 0] = 1.0
    test[np.arange(20), truth] = 0.8  # each test row leans to its class, less than to e0
    return model, classes, test, truth


def test_hub_correction_stops_a_hub_class_taking_every_prediction():
    model, classes, test, truth = _hub_problem()
    corrected = score(model, test, classes)
    model.hub_k = 0
    plain = score(model, test, classes)
    assert (plain.argmax(1) == 0).all()  # the hub takes every row
    np.testing.assert_array_equal(corrected.argmax(1), truth)
    # the penalty is a per-class constant: the mean of the class's 5 best reference scores
    expected = -np.sort(-score(model, model.reference_features.numpy(), classes), axis=0)[:5]
    np.testing.assert_allclose(
        plain - corrected, np.broadcast_to(expected.mean(0), plain.shape), atol=1e-6
    )  # float32 sums of 4 unit-scale products


def test_hub_corrected_scores_of_a_recording_do_not_depend_on_the_others():
    model, classes, test, _ = _hub_problem()
    together = score(model, test, classes)
    alone = np.concatenate([score(model, test[i : i + 1], classes) for i in range(len(test))])
    np.testing.assert_array_equal(alone, together)


def test_hub_correction_survives_the_artefact_and_old_files_still_load():
    model, classes, test, _ = _hub_problem()
    rebuilt = heads.head_from_artifact(heads.head_artifact(model))
    np.testing.assert_array_equal(score(rebuilt, test, classes), score(model, test, classes))
    legacy_model = heads.build_head("devise", 4, 4, DeViSEConfig())
    legacy_model.config = DeViSEConfig()
    old = heads.head_artifact(legacy_model)
    for key in ("hub_k", "reference_rows"):
        del old["dims"][key]  # a file written before hub_k existed
        old["config"].pop(key, None)
    assert heads.head_from_artifact(old).hub_k == 0


@pytest.mark.parametrize("kind", ["devise", "relation_net", "infonce"])
def test_training_keeps_its_own_features_as_the_hub_reference(problem, kind, monkeypatch):
    train = problem["train"]
    features, labels = problem["features"][train], problem["labels"][train]
    config = replace(config_from_dict(kind, preset="synthetic"), hub_k=3)
    if kind == "relation_net":
        config = replace(config, episodes=20)

    def trained() -> heads.ZeroShotHead:
        return train_head(
            kind,
            features,
            labels,
            problem["embeddings"],
            problem["class_ids"],
            seen_class_ids=problem["seen"],
            config=config,
            seed=1,
        )[0]

    np.testing.assert_array_equal(trained().reference_features.numpy(), features)
    monkeypatch.setattr("pose_zsl.training.head_trainer.HUB_REFERENCE_ROWS", 7)
    model = trained()
    kept = model.reference_features.numpy()
    rows = [int(np.flatnonzero((features == row).all(1))[0]) for row in kept]
    assert len(rows) == 7 and rows == sorted(rows)  # a sample of its own rows, in order


@pytest.mark.parametrize("value", [-1, 1.5, True, "yes"])
def test_bad_hub_k_names_the_setting(value):
    with pytest.raises(ValueError, match="hub_k must be an integer >= 0"):
        config_from_dict("devise", {"hub_k": value})


def test_a_calibration_constant_corrects_far_recordings_as_much_as_near_ones():
    # A recording unlike the training data gets every relation score lowered together (here: the
    # output bias lowered by 12, all odds divided by e^12). Calibrated stacking on the head's
    # scores must rank its candidates as before; on the sigmoid scale the same constant would
    # push every seen candidate below every unseen one.
    from pose_zsl.zsl.metrics import calibrated_stacking

    torch.manual_seed(3)
    model = RelationNetwork(feature_dim=8, embedding_dim=5, attribute_hidden=16, relation_hidden=12)
    rng = np.random.default_rng(3)
    features = rng.normal(size=(30, 8)).astype(np.float32)
    classes = rng.normal(size=(6, 5)).astype(np.float32)
    ids, seen = np.arange(6), [0, 1, 2]

    def ranking(scores: np.ndarray) -> np.ndarray:
        return np.argsort(-calibrated_stacking(scores, ids, seen, gamma), axis=1, kind="stable")

    near = score(model, features, classes)
    gamma = 0.25 * float(np.median(np.ptp(near, axis=1)))  # a constant that reorders some rows
    with torch.no_grad():
        model.relation_fc2.bias -= 12.0
    far = score(model, features, classes)
    np.testing.assert_allclose(near - far, 12.0, rtol=0, atol=1e-4)  # float32 at |logit| ~ 12
    np.testing.assert_array_equal(ranking(far), ranking(near))
    assert (ranking(near)[:, 0] < 3).any()  # seen candidates still win some rows
    sigmoid = 1 / (1 + np.exp(-far.astype(np.float64)))
    assert not np.array_equal(ranking(sigmoid), ranking(near))
    assert (ranking(sigmoid)[:, :3] >= 3).all()  # the old scale: unseen candidates first, always
