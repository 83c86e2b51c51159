"""What each Kedro environment trains, resolved as ``kedro run --env X`` resolves it.

Parameters come from the project's own config loader and context (``settings.py``: the soft
merge of an environment over ``base``, the default ``local`` environment) and the effective
ST-GCN and head configs from the functions the training nodes call. The paper environments are
checked against the paper's section 4.3, value by value; the synthetic default and the small
real datasets against the schedules they ran before presets moved into code.
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from pose_zsl.models.heads import (
    HEAD_KINDS,
    HEAD_PRESETS,
    build_head,
    head_config_from_params,
    head_configs_from_params,
)
from pose_zsl.models.stgcn import block_channels
from pose_zsl.training.stgcn_trainer import (
    PARAMETER_ONLY_KEYS,
    PRESET_INDEPENDENT_FIELDS,
    TRAIN_PRESETS,
    TrainConfig,
    train_config_from_params,
)

PROJECT = Path(__file__).resolve().parents[1]
#: Environments that claim the paper's settings (conf/<env>/parameters.yml says so).
PAPER_ENVIRONMENTS = ("ntu60", "ntu120", "stgcn_arrays")


def environments() -> list[str]:
    """Every environment under ``conf/`` besides base, and ``local`` (the default run
    environment) even where a fresh clone has no such folder."""
    found = {p.name for p in (PROJECT / "conf").iterdir() if p.is_dir() and p.name != "base"}
    return sorted(found | {"local"})


@functools.cache
def parameters(env: str) -> dict[str, Any]:
    """The parameters ``kedro run --env <env>`` hands its nodes: the project's config loader
    class and arguments, read through a context as the session builds it (without the
    session's plugin hooks, which would open an MLflow store)."""
    from kedro.framework.hooks.manager import _create_hook_manager
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    metadata = bootstrap_project(PROJECT)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(PROJECT / settings.CONF_SOURCE), env=env, **settings.CONFIG_LOADER_ARGS
    )
    context = settings.CONTEXT_CLASS(
        package_name=metadata.package_name,
        project_path=PROJECT,
        config_loader=loader,
        env=env,
        hook_manager=_create_hook_manager(),
    )
    return dict(context.params)


def effective(env: str) -> tuple[TrainConfig, dict[str, Any]]:
    params = parameters(env)
    return (
        train_config_from_params(params["stgcn_training"]),
        head_configs_from_params(params["zsl_training"]),
    )


# ---- every environment ---------------------------------------------------------------------


def test_the_environments_are_discovered() -> None:
    assert {"local", *SMALL_DATASETS, *PAPER_ENVIRONMENTS} <= set(environments())


@pytest.mark.parametrize(
    ("env", "splits"),
    [
        ("msr_to_utkinect", ["msr_to_utkinect"]),
        ("utkinect_to_msr", ["utkinect_to_msr"]),
        ("kinect_v1_pooled", [f"pooled_random_{k}" for k in range(1, 6)]),
    ],
)
def test_pooled_environments_run_their_splits_under_one_protocol(env: str, splits) -> None:
    params = parameters(env)
    selection = params["split_selection"]
    assert selection["splits"] == splits
    assert selection["protocol"] == params["stgcn_training"]["protocol"]


@pytest.mark.parametrize("env", environments())
def test_every_environment_resolves_to_a_known_preset(env: str) -> None:
    params = parameters(env)
    assert params["stgcn_training"]["preset"] in TRAIN_PRESETS
    assert params["zsl_training"]["preset"] in HEAD_PRESETS
    stgcn, heads = effective(env)
    assert isinstance(stgcn, TrainConfig)
    assert set(heads) == set(HEAD_KINDS)


