"""model_export pipeline: the trained zero-shot chain as one servable MLflow model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
