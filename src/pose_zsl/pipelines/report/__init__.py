"""report pipeline: the run's tables and figures as one self-contained HTML page."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