def test_base_parameters_hold_no_schedule_values() -> None:
    """Whatever base sets reaches every environment (soft merge) and overrides its preset: base
    names the preset and sets only what no preset covers; the head overrides stay empty."""
    base = {}
    for path in sorted((PROJECT / "conf" / "base").glob("parameters*.yml")):
        base |= yaml.safe_load(path.read_text()) or {}
    allowed = {"preset"} | PARAMETER_ONLY_KEYS | PRESET_INDEPENDENT_FIELDS
    assert set(base["stgcn_training"]) <= allowed, sorted(set(base["stgcn_training"]) - allowed)
    assert {kind: base["zsl_training"][kind] for kind in HEAD_KINDS} == dict.fromkeys(
        HEAD_KINDS, {}
    )


def test_no_preset_sets_the_fields_base_may_set() -> None:
    """Base may give the preset-independent fields for every environment only because no preset
    has its own value for them."""
    default = TrainConfig().to_dict()
    for name, make in TRAIN_PRESETS.items():
        config = make().to_dict()
        assert {k: config[k] for k in PRESET_INDEPENDENT_FIELDS} == {
            k: default[k] for k in PRESET_INDEPENDENT_FIELDS
        }, name


# ---- the paper's environments ----------------------------------------------------------------


@pytest.mark.parametrize("env", PAPER_ENVIRONMENTS)
def test_paper_environments_train_the_papers_settings(env: str) -> None:
    """Section 4.3 of the paper (and the original ST-GCN, whose settings it says it follows)."""
    stgcn, heads = effective(env)
    assert (stgcn.epochs, stgcn.lr, stgcn.momentum, stgcn.weight_decay) == (80, 0.01, 0.9, 1e-4)
    assert stgcn.batch_size == 48
    assert (stgcn.window, stgcn.window_mode, stgcn.max_bodies) == (300, "pad", 2)
    assert stgcn.width == 1.0 and block_channels(stgcn.width)[-1] == 256  # 256-D features
    assert (stgcn.lr_milestones, stgcn.lr_gamma, stgcn.dropout) == ((10, 50), 0.1, 0.5)

    devise = heads["devise"]
    assert (devise.margin, devise.lr, devise.momentum) == (0.1, 1e-3, 0.9)
    assert (devise.epochs, devise.batch_size) == (100, 64)
    projection = build_head("devise", 256, 700, devise).projection  # 256-D -> 700-D Sent2Vec
    assert tuple(projection.weight.shape) == (700, 256)

    relation = heads["relation_net"]
    assert (relation.episodes, relation.batch_size, relation.lr) == (400_000, 32, 1e-5)
    assert (relation.lr_step, relation.lr_gamma) == (200_000, 0.5)
    assert all(config.negatives_include_unseen for config in heads.values())  # seen + unseen


@pytest.mark.parametrize("env", PAPER_ENVIRONMENTS)
def test_paper_environments_keep_nothing_of_the_synthetic_schedule(env: str) -> None:
    """Every field a preset covers has the paper preset's value (no value leaks in from base);
    only preset-independent fields may differ, and these only as the environment file says."""
    stgcn, heads = effective(env)
    paper = TRAIN_PRESETS["paper"]().to_dict()
    got = stgcn.to_dict()
    differing = {k for k in got if got[k] != paper[k]}
    assert differing <= PRESET_INDEPENDENT_FIELDS, sorted(differing - PRESET_INDEPENDENT_FIELDS)
    own = yaml.safe_load((PROJECT / "conf" / env / "parameters.yml").read_text())
    assert own["stgcn_training"]["preset"] == own["zsl_training"]["preset"] == "paper"
    assert {k: got[k] for k in differing} == {k: own["stgcn_training"][k] for k in differing}
    assert heads == HEAD_PRESETS["paper"]


# ---- the synthetic default and the small real datasets ---------------------------------------

