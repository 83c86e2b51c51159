"""``adapt_layout`` in the predictor, ``pose-zsl predict --adapt-layout`` and the pyfunc model.

Uses the tiny model sets of ``test_inference.py`` (built once per session): a Kinect v1 model
trained on MSR Action3D files, fed the real NTU RGB+D (Kinect v2) sample files, and the NTU
model, fed an MSR file (the direction that cannot be adapted).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared
from test_inference import EMBEDDING, HEAD, MSR_DIR, SPLIT

from pose_zsl.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from pose_zsl.inference import Recording, ZeroShotPredictor, rank_requests, requests_frame
from pose_zsl.mlflow_model import ZeroShotPyfunc, pyfunc_signature
from pose_zsl.skeleton.adapt import adapt_array

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MSR_LABELS = ["high arm wave", "horizontal arm wave", "hammer", "draw a circle"]
VARIANT = ["--split", SPLIT, "--head", HEAD, "--embedding", EMBEDDING]


@pytest.fixture
def kinect_predictor(msr_models) -> ZeroShotPredictor:
    predictor = ZeroShotPredictor.from_project(msr_models.project, SPLIT, HEAD, EMBEDDING)
    assert predictor.layout == "kinect-v1" and predictor.num_joints == 20
    return predictor


def test_auto_reads_an_ntu_recording_with_a_kinect_v1_model(kinect_predictor, ntu_files, caplog):
    recordings, unreadable = kinect_predictor.read(ntu_files[:2])
    assert unreadable.empty and recordings[0].data.shape[2] == 25
    with caplog.at_level(logging.WARNING, logger="pose_zsl.inference"):
        ranking = kinect_predictor.rank(recordings, MSR_LABELS, top_k=2)
    assert ranking.skipped.empty
    assert ranking.predictions["recording"].tolist() == [
        str(f) for f in ntu_files[:2] for _ in "ab"
    ]
    assert ranking.adapted.values.tolist() == [[str(f), "ntu-rgb+d"] for f in ntu_files[:2]]
    # one notice for the batch, naming both layouts and the count
    notices = [r.getMessage() for r in caplog.records if "as the model's layout" in r.getMessage()]
    assert notices == [
        "read 2 recording(s) of layout 'ntu-rgb+d' as the model's layout 'kinect-v1' (joints "
        "matched by name, see pose_zsl.skeleton.adapt; adapt_layout='off' skips them instead)"
    ]


def test_auto_is_exactly_the_adapted_array(kinect_predictor, ntu_files):
    """The predictor feeds the model what adapt_array gives, nothing else."""
    recordings, _ = kinect_predictor.read(ntu_files[:1])
    data = recordings[0].data
    adapted = Recording("adapted", adapt_array(data, "ntu-rgb+d", "kinect-v1"))
    features, kept, skipped = kinect_predictor.features([recordings[0], adapted])
    assert kept == [recordings[0].name, "adapted"] and skipped.empty
    np.testing.assert_array_equal(features[0], features[1])


def test_off_skips_with_a_hint_at_the_adapter(kinect_predictor, msr_models, ntu_files):
    recordings, _ = kinect_predictor.read(ntu_files[:1])
    ranking = kinect_predictor.rank(recordings, MSR_LABELS, adapt_layout="off")
    assert ranking.predictions.empty and ranking.adapted.empty
    (reason,) = ranking.skipped["reason"]
    assert reason.startswith(
        "has 25 joints (a ntu-rgb+d recording?) but the model was trained on layout "
        "'kinect-v1' with 20 joints: use a model trained on recordings of this layout"
    )
    assert "--adapt-layout auto" in reason
    # the setting can also be the predictor's own; a per-call value overrides it
    off = ZeroShotPredictor.from_project(
        msr_models.project, SPLIT, HEAD, EMBEDDING, adapt_layout="off"
    )
    assert off.rank(recordings, MSR_LABELS).predictions.empty
    assert len(off.rank(recordings, MSR_LABELS, adapt_layout="auto").predictions) == 4


def test_a_kinect_v1_recording_for_an_ntu_model_is_refused_naming_both(ntu_models):
    require_shared(MSR_DIR, "the MSR Action3D recordings")
    predictor = ZeroShotPredictor.from_project(ntu_models.project, SPLIT, HEAD, EMBEDDING)
    msr_file = MSR_DIR / "a01_s01_e01_skeleton3D.txt"
    recordings, _ = predictor.read([msr_file])
    for mode in ("auto", "off"):
        ranking = predictor.rank(recordings, ["drink water", "pickup"], adapt_layout=mode)
        assert ranking.predictions.empty and ranking.adapted.empty
        (reason,) = ranking.skipped["reason"]
        assert "'ntu-rgb+d' with 25 joints" in reason
        assert "--adapt-layout" not in reason  # no adapter: the flag would not help
        if mode == "auto":
            assert "cannot adapt a 'kinect-v1' recording to layout 'ntu-rgb+d'" in reason
            assert "made-up positions" in reason


@pytest.mark.parametrize("value", ["yes", "", None, 1])
def test_bad_adapt_layout_values_are_refused(kinect_predictor, msr_models, ntu_files, value):
    recordings, _ = kinect_predictor.read(ntu_files[:1])
    if value is None:  # None means "the predictor's setting" per call, but is no setting itself
        with pytest.raises(ValueError, match="adapt_layout must be 'auto'"):
            ZeroShotPredictor.from_project(
                msr_models.project, SPLIT, HEAD, EMBEDDING, adapt_layout=value
            )
        return
    with pytest.raises(ValueError, match=f"adapt_layout must be 'auto'.*got {value!r}"):
        kinect_predictor.rank(recordings, MSR_LABELS, adapt_layout=value)


def test_request_tables_take_adapt_layout(kinect_predictor, ntu_files):
    recordings, _ = kinect_predictor.read(ntu_files[:2])
    requests = requests_frame(recordings, MSR_LABELS)
    auto = rank_requests(kinect_predictor, requests, top_k=1)
    assert len(auto.predictions) == 2 and len(auto.adapted) == 2
    off = rank_requests(kinect_predictor, requests, top_k=1, adapt_layout="off")
    assert off.predictions.empty and len(off.skipped) == 2


# ---------------------------------------------------------------------------------------------
# the CLI and the pyfunc model


def cli_args(models, files, *extra: str) -> list[str]:
    return [
        "predict", *map(str, files), "--labels", ", ".join(MSR_LABELS), *VARIANT,
        "--project", str(models.project), "--top-k", "2", *extra,
    ]  # fmt: skip


def test_cli_adapt_layout_flag(msr_models, ntu_files, tmp_path, capsys):
    output = tmp_path / "adapted.csv"
    assert main(cli_args(msr_models, ntu_files[:1], "--output", str(output))) == EXIT_OK
    err = capsys.readouterr().err
    assert (
        f"pose-zsl: read 1 ntu-rgb+d recording(s) as the model's layout kinect-v1 "
        f"(--adapt-layout off skips them): {ntu_files[0]}"
    ) in err
    assert pd.read_csv(output)["recording"].tolist() == [str(ntu_files[0])] * 2

    assert main(cli_args(msr_models, ntu_files[:1], "--adapt-layout", "off")) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"pose-zsl: skipped {ntu_files[0]}: has 25 joints" in err
    assert "--adapt-layout auto" in err and "as the model's layout" not in err

    assert main(cli_args(msr_models, ntu_files[:1], "--adapt-layout", "always")) == EXIT_USAGE
    assert "'--adapt-layout': 'always' is not one of 'auto', 'off'" in capsys.readouterr().err


def test_pyfunc_takes_an_adapt_layout_parameter(kinect_predictor, ntu_files):
    params = pyfunc_signature().params.to_dict()
    assert {"name": "adapt_layout", "type": "string", "default": "auto", "shape": None} in params
    model = ZeroShotPyfunc()
    model.predictor = kinect_predictor  # what load_context builds from the logged files
    recordings, _ = kinect_predictor.read(ntu_files[:1])
    requests = requests_frame(recordings, MSR_LABELS)
    served = model.predict(None, requests, params={"top_k": 2})
    assert len(served) == 2 and served["error"].isna().all()
    refused = model.predict(None, requests, params={"adapt_layout": "off"})
    assert refused["rank"].tolist() == [0]
    assert refused["error"].str.contains("--adapt-layout auto").all()
    with pytest.raises(ValueError, match="the adapt_layout parameter must be 'auto'"):
        model.predict(None, requests, params={"adapt_layout": "sometimes"})


def test_served_error_rows_are_strict_json_and_an_empty_label_list_fails_only_its_row(
    kinect_predictor, ntu_files
):
    """Through MLflow's own response writer: a skipped row's score is ``null`` (``NaN`` is not
    JSON), and a row without candidate names is an error row worded for the API."""
    import json

    from mlflow.pyfunc.scoring_server import predictions_to_json

    model = ZeroShotPyfunc()
    model.predictor = kinect_predictor
    recordings, _ = kinect_predictor.read(ntu_files[:2])
    requests = requests_frame(recordings, MSR_LABELS)
    requests.at[1, "labels"] = []
    served = model.predict(None, requests, params={"top_k": 2})
    assert served["recording"].tolist()[:2] == [recordings[0].name] * 2
    error = served[served["rank"] == 0]
    assert error["recording"].tolist() == [recordings[1].name]
    assert error["error"].iloc[0].startswith("no candidate action names: give at least one")
    assert "'labels': [" in error["error"].iloc[0] and "--labels" not in error["error"].iloc[0]

    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    class Buffer(list):
        def write(self, text: str) -> None:
            self.append(text)

    output = Buffer()
    predictions_to_json(served, output)
    rows = json.loads("".join(output), parse_constant=refuse)["predictions"]
    assert rows[-1]["score"] is None and rows[-1]["raw_score"] is None
    assert all(isinstance(row["score"], float) for row in rows[:-1])
