"""inference pipeline: rank free-text action names for new recordings (not in the default run)."""

from .pipeline import create_pipeline, create_serving_pipeline

__all__ = ["create_pipeline", "create_serving_pipeline"]
