"""pose-zsl: zero-shot skeleton action recognition in a joint pose-language space."""

__version__ = "0.1.0"
