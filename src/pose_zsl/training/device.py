"""Device and numeric precision choice shared by training and feature extraction."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(spec: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU. Explicit ``"cuda"`` without CUDA is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as error:
        raise ValueError(f"device {spec!r} is not a torch device (use auto, cpu, cuda)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {spec!r} requested but CUDA is not available; use 'auto' or 'cpu'"
        )
    return device


def resolve_precision(spec: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, or None for plain fp32.

    ``"auto"`` picks bf16 autocast on a CUDA device that supports it and fp32 elsewhere (bf16
    autocast on CPU is slower than fp32 on most CPUs).
    """
    if spec not in PRECISIONS:
        raise ValueError(f"precision {spec!r} is not one of {PRECISIONS}")
    if spec == "fp32":
        return None
    if spec == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` on ``device``, or nothing for fp32."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def configure_backend(device: torch.device) -> None:
    """Fast defaults on CUDA: TF32 for whatever stays fp32, and cuDNN autotuning (fixed shapes)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
