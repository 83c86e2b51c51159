"""Run ST-GCN training and feature extraction as one process or as every rank of ``torchrun``.

A process is a rank of a distributed launch when ``RANK`` or ``WORLD_SIZE`` is set (``torchrun``
sets them, together with ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``); otherwise it is a
plain single process and nothing here talks to other processes. Under a launch, every rank
joins one process group (``nccl`` when it computes on CUDA, ``gloo`` on CPU), created once per
process and reused by every later training or extraction call; CUDA ranks use the GPU
``cuda:LOCAL_RANK``.

Rules the callers follow (see :func:`pose_zsl.training.stgcn_trainer.train_stgcn`):

* every rank runs the same calls in the same order: every helper here that talks to the group
  is a collective, so a rank that skips one leaves the others waiting until the timeout;
* only rank 0 writes files (:meth:`DistContext.run_on_main` runs the write there and tells the
  other ranks whether it worked, so a failed write fails every rank with the same reason);
* a collective that waits longer than ``timeout_s`` (a rank died or hangs) raises on the ranks
  still alive (gloo: a ``RuntimeError``; NCCL: the watchdog stops the process).

SyncBatchNorm: ``torch.nn.SyncBatchNorm`` only runs on GPUs, so CPU runs that ask for
synchronised statistics get :class:`PortableSyncBatchNorm`, which computes the same global
batch statistics with two differentiable all-reduces per layer (slower, any device, any
backend).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import hashlib
import logging
import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger(__name__)

#: The rendezvous variables of PyTorch's ``env://`` initialisation, all set by ``torchrun``.
RENDEZVOUS_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: Seconds a collective (or the rendezvous itself) may wait for the other ranks.
DEFAULT_TIMEOUT_S = 600.0

T = TypeVar("T")

#: ``timeout_s`` of the process group this module created (absent: it created none).
_created_group: dict[str, float] = {}


class DistributedError(RuntimeError):
    """A distributed launch that cannot start, or a rank that failed because another one did."""


@dataclass(frozen=True)
class LaunchEnv:
    """This process's place in a distributed launch, read from the rendezvous variables."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


def launch_from_env(environ: Mapping[str, str] | None = None) -> LaunchEnv | None:
    """The launch described by the environment, or None for a plain single-process run.

    A process is part of a launch when ``RANK`` or ``WORLD_SIZE`` is set; then all of
    :data:`RENDEZVOUS_VARIABLES` must be set and valid. ``MASTER_ADDR``/``MASTER_PORT`` alone
    (some clusters export them for every job) do not make a launch.

    Raises:
        DistributedError: a missing or malformed rendezvous variable (the message names it).
    """
    env = os.environ if environ is None else environ
    if "RANK" not in env and "WORLD_SIZE" not in env:
        return None
    missing = [name for name in RENDEZVOUS_VARIABLES if not env.get(name)]
    if missing:
        given = [name for name in RENDEZVOUS_VARIABLES if env.get(name)]
        raise DistributedError(
            f"distributed launch: the rendezvous variable(s) {', '.join(missing)} are not set "
            f"(set: {', '.join(given)}). torchrun sets all of {', '.join(RENDEZVOUS_VARIABLES)}; "
            "a hand-made launch must set every one of them, and a single-process run must set "
            "neither RANK nor WORLD_SIZE"
        )
    numbers: dict[str, int] = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        try:
            numbers[name] = int(env[name])
        except ValueError:
            raise DistributedError(
                f"distributed launch: {name}={env[name]!r} is not an integer"
            ) from None
    rank, world_size = numbers["RANK"], numbers["WORLD_SIZE"]
    if world_size < 1:
        raise DistributedError(f"distributed launch: WORLD_SIZE={world_size} must be >= 1")
    if not 0 <= rank < world_size:
        raise DistributedError(
            f"distributed launch: RANK={rank} is not in [0, WORLD_SIZE={world_size})"
        )
    if numbers["LOCAL_RANK"] < 0:
        raise DistributedError(f"distributed launch: LOCAL_RANK={numbers['LOCAL_RANK']} is < 0")
    if not 0 < numbers["MASTER_PORT"] < 65536:
        raise DistributedError(
            f"distributed launch: MASTER_PORT={numbers['MASTER_PORT']} is not a TCP port"
        )
    return LaunchEnv(
        rank, world_size, numbers["LOCAL_RANK"], env["MASTER_ADDR"], numbers["MASTER_PORT"]
    )


