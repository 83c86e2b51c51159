"""``zsl_training.repeat_backbone``: with it on, repeat k of every variant stands on an ST-GCN
(and a calibration ST-GCN) of its own, trained with ``stgcn_training.seed + k`` on the same
samples and recipe; with it off (the default) every repeat shares the split's one ST-GCN.

The node-level tests train toy ST-GCNs for one epoch; the end-to-end test runs the tiny default
pipeline (one split) with the option on and compares it with the shared tiny run (option off).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY_ENV, TinyRun, make_tiny_project, run_tiny_default_pipeline
from test_calibration import (
    LEAK_MESSAGES,
    TRAIN_SEEN,
    base_parameters,
    leak_rows,
    partition,  # noqa: F401 (a fixture)
    split_table,
    stgcn_parameters,
    toy,  # noqa: F401 (a fixture)
)

from pose_zsl.pipelines.feature_extraction import nodes as feature_nodes
from pose_zsl.pipelines.stgcn_training import nodes as stgcn_nodes
from pose_zsl.pipelines.zsl_training import nodes as zsl_nodes
from pose_zsl.zsl import repeats as repeat_rules

PROJECT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def weights(artefact: dict) -> torch.Tensor:
    return torch.cat([v.flatten().double() for v in artefact["state_dict"].values()])


# --------------------------------------------------------------------------------------------
# the parameter
# --------------------------------------------------------------------------------------------


def test_the_option_lives_in_zsl_training_and_is_off_by_default() -> None:
    from test_environments import environments, parameters

    for env in environments():
        params = parameters(env)
        assert params["zsl_training"]["repeat_backbone"] is False, env
        assert "repeat_backbone" not in params["stgcn_training"], env


def test_an_environment_turns_it_on_through_kedros_config_loader(tmp_path) -> None:
    from pose_zsl.environments import config_loader

    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    (conf / "varied").mkdir()
    (conf / "varied" / "parameters.yml").write_text(
        yaml.safe_dump({"zsl_training": {"repeats": 3, "repeat_backbone": True}})
    )
    resolved = config_loader("varied", tmp_path)["parameters"]["zsl_training"]
    assert resolved["repeat_backbone"] is True and resolved["repeats"] == 3
    assert resolved["seed"] == 0  # the rest of zsl_training is base's (soft merge)
    assert repeat_rules.head_backbones(resolved) == [0, 1, 2]
    assert repeat_rules.backbone_repeats(resolved["repeats"], resolved["repeat_backbone"]) == [1, 2]
    default = config_loader(None, tmp_path)["parameters"]["zsl_training"]
    assert repeat_rules.head_backbones(default) == [0] * default["repeats"]


@pytest.mark.parametrize("bad", ["yes", "true", 1, 0, None])
def test_a_bad_value_is_an_error_naming_the_parameter(toy, bad, tmp_path) -> None:  # noqa: F811
    message = r"^zsl_training\.repeat_backbone must be true or false .* got " + repr(bad)
    with pytest.raises(ValueError, match=message):
        repeat_rules.check_repeat_backbone(bad)
    samples, sequences = toy
    with pytest.raises(ValueError, match=r"^zsl_training\.repeat_backbone must be true or false"):
        stgcn_nodes.train_repeat_stgcns(
            samples, sequences, split_table(), stgcn_parameters(tmp_path), 2, bad
        )
    assert not any(tmp_path.iterdir())  # refused before any training
    with pytest.raises(ValueError, match=r"^zsl_training\.repeat_backbone must be true or false"):
        repeat_rules.head_backbones({"repeats": 2, "repeat_backbone": bad})


# --------------------------------------------------------------------------------------------
# the repeat backbones (toy skeletons, one epoch)
# --------------------------------------------------------------------------------------------


def record_trainer(patch: pytest.MonkeyPatch) -> list[tuple[pd.DataFrame, list[int], object]]:
    """Record what every ST-GCN training is given (samples, classes, config)."""
    from pose_zsl.training import stgcn_trainer

    given: list[tuple[pd.DataFrame, list[int], object]] = []
    honest = stgcn_trainer.train_stgcn

    def recording(frame, sequences, seen, config, **kwargs):
        given.append((frame.copy(), list(seen), config))
        return honest(frame, sequences, seen, config, **kwargs)

    patch.setattr(stgcn_trainer, "train_stgcn", recording)
    return given


@pytest.fixture(scope="module")
def backbones(toy, partition, tmp_path_factory, one_torch_thread) -> dict:  # noqa: F811
    """The toy split's own ST-GCN and calibration ST-GCN, their repeats (3 repeats, option on)
    and what the trainer was given for each."""
    samples, sequences = toy
    root = tmp_path_factory.mktemp("checkpoints")
    params = stgcn_parameters(root)
    with pytest.MonkeyPatch.context() as patch:
        given = record_trainer(patch)
        main, _ = stgcn_nodes.train_stgcn_on_seen_classes(samples, sequences, split_table(), params)
        calibration, _ = stgcn_nodes.train_calibration_stgcn(
            samples, sequences, split_table(), partition, params
        )
        repeats, history = stgcn_nodes.train_repeat_stgcns(
            samples, sequences, split_table(), params, 3, True
        )
        calibration_repeats, calibration_history = stgcn_nodes.train_repeat_calibration_stgcns(
            samples, sequences, split_table(), partition, params, 3, True
        )
    return {
        "params": params,
        "root": root,
        "given": given,  # main, calibration, repeat 1, repeat 2, calibration 1, calibration 2
        "main": main,
        "calibration": calibration,
        "repeats": repeats,
        "history": history,
        "calibration_repeats": calibration_repeats,
        "calibration_history": calibration_history,
    }


def test_each_repeat_trains_its_own_backbone_with_seed_plus_k(backbones) -> None:
    seed = backbones["params"]["seed"]
    main, repeats = backbones["main"], backbones["repeats"]
    assert [r["meta"]["repeat"] for r in repeats] == [1, 2]
    assert [r["meta"]["config"]["seed"] for r in repeats] == [seed + 1, seed + 2]
    models = [main, *repeats]
    for i in range(len(models)):
        for j in range(i + 1, len(models)):
            assert not torch.equal(weights(models[i]), weights(models[j])), (i, j)
    history = backbones["history"]
    assert list(history.columns[:2]) == ["repeat", "backbone_seed"]
    assert history.groupby("repeat")["backbone_seed"].unique().to_dict() == {
        1: [seed + 1],
        2: [seed + 2],
    }


def test_repeat_backbones_have_the_split_recipe_and_samples(backbones, partition) -> None:  # noqa: F811
    """Same training samples and classes as repeat 0's, same config but the seed."""
    main, calibration, *rest = backbones["given"]
    repeats, calibration_repeats = rest[:2], rest[2:]
    fit = sorted(partition.loc[partition["role"] == "fit", "sample_id"])
    for k, (frame, seen, config) in enumerate(repeats, start=1):
        assert sorted(frame["sample_id"]) == sorted(main[0]["sample_id"]) and seen == main[1]
        assert config.to_dict() == {**main[2].to_dict(), "seed": main[2].seed + k}
    for k, (frame, seen, config) in enumerate(calibration_repeats, start=1):
        assert sorted(frame["sample_id"]) == fit and seen == TRAIN_SEEN == calibration[1]
        assert config.to_dict() == {**calibration[2].to_dict(), "seed": calibration[2].seed + k}
    assert [r["meta"]["class_ids"] for r in backbones["calibration_repeats"]] == [TRAIN_SEEN] * 2