#: The default run's effective configs before the presets moved into code (the base YAML's
#: values over ``TrainConfig`` / the old synthetic head schedules): they must not change.
SYNTHETIC_STGCN = {
    "epochs": 12, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "nesterov": True,
    "weight_decay": 1e-4, "lr_milestones": [9], "lr_gamma": 0.1, "window": 32,
    "window_mode": "resize", "max_bodies": 2, "augment": False, "protocol": "xsub",
    "val_fraction": 0.15, "width": 0.125, "partition": "spatial", "reference_exact_graph": True,
    "edge_importance": True, "dropout": 0.0, "weight_init": "pytorch", "device": "auto",
    "precision": "auto", "compile": False, "channels_last": False, "grad_clip": None,
    "num_workers": 0, "cpu_threads": 1, "eval_batch_size": None, "sync_batchnorm": None,
    "distributed_timeout_s": 600.0, "seed": 0, "checkpoint_dir": None,
}  # fmt: skip
SYNTHETIC_HEADS = {
    "devise": {
        "epochs": 40, "lr": 0.01, "momentum": 0.9, "batch_size": 64, "margin": 0.1,
        "weight_decay": 0.0, "negatives_include_unseen": True, "log_every": 10,
    },
    "relation_net": {
        "episodes": 1500, "batch_size": 32, "lr": 0.002, "lr_step": 1000, "lr_gamma": 0.5,
        "weight_decay": 0.0, "attribute_hidden": 256, "relation_hidden": 128,
        "negatives_include_unseen": True, "prior_output_bias": True, "log_every": 250,
    },
    "infonce": {
        "epochs": 40, "lr": 1e-3, "batch_size": 64, "temperature": 0.1, "weight_decay": 1e-4,
        "negatives_include_unseen": True, "log_every": 10,
    },
}  # fmt: skip
#: What the small real datasets change on the synthetic schedule: one Kinect v1 body and the
#: real-data recipe chosen on MSR Action3D's held-out seen-class training samples.
REAL_RECIPE = {
    "max_bodies": 1,
    "normalise": "view",
    "augment": True,
    "width": 0.25,
    "epochs": 60,
    "lr_milestones": [45],
    "window": 32,
    "val_by": "performer",
}
CROSS_RECIPE = REAL_RECIPE | {"protocol": "xdata"}
SMALL_DATASETS = {
    "local": {},
    "msr_action3d": REAL_RECIPE,
    "utkinect": REAL_RECIPE,
    "kinect_v1_pooled": REAL_RECIPE,
    "msr_to_utkinect": CROSS_RECIPE,
    "utkinect_to_msr": CROSS_RECIPE,
}


@pytest.mark.parametrize("env", sorted(SMALL_DATASETS))
def test_synthetic_environments_run_the_schedules_they_chose(env: str) -> None:
    params = parameters(env)
    assert params["stgcn_training"]["preset"] == ("synthetic" if env == "local" else "small_real")
    assert params["zsl_training"]["preset"] == "synthetic"
    stgcn, heads = effective(env)
    got = stgcn.to_dict()
    expected = SYNTHETIC_STGCN | SMALL_DATASETS[env]
    assert {k: got[k] for k in expected} == expected
    for kind, values in SYNTHETIC_HEADS.items():
        config = asdict(heads[kind])
        assert {k: config[k] for k in values} == values, kind


# ---- errors ----------------------------------------------------------------------------------


def test_an_unknown_or_missing_preset_is_an_error_naming_the_parameter() -> None:
    stgcn = dict(parameters("local")["stgcn_training"])
    heads = dict(parameters("local")["zsl_training"])
    known = r"\['paper', 'small_real', 'synthetic'\]"
    with pytest.raises(ValueError, match=rf"stgcn_training\.preset='fast' .*{known}"):
        train_config_from_params({**stgcn, "preset": "fast"})
    known = r"\['paper', 'synthetic'\]"
    with pytest.raises(ValueError, match=rf"zsl_training\.preset='fast' .*{known}"):
        head_config_from_params("devise", {**heads, "preset": "fast"})
    with pytest.raises(ValueError, match=r"stgcn_training\.preset is missing"):
        train_config_from_params({k: v for k, v in stgcn.items() if k != "preset"})
    with pytest.raises(ValueError, match=r"zsl_training\.preset is missing"):
        head_config_from_params("devise", {k: v for k, v in heads.items() if k != "preset"})


