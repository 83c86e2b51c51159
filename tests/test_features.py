"""Frozen ST-GCN feature extraction over all samples (seen and unseen, train and test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from conftest import random_walk_skeletons

from pose_zsl.models.stgcn import STGCN
from pose_zsl.skeleton.store import SEQUENCE_SCHEMA, SequenceStore, sequences_table
from pose_zsl.training.batching import SkeletonDataset, WindowCollate
from pose_zsl.training.features import FEATURE_COLUMNS, extract_features

SEEN = [0, 2, 3]
UNSEEN = [1]
WINDOW = 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_arrays(joints: int = 25):
    """Four classes x four performers; odd performers are 'test'; always declared NTU."""
    return random_walk_skeletons(
        4, 4, joints=joints, frame_range=(8, 30), is_test=lambda p: p % 2 == 1, layout="ntu-rgb+d"
    )


@pytest.fixture(scope="module")
def toy() -> tuple[pd.DataFrame, pa.Table]:
    samples, ids, arrays = toy_arrays()
    return samples, sequences_table(ids, arrays)


@pytest.fixture(scope="module")
def model() -> STGCN:
    torch.manual_seed(0)
    net = STGCN(num_classes=len(SEEN), width_multiplier=0.125)
    with torch.no_grad():  # non-trivial running statistics, so eval mode is visible
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def extract(model: STGCN, samples: pd.DataFrame, sequences: pa.Table, **kwargs) -> pd.DataFrame:
    settings = {
        "unseen_ids": UNSEEN,
        "window": WINDOW,
        "max_bodies": 2,
        "window_mode": "resize",
        "batch_size": 5,
        "device": "cpu",
    }
    settings.update(kwargs)
    return extract_features(model, samples, sequences, SEEN, **settings)


def test_feature_table_schema_covers_all_samples(model, toy) -> None:
    samples, sequences = toy
    frame = extract(model, samples, sequences)
    assert tuple(frame.columns) == FEATURE_COLUMNS
    assert frame["sample_id"].tolist() == samples["sample_id"].tolist()
    assert frame["action_id"].tolist() == samples["action_id"].tolist()
    assert frame["is_seen"].dtype == bool
    assert frame["is_seen"].tolist() == [a in SEEN for a in samples["action_id"]]
    unseen = frame[frame["action_id"] == 1]
    assert len(unseen) == 4 and not unseen["is_seen"].any()
    assert set(unseen["protocol_split"]) == {"train", "test"}
    assert frame["protocol_split"].tolist() == samples["xsub"].tolist()
    for feature, logits in zip(frame["feature"], frame["seen_logits"], strict=True):
        assert feature.dtype == np.float32 and feature.shape == (model.feature_dim,)
        assert logits.dtype == np.float32 and logits.shape == (len(SEEN),)
        assert np.isfinite(feature).all() and np.isfinite(logits).all()


def test_features_and_logits_match_the_model_in_eval_mode(model, toy) -> None:
    samples, sequences = toy
    model.train()  # the extractor must switch to eval mode itself, and restore the mode
    frame = extract(model, samples, sequences, batch_size=16)
    assert model.training
    model.eval()
    store = SequenceStore(sequences)
    dataset = SkeletonDataset(store, [3, 9], [0, 0])
    x = WindowCollate(WINDOW, 2, "resize", train=False)([dataset[0], dataset[1]]).x
    with torch.no_grad():
        expected_features, expected_logits = model.extract_features(x), model(x)
    np.testing.assert_allclose(np.stack(frame["feature"][[3, 9]]), expected_features, atol=1e-5)
    np.testing.assert_allclose(np.stack(frame["seen_logits"][[3, 9]]), expected_logits, atol=1e-5)
    single = extract(model, samples, sequences, batch_size=1)
    np.testing.assert_allclose(np.stack(single["feature"]), np.stack(frame["feature"]), atol=1e-5)


def test_unusable_sequences_are_skipped_and_counted(model) -> None:
    samples, ids, arrays = toy_arrays()
    arrays[2] = arrays[2].copy()
    arrays[2][1, 0, 4, 0] = np.nan
    arrays[5] = np.zeros_like(arrays[5])
    flat = np.concatenate([a.ravel() for a in arrays])
    offsets = np.zeros(len(arrays) + 1, np.int64)
    np.cumsum([a.size for a in arrays], out=offsets[1:])
    table = pa.Table.from_arrays(
        [
            pa.array(ids),
            pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat)),
            pa.array([list(a.shape) for a in arrays], pa.list_(pa.int32(), 4)),
        ],
        schema=SEQUENCE_SCHEMA,
    )
    frame = extract(model, samples, table)
    assert len(frame) == len(samples) - 2
    assert ids[2] not in set(frame["sample_id"]) and ids[5] not in set(frame["sample_id"])
    assert {r["sample_id"]: r["reason"] for r in frame.attrs["skipped"]} == {
        ids[2]: "non-finite coordinates",
        ids[5]: "no valid frames",
    }


def test_class_lists_must_match_the_model(model, toy) -> None:
    samples, sequences = toy
    with pytest.raises(ValueError, match="model outputs 3 classes but 2 seen class ids"):
        extract_features(
            model, samples, sequences, [0, 2], window=WINDOW, max_bodies=2, window_mode="resize"
        )
    meta = {"class_ids": [0, 2, 4], "window": WINDOW, "max_bodies": 2, "window_mode": "resize"}
    with pytest.raises(ValueError, match=r"absent from the model: \[3\]"):
        extract_features(model, samples, sequences, SEEN, meta=meta)
    meta["class_ids"] = SEEN
    with pytest.raises(ValueError, match="window=32 differs from the model's training value 16"):
        extract_features(model, samples, sequences, SEEN, meta=meta, window=32)
    from_meta = extract_features(model, samples, sequences, SEEN, meta=meta, device="cpu")
    assert len(from_meta) == len(samples)
    with pytest.raises(ValueError, match=r"needs \['window', 'max_bodies', 'window_mode'\]"):
        extract_features(model, samples, sequences, SEEN)


def test_split_and_input_errors(model, toy) -> None:
    samples, sequences = toy
    with pytest.raises(ValueError, match=r"classes \[2\] are listed as both seen and unseen"):
        extract(model, samples, sequences, unseen_ids=[1, 2])
    with pytest.raises(ValueError, match=r"actions \[1\] are neither seen nor unseen"):
        extract(model, samples, sequences, unseen_ids=[])
    partial = sequences.slice(0, 5)
    with pytest.raises(ValueError, match="11 samples have no sequence"):
        extract(model, samples, partial)
    kinect, ids, arrays = toy_arrays(joints=20)
    with pytest.raises(ValueError, match=r"20 joints .*'ntu-rgb\+d' expects 25 joints"):
        extract(model, kinect, sequences_table(ids, arrays))