def test_repeat_k_is_the_backbone_its_seed_trains_alone(backbones, toy, tmp_path) -> None:  # noqa: F811
    """Exactly the split's own ST-GCN trained with stgcn_training.seed + k (CPU training is
    deterministic for a seed)."""
    samples, sequences = toy
    params = {**stgcn_parameters(tmp_path), "seed": backbones["params"]["seed"] + 2}
    alone, _ = stgcn_nodes.train_stgcn_on_seen_classes(samples, sequences, split_table(), params)
    assert torch.equal(weights(alone), weights(backbones["repeats"][1]))


def test_every_seed_has_its_own_checkpoint_folder(backbones) -> None:
    seed = backbones["params"]["seed"]
    folders = sorted(p.name for p in backbones["root"].iterdir())
    assert folders == sorted(
        ["toy", "toy_calibration"]
        + [f"toy_seed{seed + k}" for k in (1, 2)]
        + [f"toy_calibration_seed{seed + k}" for k in (1, 2)]
    )


def test_a_repeat_never_resumes_another_seeds_checkpoint(backbones, toy, tmp_path, caplog) -> None:  # noqa: F811
    """Repeat 1's folder holding seed 0's checkpoint (a copy, as a mix-up would leave it): the
    checkpoint identity (the config includes the seed) refuses it and repeat 1 trains afresh."""
    samples, sequences = toy
    seed = backbones["params"]["seed"]
    shutil.copytree(backbones["root"] / "toy", tmp_path / f"toy_seed{seed + 1}")
    with caplog.at_level(logging.WARNING):
        [repeat], _ = stgcn_nodes.train_repeat_stgcns(
            samples, sequences, split_table(), stgcn_parameters(tmp_path), 2, True
        )
    assert any(
        "incompatible" in r.getMessage()
        and f"seed: checkpoint {seed} != now {seed + 1}" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    assert torch.equal(weights(repeat), weights(backbones["repeats"][0]))
    assert not torch.equal(weights(repeat), weights(backbones["main"]))


def test_the_option_off_trains_no_backbone(toy, partition, tmp_path, monkeypatch) -> None:  # noqa: F811
    samples, sequences = toy
    given = record_trainer(monkeypatch)
    params = stgcn_parameters(tmp_path)
    for repeats in (1, 5):
        models, history = stgcn_nodes.train_repeat_stgcns(
            samples, sequences, split_table(), params, repeats, False
        )
        assert models == [] and history.empty and "backbone_seed" in history
        models, history = stgcn_nodes.train_repeat_calibration_stgcns(
            samples, sequences, split_table(), partition, params, repeats, False
        )
        assert models == [] and history.empty
    # on with one repeat: no further repeat, so nothing either
    assert (
        stgcn_nodes.train_repeat_stgcns(samples, sequences, split_table(), params, 1, True)[0] == []
    )
    assert given == [] and not any(tmp_path.iterdir())


@pytest.mark.parametrize("leak", sorted(LEAK_MESSAGES))
def test_repeat_calibration_backbones_keep_the_leakage_guard(
    toy,  # noqa: F811
    partition,  # noqa: F811
    tmp_path,
    monkeypatch,
    leak,
) -> None:
    samples, sequences = toy
    honest = stgcn_nodes.calibration_fit_samples

    def leaky(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([honest(frame, table), leak_rows(frame, table, leak)])

    monkeypatch.setattr(stgcn_nodes, "calibration_fit_samples", leaky)
    with pytest.raises(ValueError, match=LEAK_MESSAGES[leak]):
        stgcn_nodes.train_repeat_calibration_stgcns(
            samples, sequences, split_table(), partition, stgcn_parameters(tmp_path), 2, True
        )
    assert not any(tmp_path.iterdir())  # refused before any training step


def test_repeat_features_come_from_each_repeats_backbone(backbones, toy, partition) -> None:  # noqa: F811
    samples, sequences = toy
    params = {**base_parameters("feature_extraction"), "device": "cpu"}
    seed = backbones["params"]["seed"]
    table = feature_nodes.extract_repeat_features(
        backbones["repeats"], samples, sequences, split_table(), params
    )
    calibration = feature_nodes.extract_repeat_calibration_features(
        backbones["calibration_repeats"], samples, sequences, split_table(), partition, params
    )
    for k, model in enumerate(backbones["repeats"], start=1):
        rows = repeat_rules.backbone_rows(pd.DataFrame(), table, k, "repeat_features")
        alone = feature_nodes.extract_split_features(
            model, samples, sequences, split_table(), params
        )
        pd.testing.assert_frame_equal(rows, alone)
        assert repeat_rules.backbone_seed_of(table, k, seed) == seed + k
    for k, model in enumerate(backbones["calibration_repeats"], start=1):
        rows = repeat_rules.backbone_rows(pd.DataFrame(), calibration, k, "calibration")
        assert sorted(rows["sample_id"]) == sorted(partition["sample_id"])
        alone = feature_nodes.extract_calibration_features(
            model, samples, sequences, split_table(), partition, params
        )
        pd.testing.assert_frame_equal(rows, alone)
    empty = feature_nodes.extract_repeat_features([], samples, sequences, split_table(), params)
    assert empty.empty and {"feature", "repeat", "backbone_seed"} <= set(empty.columns)
    with pytest.raises(ValueError, match="repeat_features has no rows of repeat 3"):
        repeat_rules.backbone_rows(pd.DataFrame(), table, 3, "repeat_features")


# --------------------------------------------------------------------------------------------
# end to end: the tiny default pipeline with the option on
# --------------------------------------------------------------------------------------------

METRICS = "data/08_reporting/metrics.parquet"


@pytest.fixture(scope="module")
def tiny_on(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """The tiny default pipeline, one split (``nearest``), ``repeats`` 2 with
    ``repeat_backbone: true``; otherwise the shared tiny run's settings."""
    from test_pipelines import TINY_PARAMETERS

    root = tmp_path_factory.mktemp("repeat_backbone")
    project = make_tiny_project(root)
    parameters = {
        **TINY_PARAMETERS,
        "split_selection": {"splits": ["nearest"]},
        "zsl_training": {**TINY_PARAMETERS["zsl_training"], "repeat_backbone": True},
    }
    (project / "conf" / TINY_ENV / "parameters.yml").write_text(yaml.safe_dump(parameters))
    return run_tiny_default_pipeline(project, f"sqlite:///{root / 'mlflow.db'}")


def tiny_seeds() -> tuple[int, int]:
    """(head seed, ST-GCN seed) of the tiny runs."""
    from test_pipelines import TINY_PARAMETERS

    return TINY_PARAMETERS["zsl_training"]["seed"], base_parameters("stgcn_training")["seed"]


def _sorted(metrics: pd.DataFrame) -> pd.DataFrame:
    keys = ["slot", "head", "embedding", "seed", "protocol", "metric"]
    return metrics.sort_values(keys, kind="stable").reset_index(drop=True)


def test_end_to_end_backbones_differ_and_metrics_carry_their_seeds(tiny_on) -> None:
    head_seed, stgcn_seed = tiny_seeds()
    project = tiny_on.project
    main = torch.load(project / "data/06_models/stgcn_nearest.pt", weights_only=True)
    [repeat] = torch.load(project / "data/06_models/stgcn_nearest_repeats.pt", weights_only=True)
    assert repeat["meta"]["config"]["seed"] == stgcn_seed + 1
    assert not torch.equal(weights(main), weights(repeat))
    [calibration] = torch.load(
        project / "data/06_models/stgcn_nearest_calibration_repeats.pt", weights_only=True
    )
    assert calibration["meta"]["config"]["seed"] == stgcn_seed + 1
    metrics = pd.read_parquet(project / METRICS)
    assert set(metrics["backbone_seed"]) == {stgcn_seed, stgcn_seed + 1}
    heads = metrics[~metrics["head"].isin(["vanilla_stgcn", "stgcn"])]
    # head seed k stands on backbone seed k: the pairing never mixes
    assert set(zip(heads["seed"], heads["backbone_seed"], strict=True)) == {
        (head_seed, stgcn_seed),
        (head_seed + 1, stgcn_seed + 1),
    }
    baselines = metrics[metrics["head"] == "vanilla_stgcn"]
    assert (baselines["seed"] == baselines["backbone_seed"]).all()
    assert set(baselines["seed"]) == {stgcn_seed, stgcn_seed + 1}
    from pose_zsl.reporting import mlflow_metric_values

    keys = mlflow_metric_values(metrics)
    assert len(keys) == len(metrics)  # one MLflow key per row: none overwritten
    assert f"nearest.vanilla_stgcn.none.seed{stgcn_seed + 1}.zsl.top1" in keys
    zsl = (project / "data/08_reporting/zsl_top1.md").read_text()
    assert "the ± includes the backbone's seed" in zsl
    assert f"ST-GCN seeds {stgcn_seed}, {stgcn_seed + 1}" in zsl


def test_end_to_end_head_of_repeat_1_learns_and_is_scored_on_backbone_1(tiny_on) -> None:
    from pose_zsl.models.heads import head_from_artifact, score
    from pose_zsl.zsl.metrics import metric_rows
    from pose_zsl.zsl.tables import class_embeddings, feature_matrix, seen_class_ids

    head_seed, stgcn_seed = tiny_seeds()
    data = tiny_on.project / "data"
    features = pd.read_parquet(data / "04_feature/features_nearest.parquet")
    repeat_features = pd.read_parquet(data / "04_feature/repeat_features_nearest.parquet")
    own = repeat_rules.backbone_rows(features, repeat_features, 1, "repeat_features")
    assert not np.allclose(feature_matrix(own), feature_matrix(features))
    split_classes = pd.read_parquet(data / "05_model_input/split_classes_nearest.parquet")
    embeddings = pd.read_parquet(data / "04_feature/label_embeddings_learned.parquet")
    [repeat] = torch.load(
        data / "06_models/zsl_nearest_devise_learned_repeats.pt", weights_only=True
    )
    assert repeat["meta"]["backbone"] == 1 and repeat["meta"]["seed"] == head_seed + 1
    # trained on backbone 1's features: retraining there with its seed gives its weights
    from test_pipelines import TINY_PARAMETERS

    from pose_zsl.environments import config_loader

    params = {
        **config_loader(None)["parameters"]["zsl_training"],
        **TINY_PARAMETERS["zsl_training"],
        "repeats": 1,
        "seed": head_seed + 1,
    }
    alone, _, _ = zsl_nodes.train_variant("devise", own, embeddings, split_classes, params)
    assert torch.equal(weights(alone), weights(repeat))
    # scored on backbone 1's test features with its own calibration constant
    calibration = json.loads(
        (data / "07_model_output/calibration_nearest_devise_learned.json").read_text()
    )
    [entry] = calibration["repeat_calibrations"]
    test = own[own["protocol_split"] == "test"]
    vectors, class_ids = class_embeddings(embeddings)
    unseen = sorted(set(split_classes["action_id"]) - set(seen_class_ids(split_classes)))
    expected = pd.DataFrame(
        metric_rows(
            score(head_from_artifact(repeat), feature_matrix(test), vectors),
            test["action_id"].to_numpy(),
            class_ids,
            seen_class_ids(split_classes),
            unseen,
            calibration=entry["gamma"],
        )
    )
    metrics = pd.read_parquet(data / "08_reporting/metrics.parquet")
    chosen = metrics[
        (metrics["head"] == "devise")
        & (metrics["embedding"] == "learned")
        & (metrics["seed"] == head_seed + 1)
    ]
    assert set(chosen["backbone_seed"]) == {stgcn_seed + 1}
    got = chosen.set_index(["protocol", "metric"])["value"]
    for row in expected.itertuples():
        assert got[(row.protocol, row.metric)] == row.value, (row.protocol, row.metric)


def test_end_to_end_repeat_0_is_the_option_off_run(tiny_on, tiny_tracked_project) -> None:
    """Repeat 0 (the exported head on the split's own ST-GCN) is what the option-off run
    computes, to the bit; the off run stands every head on the one ST-GCN."""
    head_seed, stgcn_seed = tiny_seeds()
    on = pd.read_parquet(tiny_on.project / METRICS)
    off = pd.read_parquet(tiny_tracked_project.project / METRICS)
    assert set(off["backbone_seed"]) == {stgcn_seed}
    assert set(off["seed"]) == {stgcn_seed, head_seed, head_seed + 1}
    off = off[off["slot"] == "nearest"]
    first = on["seed"].isin([head_seed]) | (on["seed"] == stgcn_seed) & on["head"].isin(
        ["vanilla_stgcn", "stgcn"]
    )
    pd.testing.assert_frame_equal(
        _sorted(on[first]), _sorted(off[off["seed"] != head_seed + 1]), check_exact=True
    )
    # with the option off, repeat 1's rows differ from the option-on ones (other features)
    later_on = _sorted(on[on["seed"] == head_seed + 1])
    later_off = _sorted(off[off["seed"] == head_seed + 1])
    assert not later_on["value"].equals(later_off["value"])
    off_models = tiny_tracked_project.project / "data/06_models"
    assert torch.load(off_models / "stgcn_nearest_repeats.pt", weights_only=True) == []
    off_table = tiny_tracked_project.project / "data/04_feature/repeat_features_nearest.parquet"
    assert pd.read_parquet(off_table).empty
    zsl = (tiny_tracked_project.project / "data/08_reporting/zsl_top1.md").read_text()
    assert "the heads' training seeds alone" in zsl and "backbone's seed" not in zsl
