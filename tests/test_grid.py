"""The experiment grid each environment resolves to, and that its split list reaches every
stage: a real environment names its splits, and each one gets trained, evaluated and reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.framework.project import pipelines
from test_environments import parameters

from pose_zsl import grid
from pose_zsl.pipelines.evaluation.nodes import summarise_over_splits

MSR_SPLITS = tuple(f"msr_random_{k}" for k in range(1, 11))
UTK_SPLITS = tuple(f"random_{k}" for k in range(1, 11))


@pytest.fixture
def restore_grid():
    """Tests switch the process's grid; put the default one back and drop built pipelines."""
    yield
    grid.use_parameters(parameters("local"))
    pipelines.configure(getattr(pipelines, "_pipelines_module", None))


@pytest.mark.parametrize(
    ("env", "splits", "embeddings"),
    [
        ("local", ("nearest", "random", "furthest"), ("learned", "random")),
        ("msr_action3d", MSR_SPLITS, ("learned", "learned_desc", "random")),
        ("utkinect", UTK_SPLITS, ("learned", "learned_desc", "random")),
    ],
)
def test_each_environment_resolves_its_own_grid(env, splits, embeddings):
    # the environment's list replaces the base one (a list is not merged key by key)
    resolved = grid.grid_from_parameters(parameters(env))
    assert resolved.splits == splits
    assert resolved.embeddings == embeddings


def test_the_split_list_of_a_real_environment_reaches_evaluation(restore_grid):
    from kedro.framework.project import configure_project

    configure_project("pose_zsl")
    assert grid.use_parameters(parameters("msr_action3d"))
    pipelines.configure(getattr(pipelines, "_pipelines_module", None))
    default = pipelines["__default__"]
    collect = next(n for n in default.nodes if n.name == "collect_metrics")
    for split in MSR_SPLITS:
        assert f"{split}.features" in collect.inputs
        assert f"{split}.split_classes" in collect.inputs
        for embedding in ("learned", "learned_desc", "random"):
            assert f"{split}.relation_net.{embedding}.metrics" in collect.inputs
        assert f"{split}.stgcn_model" in default.all_outputs()
    assert not any(name.startswith("nearest.") for name in default.all_outputs())
    # the exported model is the first split's, with the first learned embedding
    assert pipelines["model_export"].inputs() >= {
        "msr_random_1.stgcn_model",
        "msr_random_1.relation_net.learned.zsl_model",
    }
    names = {n.name for n in pipelines["label_embedding"].nodes}
    assert names == {
        "embed_action_labels_learned",
        "embed_action_labels_learned_desc",
        "random_label_embeddings",
    }


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        (["nearest", "Nearest"], "lower-case identifiers"),
        (["random_1", "random_1"], "more than once"),
        ([], "non-empty list"),
        ("nearest", "non-empty list"),
    ],
)
def test_bad_split_lists_are_refused_naming_the_parameter(splits, message):
    params = {"split_selection": {"splits": splits}, "label_embedding": {"variants": {"a": {}}}}
    with pytest.raises(ValueError, match=message) as error:
        grid.grid_from_parameters(params)
    assert "split_selection.splits" in str(error.value)


def test_random_is_reserved_for_the_ablation():
    params = {"split_selection": {"splits": ["nearest"]}, "label_embedding": {"variants": {}}}
    params["label_embedding"]["variants"] = {"random": {"text": "name"}}
    with pytest.raises(ValueError, match="reserved"):
        grid.grid_from_parameters(params)


def _metric_rows(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = []
    for (head, embedding), per_split in values.items():
        for k, value in enumerate(per_split):
            for seed, offset in ((0, -1.0), (1, 1.0)):  # seeds average to `value`
                rows.append(
                    {
                        "dataset": "d",
                        "split": f"s{k}",
                        "slot": f"s{k}",
                        "head": head,
                        "embedding": embedding,
                        "embedder": "x",
                        "seed": seed,
                        "protocol": "zsl",
                        "metric": "top1",
                        "value": value + offset,
                        "n": 10,
                        "ci_low": 0.0,
                        "ci_high": 100.0,
                    }  # fmt: skip
                )
    return pd.DataFrame(rows)


def test_over_splits_summary_and_paired_difference():
    learned = [50.0, 60.0, 70.0, 40.0]
    random = [20.0, 35.0, 30.0, 25.0]
    metrics = _metric_rows({("devise", "learned"): learned, ("devise", "random"): random})
    table, text = summarise_over_splits(metrics)
    plain = table[(table["comparison"] == "") & (table["embedding"] == "learned")].iloc[0]
    assert plain["splits"] == 4
    assert plain["mean"] == pytest.approx(np.mean(learned))
    assert plain["std"] == pytest.approx(np.std(learned, ddof=1))
    # t(0.975, 3) = 3.182: the half-width of a 4-split interval
    half = 3.182446 * np.std(learned, ddof=1) / 2
    assert plain["ci_low"] == pytest.approx(np.mean(learned) - half, rel=1e-5)
    paired = table[table["comparison"] == "learned - random"].iloc[0]
    differences = np.subtract(learned, random)
    assert paired["mean"] == pytest.approx(differences.mean())
    assert paired["ci_low"] == pytest.approx(
        differences.mean() - 3.182446 * differences.std(ddof=1) / 2, rel=1e-5
    )
    assert "Learned minus random" in text and "learned - random" in text


def test_further_learned_embeddings_are_compared_with_the_first():
    names, descriptions, random = [30.0, 40.0, 20.0], [45.0, 50.0, 20.0], [20.0, 20.0, 20.0]
    metrics = _metric_rows(
        {
            ("infonce", "learned"): names,
            ("infonce", "learned_desc"): descriptions,
            ("infonce", "random"): random,
        }  # fmt: skip
    )
    table, _ = summarise_over_splits(metrics)
    comparisons = set(table.loc[table["comparison"] != "", "comparison"])
    assert comparisons == {"learned - random", "learned_desc - random", "learned_desc - learned"}
    row = table[table["comparison"] == "learned_desc - learned"].iloc[0]
    assert row["mean"] == pytest.approx(np.mean(np.subtract(descriptions, names)))


def test_a_session_of_a_real_environment_rebuilds_ingestion_without_the_generator(restore_grid):
    """The grid hook also tells the pipelines whether the session's environment generates its
    recordings; switching between the default and a real environment with the same process
    rebuilds ingestion with / without the generator node."""
    from types import SimpleNamespace

    from kedro.framework.project import configure_project

    from pose_zsl.environments import config_loader
    from pose_zsl.hooks import GridHooks

    configure_project("pose_zsl")
    generated = []
    for env in ("local", "msr_action3d", "local"):
        GridHooks().after_context_created(SimpleNamespace(config_loader=config_loader(env)))
        ingestion = {n.name for n in pipelines["ingestion"].nodes}
        default = {n.name for n in pipelines["__default__"].nodes}
        generated.append(("synthetic_recordings" in ingestion, "synthetic_recordings" in default))
    assert generated == [(True, True), (False, False), (True, True)]