def test_an_unknown_field_is_an_error_naming_the_parameters() -> None:
    stgcn = dict(parameters("local")["stgcn_training"])
    heads = dict(parameters("local")["zsl_training"])
    with pytest.raises(ValueError, match=r"unknown stgcn_training parameters \['epoch'\]"):
        train_config_from_params({**stgcn, "epoch": 3})
    with pytest.raises(ValueError, match=r"zsl_training\.relation_net: .*\['episode'\]"):
        head_config_from_params("relation_net", {**heads, "relation_net": {"episode": 3}})


def test_overrides_change_only_their_field() -> None:
    stgcn = dict(parameters("ntu60")["stgcn_training"])
    heads = dict(parameters("ntu60")["zsl_training"])
    config = train_config_from_params({**stgcn, "epochs": 3})
    assert config.epochs == 3 and config.window == 300  # the rest stays the paper's
    relation = head_config_from_params("relation_net", {**heads, "relation_net": {"lr": 1e-4}})
    assert (relation.lr, relation.episodes) == (1e-4, 400_000)


# ---- outputs per environment ------------------------------------------------------------------


def test_every_environment_writes_under_its_own_data_root() -> None:
    """Resolved as ``kedro run --env`` resolves them: catalog paths and the checkpoint folder
    sit under the environment's data root, and no two environments share one."""
    from pose_zsl.environments import config_loader, data_root

    roots = {}
    for env in environments():
        loader = config_loader(env)
        root = str(data_root(env))
        assert root == ("data" if env == "local" else f"data/{env}"), env
        catalog = loader["catalog"]
        assert catalog["samples"]["filepath"] == f"{root}/02_intermediate/samples.parquet"
        assert catalog["{split}.stgcn_model"]["filepath"] == f"{root}/06_models/stgcn_{{split}}.pt"
        checkpoints = loader["parameters"]["stgcn_training"]["checkpoint_root"]
        assert checkpoints == f"{root}/06_models/checkpoints", env
        roots[root] = env
    assert len(roots) == len(environments())


@pytest.mark.parametrize("env", environments())
def test_protocol_and_dataset_have_one_home_per_environment(env: str) -> None:
    """Declared once in the environment's globals.yml, read by every pipeline that needs them."""
    from pose_zsl.environments import config_loader

    shared = config_loader(env)["globals"]
    params = parameters(env)
    assert params["split_selection"]["protocol"] == shared["protocol"]
    assert params["stgcn_training"]["protocol"] == shared["protocol"]
    assert params["evaluation"]["dataset"] == shared["dataset"]
    expected = {"msr_to_utkinect": "xdata", "utkinect_to_msr": "xdata"}.get(env, "xsub")
    assert shared["protocol"] == expected
    assert (shared["dataset"] == "synthetic_ntu60") == (env == "local")


# ---- which environments generate their raw recordings --------------------------------------


@pytest.mark.parametrize("env", environments())
def test_only_the_synthetic_default_generates_its_recordings(env: str) -> None:
    """Real-data environments read their folder as it is: their ingestion pipeline has no
    generator node (the default environment's has, writing ``raw_recordings``)."""
    from pose_zsl import environments as envs
    from pose_zsl.pipelines.ingestion.pipeline import create_pipeline

    synthetic = envs.generates_synthetic(env, PROJECT)
    assert synthetic == (env == "local")
    envs.use_catalog(envs.config_loader(env, PROJECT)["catalog"])  # as the session's hook does
    ingestion = create_pipeline()
    generators = [n for n in ingestion.nodes if n.name == "synthetic_recordings"]
    assert len(generators) == int(synthetic)
    assert ("raw_recordings" in ingestion.inputs()) == (not synthetic)
    if synthetic:
        assert generators[0].inputs == ["params:synthetic_data"]
        assert set(parameters(env)["synthetic_data"]) == {
            "samples_per_action",
            "seed",
            "num_performers",
        }
