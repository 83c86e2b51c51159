"""One trained variant loaded for inference: its four artefacts, checked to belong together.

The ST-GCN artefact, the zero-shot head, the label-embedding table the head was trained against
and the calibration constant must come from one split, one embedder and matching dimensions;
:class:`TrainedVariant` loads them once and refuses a mismatch with
:class:`~pose_zsl.inference.files.ModelMismatchError` naming both files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pose_zsl.inference.files import ModelMismatchError
from pose_zsl.text.embedders import embedding_matrix
from pose_zsl.zsl.calibration import CalibrationProxy, composition_gamma

logger = logging.getLogger(__name__)

#: What each artefact is called in messages, unless the caller names its files.
ARTEFACT_NAMES = {
    "stgcn": "ST-GCN artefact",
    "head": "zero-shot head artefact",
    "label_embeddings": "label-embedding table",
    "calibration": "calibration",
}


class TrainedVariant:
    """The loaded models of one variant and what they were trained with.

    Args:
        stgcn_artifact: the ST-GCN artefact dict (catalog ``{split}.stgcn_model``).
        head_artifact: the zero-shot head artefact dict (``{split}.{head}.{embedding}.zsl_model``).
        label_embeddings: the label-embedding table the head was trained with.
        calibration: the calibration dict (key ``gamma``), or None (no constant).
        device: torch device for the ST-GCN and the head (``"cpu"``, ``"cuda"``, ``"auto"``).
        sources: names of the artefacts for error messages (``stgcn``, ``head``, ...).

    Raises:
        ModelMismatchError: the artefacts do not belong together (other classes, embedder or
            dimensions).
        ValueError: an artefact that is not what it claims to be.
    """

    def __init__(
        self,
        stgcn_artifact: Mapping[str, Any],
        head_artifact: Mapping[str, Any],
        label_embeddings: pd.DataFrame,
        calibration: Mapping[str, Any] | None,
        *,
        device: str = "cpu",
        sources: Mapping[str, str] | None = None,
    ) -> None:
        from pose_zsl.models.heads import head_from_artifact
        from pose_zsl.training.device import resolve_device
        from pose_zsl.training.stgcn_trainer import model_from_artifact

        names = {**ARTEFACT_NAMES, **dict(sources or {})}
        self.device = resolve_device(device)
        self.stgcn, self.stgcn_meta = model_from_artifact(
            dict(stgcn_artifact), source=names["stgcn"], map_location=self.device
        )
        self.head = head_from_artifact(dict(head_artifact), source=names["head"])
        self.head_meta = dict(head_artifact.get("meta") or {})
        self.layout = str(self.stgcn_meta.get("layout") or self.stgcn.layout.name)
        self.num_joints = int(self.stgcn.layout.num_joints)
        self.in_channels = int(self.stgcn.in_channels)
        self.window = int(self.stgcn_meta["window"])
        self.window_mode = str(self.stgcn_meta["window_mode"])
        self.max_bodies = int(self.stgcn_meta["max_bodies"])
        self.seen_class_ids = sorted(int(c) for c in self.stgcn_meta["class_ids"])
        self._check_head(names)
        #: the label-embedding table, checked and sorted by ``action_id``
        self.table = self._check_table(label_embeddings, names)
        #: its (K, E) float32 class vectors, row by row
        self.vectors = embedding_matrix(self.table)
        self.gamma = self._gamma(calibration, names)
        self.proxy = self._proxy(calibration, names)
        self.embedder_name = str(self.table["embedder"].iloc[0])

    def _check_head(self, names: Mapping[str, str]) -> None:
        head_seen = self.head.seen_class_ids
        if head_seen is None:
            head_seen = self.head_meta.get("seen_class_ids")
        if head_seen is None:
            raise ValueError(f"{names['head']}: the head does not record its seen classes")
        head_seen = sorted(int(c) for c in head_seen)
        if head_seen != self.seen_class_ids:
            raise ModelMismatchError(
                f"{names['head']} was trained on classes {head_seen} but {names['stgcn']} on "
                f"{self.seen_class_ids}: they come from different splits"
            )
        feature_dim = int(getattr(self.stgcn, "feature_dim", self.head.feature_dim))
        if feature_dim != self.head.feature_dim:
            raise ModelMismatchError(
                f"{names['head']} expects {self.head.feature_dim}-D features but "
                f"{names['stgcn']} gives {feature_dim}-D ones"
            )

    def _check_table(self, table: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
        source = names["label_embeddings"]
        required = {
            "action_id",
            "action_name",
            "texts",
            "embedder",
            "embedder_model",
            "dim",
            "vector",
        }
        missing = sorted(required - set(table.columns))
        if missing:
            raise ValueError(f"{source}: the label-embedding table lacks columns {missing}")
        if table.empty:
            raise ValueError(f"{source}: the label-embedding table is empty")
        embedders = table["embedder"].astype(str).unique()
        if len(embedders) != 1:
            raise ValueError(f"{source}: mixes embedders {sorted(embedders)}")
        head_embedder = self.head_meta.get("embedder")
        if head_embedder is not None and str(head_embedder) != embedders[0]:
            raise ModelMismatchError(
                f"{names['head']} was trained with {head_embedder!r} label embeddings, but "
                f"{source} holds {embedders[0]!r} ones"
            )
        dim = int(table["dim"].iloc[0])
        if dim != self.head.embedding_dim:
            raise ModelMismatchError(
                f"{names['head']} expects {self.head.embedding_dim}-D label embeddings, "
                f"{source} holds {dim}-D ones"
            )
        absent = sorted(set(self.seen_class_ids) - set(table["action_id"].astype(int)))
        if absent:
            raise ModelMismatchError(
                f"{source} has no rows for the model's training classes {absent}"
            )
        return table.sort_values("action_id").reset_index(drop=True)

    def _gamma(
        self, calibration: Mapping[str, Any] | None, names: Mapping[str, str]
    ) -> float | None:
        if calibration is None:
            return None
        if "gamma" not in calibration:
            raise ValueError(f"{names['calibration']}: no 'gamma' key")
        gamma = float(calibration["gamma"])
        if not np.isfinite(gamma):
            raise ValueError(f"{names['calibration']}: gamma is {gamma}")
        return gamma

    @staticmethod
    def _proxy(
        calibration: Mapping[str, Any] | None, names: Mapping[str, str]
    ) -> CalibrationProxy | None:
        if calibration is None or calibration.get("proxy") is None:
            return None  # written before proxies were kept: the evaluation's constant only
        return CalibrationProxy.from_dict(calibration["proxy"], source=names["calibration"])

    def gamma_for(self, seen: np.ndarray) -> float | None:
        """The calibration constant for a candidate list whose training classes are ``seen``
        (bool per candidate), chosen on the proxy for the list's share of the evaluation's
        seen and unseen classes (:func:`~pose_zsl.zsl.calibration.composition_gamma`); the
        evaluation's constant when the model kept no proxy or the list has no seen or no other
        names."""
        seen_count, other_count = int(seen.sum()), int((~seen).sum())
        if self.gamma is None or self.proxy is None or not seen_count or not other_count:
            return self.gamma
        unseen_ids = self.head_meta.get("unseen_class_ids")
        evaluation_unseen = len(unseen_ids) if unseen_ids else self.proxy.pseudo_unseen.size
        gamma = composition_gamma(
            self.proxy,
            seen_count / len(self.seen_class_ids),
            other_count / evaluation_unseen,
        )
        logger.info(
            "calibration: gamma %.4g for %d training class(es) among %d candidates (%.4g for "
            "the evaluation's list of every class)",
            gamma,
            seen_count,
            seen_count + other_count,
            self.gamma,
        )
        return gamma

    @property
    def seen_class_names(self) -> list[str]:
        """Official names of the classes the models were trained on."""
        ids = self.table["action_id"].astype(int)
        return [str(n) for n in self.table.loc[ids.isin(self.seen_class_ids), "action_name"]]

    def describe(self) -> dict[str, Any]:
        """What was loaded, for logs and reports (the seen classes as a count: their names are
        :attr:`seen_class_names`)."""
        return {
            "split": self.head_meta.get("split"),
            "head": self.head.kind,
            "embedder": self.embedder_name,
            "layout": self.layout,
            "window": self.window,
            "window_mode": self.window_mode,
            "max_bodies": self.max_bodies,
            "seen_classes": len(self.seen_class_names),
            "gamma": self.gamma,
        }
