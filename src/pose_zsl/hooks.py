"""Project hooks."""

from __future__ import annotations

import logging
import os
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset


def process_rank() -> int:
    """This process's rank in a ``torchrun`` launch (0 when not launched that way)."""
    return int(os.environ.get("RANK", "0"))


class RankZeroWritesHooks:
    """Under ``torchrun`` every rank runs the pipeline; only rank 0 writes datasets and logs.

    On the other ranks every pipeline output is swapped for an in-memory dataset, so nodes
    still pass data to each other but nothing reaches the disk or MLflow twice.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        if process_rank() != 0:
            logging.getLogger("kedro").setLevel(logging.WARNING)

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        if process_rank() != 0:
            for name in pipeline.all_outputs():
                catalog[name] = MemoryDataset(copy_mode="assign")
