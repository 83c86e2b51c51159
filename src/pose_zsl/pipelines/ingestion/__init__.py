"""Raw recordings -> ``samples`` and ``sequences`` tables and an ingestion report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