def launch_world_size(environ: Mapping[str, str] | None = None) -> int:
    """How many processes take part in this run: the existing process group's size, the
    launch's ``WORLD_SIZE``, or 1. Needs no process group, so callers can check their data
    against it before any rank waits for the others."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    launch = launch_from_env(environ)
    return launch.world_size if launch is not None else 1


# ---------------------------------------------------------------------------------------------
# the process group


@dataclass(frozen=True)
class DistContext:
    """This process's rank, world and devices; the collectives are no-ops when not ``active``.

    ``device`` is where the model computes; ``collective_device`` is where tensors must live
    for the process group's backend (the rank's GPU for NCCL, the CPU for gloo).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    collective_device: torch.device = torch.device("cpu")
    backend: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def active(self) -> bool:
        """True under a distributed launch (also with one process: the DDP code path)."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place (moved through ``collective_device``)."""
        if not self.active:
            return tensor
        staged = tensor.to(self.collective_device)
        dist.all_reduce(staged, op=dist.ReduceOp.SUM)
        if staged is not tensor:
            tensor.copy_(staged)
        return tensor

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (picklable objects; tensors travel on the CPU)."""
        if not self.active:
            return obj
        holder = [obj if self.is_main else None]
        dist.broadcast_object_list(holder, src=0, device=self.collective_device)
        return holder[0]  # type: ignore[return-value]

    def all_gather_object(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.active:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def run_on_main(self, action: Callable[[], T], what: str) -> T:
        """Run ``action`` on rank 0 only and return its result on every rank.

        When it raises, rank 0 re-raises the original error and every other rank raises
        :class:`DistributedError` naming ``what`` and the reason, instead of waiting for rank 0
        at the next collective until the timeout. Single process: just ``action()``.
        """
        if not self.active:
            return action()
        outcome: tuple[str, Any] | None = None
        failure: BaseException | None = None
        if self.is_main:
            try:
                outcome = ("ok", action())
            except BaseException as error:  # reported to the other ranks, then re-raised
                failure = error
                outcome = ("error", f"{type(error).__name__}: {error}")
        status, value = self.broadcast_object(outcome)  # type: ignore[misc]
        if failure is not None:
            raise failure
        if status == "error":
            raise DistributedError(f"rank {self.rank}: rank 0 failed to {what}: {value}")
        return value

    def check_same(self, value: Any, what: str) -> None:
        """Raise on every rank unless all ranks hold the same ``value`` (compared by digest)."""
        if not self.active:
            return
        digest = hashlib.sha256(repr(value).encode()).hexdigest()
        digests = self.all_gather_object(digest)
        differing = [rank for rank, other in enumerate(digests) if other != digests[0]]
        if differing:
            raise DistributedError(
                f"ranks {differing} disagree with rank 0 about {what}: every rank must read the "
                "same data with the same configuration"
            )


def _backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def _rank_device(device: torch.device, local_rank: int) -> torch.device:
    """A CUDA rank computes on ``cuda:LOCAL_RANK`` (one GPU per process)."""
    if device.type != "cuda":
        return device
    visible = torch.cuda.device_count()
    if local_rank >= visible:
        raise DistributedError(
            f"LOCAL_RANK={local_rank} but only {visible} CUDA device(s) are visible: start at "
            "most one process per GPU (torchrun --nproc_per_node) or check CUDA_VISIBLE_DEVICES"
        )
    if device.index is not None and device.index != local_rank:
        logger.warning(
            "device %s requested, but a distributed rank uses its own GPU: cuda:%d",
            device,
            local_rank,
        )
    return torch.device("cuda", local_rank)


def _destroy_process_group() -> None:
    if dist.is_initialized():
        with contextlib.suppress(Exception):  # at exit, a broken group must not mask the error
            dist.destroy_process_group()


def setup_distributed(
    device: torch.device,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    environ: Mapping[str, str] | None = None,
) -> DistContext:
    """Join (or reuse) the process group of a distributed launch; a single process gets a
    context whose collectives do nothing.

    ``device`` is the device the caller resolved (``resolve_device``); a CUDA device becomes
    this rank's GPU. The group is created once per process, with ``timeout_s`` for the
    rendezvous and every collective (later calls keep the first call's timeout), and destroyed
    at interpreter exit. A group created by the caller (``torch.distributed.init_process_group``
    before the first call) is used as it is.

    Raises:
        DistributedError: a bad rendezvous variable, too few GPUs, a group whose backend does
            not fit ``device``, or ranks that do not all join within ``timeout_s``.
    """
    if timeout_s <= 0:
        raise ValueError(f"distributed timeout must be > 0 seconds, got {timeout_s}")
    launch = launch_from_env(environ)
    if dist.is_available() and dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
        local_rank = launch.local_rank if launch is not None else 0
        if launch is not None and launch.world_size != world_size:
            raise DistributedError(
                f"WORLD_SIZE={launch.world_size} but the existing process group has {world_size} "
                "ranks"
            )
        backend = str(dist.get_backend())
        if device.type == "cuda" and "nccl" not in backend:
            raise DistributedError(
                f"the process group uses {backend}, which cannot reduce CUDA tensors efficiently;"
                " create it with nccl or compute on the CPU"
            )
        if device.type != "cuda" and "gloo" not in backend:
            raise DistributedError(
                f"the process group uses {backend} but this run computes on {device}: use the "
                "same device type for every step of one launch"
            )
        device = _rank_device(device, local_rank)
        collective = device if "nccl" in backend else torch.device("cpu")
        # A group's timeout is fixed when it is created; report the one in force.
        in_force = _created_group.get("timeout_s", timeout_s)
        return DistContext(rank, world_size, local_rank, device, collective, backend, in_force)
    if launch is None:
        return DistContext(device=device, collective_device=torch.device("cpu"))
    if not dist.is_available():
        raise DistributedError("this PyTorch build has no torch.distributed support")

    device = _rank_device(device, launch.local_rank)
    backend = _backend_for(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            rank=launch.rank,
            world_size=launch.world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=device if device.type == "cuda" else None,
        )
    except (RuntimeError, ValueError) as error:  # torch's store errors subclass RuntimeError
        raise DistributedError(
            f"rank {launch.rank}: could not join the process group of {launch.world_size} "
            f"ranks at {launch.master_addr}:{launch.master_port} ({backend}, timeout "
            f"{timeout_s:g} s): {error}. Check that every rank was started, that MASTER_ADDR "
            "is reachable from every node and MASTER_PORT is free on it"
        ) from error
    _created_group["timeout_s"] = timeout_s
    atexit.register(_destroy_process_group)
    logger.info(
        "joined the %s process group as rank %d of %d (local rank %d, device %s)",
        backend,
        launch.rank,
        launch.world_size,
        launch.local_rank,
        device,
    )
    return DistContext(
        rank=launch.rank,
        world_size=launch.world_size,
        local_rank=launch.local_rank,
        device=device,
        collective_device=device if backend == "nccl" else torch.device("cpu"),
        backend=backend,
        timeout_s=timeout_s,
    )


def looks_like_peer_failure(error: BaseException) -> bool:
    """Whether ``error`` is what a collective raises when another rank died or stopped
    answering (torch reports both as plain ``RuntimeError`` messages)."""
    if isinstance(error, getattr(dist, "DistError", ())):
        return True
    text = str(error).lower()
    return any(
        marker in text
        for marker in ("closed by peer", "timed out", "timeout", "connection reset", "nccl")
    )


# ---------------------------------------------------------------------------------------------
# model wrapping


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) with a gradient: the gradient of a sum over ranks is the sum over the
    ranks of the incoming gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``tensor`` over all ranks (every rank must call it)."""
    return _SumOverRanks.apply(tensor)


class PortableSyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of the whole distributed batch, on any
    device and backend (``torch.nn.SyncBatchNorm`` only runs on GPUs).

    Training mode in an active process group of several ranks: the mean, then the biased
    variance, are all-reduced (differentiably, so the gradient is that of the global batch),
    and the running statistics are updated with the global mean and unbiased variance, exactly
    as one BatchNorm over the concatenated batch would. Otherwise it is a plain BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        x = input.float()
        dims = [0, *range(2, x.dim())]
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        local_count = x.new_full((1,), x.numel() // x.shape[1])
        totals = sum_over_ranks(torch.cat([x.sum(dims), local_count]))
        count = totals[-1]
        mean = totals[:-1] / count
        centered = x - mean.view(shape)
        var = sum_over_ranks((centered * centered).sum(dims)) / count
        y = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else self.momentum
                )
                unbiased = var * count / torch.clamp(count - 1, min=1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return y.to(input.dtype)


def _to_portable_sync(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm by a :class:`PortableSyncBatchNorm` sharing its parameters
    and buffers (like ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``)."""
    converted = module
    if isinstance(module, _BatchNorm) and not isinstance(module, PortableSyncBatchNorm):
        converted = PortableSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
    for name, child in module.named_children():
        converted.add_module(name, _to_portable_sync(child))
    return converted


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Synchronised batch norm for ``device``: torch's SyncBatchNorm on CUDA, the portable one
    elsewhere. Converts in place where possible; use the returned module."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_portable_sync(module)


def wrap_ddp(module: nn.Module, ctx: DistContext) -> nn.Module:
    """``DistributedDataParallel`` around ``module`` under a launch, else ``module`` itself.

    Buffers are synchronised at construction only, not at every forward: with synchronised
    batch norm they stay equal on all ranks anyway, and without it :func:`average_buffers`
    makes them equal once per epoch.
    """
    if not ctx.active:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, forward_sync_buffers=False)


def average_buffers(module: nn.Module, ctx: DistContext) -> None:
    """Average the floating-point buffers (batch-norm running statistics) over the ranks, so
    that every rank evaluates and saves the same model."""
    if not ctx.active or ctx.world_size == 1:
        return
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if not buffers:
        return
    flat = torch.cat([b.detach().reshape(-1).double() for b in buffers])
    ctx.all_reduce_sum(flat)
    flat /= ctx.world_size
    offset = 0
    with torch.no_grad():
        for buffer in buffers:
            buffer.copy_(flat[offset : offset + buffer.numel()].view_as(buffer))
            offset += buffer.numel()


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed (dropout) of one rank in one epoch: independent streams per rank, and
    reproducible after a resume without restoring every rank's generator state."""
    state = np.random.SeedSequence([seed, epoch, rank, 0xD15]).generate_state(1, np.uint64)
    return int(state[0])


# ---------------------------------------------------------------------------------------------
# logging


class RankLogger(logging.LoggerAdapter):
    """Rank 0 logs as usual; other ranks only log warnings and errors, prefixed with their rank,
    so N processes do not repeat every progress line."""

    def __init__(self, base: logging.Logger | logging.LoggerAdapter, rank: int) -> None:
        super().__init__(base if isinstance(base, logging.Logger) else base.logger, {})
        self.rank = rank

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's API name)
        return level >= logging.WARNING and self.logger.isEnabledFor(level)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return f"[rank {self.rank}] {msg}", kwargs


def rank_logger(
    base: logging.Logger | logging.LoggerAdapter, ctx: DistContext
) -> logging.Logger | logging.LoggerAdapter:
    """``base`` on rank 0 (and in a single process), a :class:`RankLogger` elsewhere."""
    return base if ctx.is_main else RankLogger(base, ctx.rank)
