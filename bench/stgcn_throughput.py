"""ST-GCN training and inference throughput: plain fp32 eager vs the optimised path.

Both configurations run our ``STGCN`` in the same process, from the same initial weights, on the
same random batch:

* baseline: fp32, contiguous (NCHW) activations, eager;
* optimised: channels-last activations (permute-free graph contraction; ``--layout contiguous``
  to isolate its effect), bf16 autocast (on CUDA, and on CPUs with native bf16),
  ``torch.compile`` (default on CUDA), fused SGD on CUDA.

TF32 is off and cuDNN autotuning on for both, so the baseline is true fp32. A training step is
forward + cross-entropy + backward + SGD (momentum 0.9, Nesterov, weight decay 1e-4) in train
mode with dropout 0.5; inference is an eval-mode forward under ``torch.inference_mode``. Data
stays on the device (this measures the model, not loading). The two configurations' timed steps
alternate, so load from other processes on a shared CPU hits both alike; samples/s come from the
median step time. Peak GPU memory is measured per configuration during its warm-up.
Ends with ``RESULT stgcn_train_speedup=<optimised / baseline training samples/s>``.

    python bench/stgcn_throughput.py                 # CPU here: batch 4, T=64, M=2
    python bench/stgcn_throughput.py --device cuda   # batch 64, T=300, M=2
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pose_zsl.models.stgcn import STGCN  # noqa: E402

NUM_CLASSES = 60


class Config:
    """One way of running the model: its own copy of the weights, optimiser and precision."""

    def __init__(
        self,
        name: str,
        model: STGCN,
        *,
        bf16: bool,
        compile_mode: str | None,
        fused_sgd: bool,
    ) -> None:
        self.name = name
        self.model = model
        self.device_type = next(model.parameters()).device.type
        self.bf16 = bf16
        self.runner: Callable[[torch.Tensor], torch.Tensor] = (
            torch.compile(model, mode=compile_mode) if compile_mode else model
        )
        self.optimiser = torch.optim.SGD(
            model.parameters(),
            lr=0.01,
            momentum=0.9,
            nesterov=True,
            weight_decay=1e-4,
            **({"fused": True} if fused_sgd else {}),
        )
        self.train_times: list[float] = []
        self.infer_times: list[float] = []
        self.warmup_s = {"train": 0.0, "infer": 0.0}
        self.peak_train_gib: float | None = None
        self.failed: str | None = None

    def autocast(self) -> AbstractContextManager[object]:
        if self.bf16:
            return torch.autocast(self.device_type, dtype=torch.bfloat16)
        return nullcontext()

    def train_step(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        with self.autocast():
            loss = F.cross_entropy(self.runner(x), labels)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()

    def infer_step(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        with torch.inference_mode(), self.autocast():
            self.runner(x)

    def samples_per_s(self, phase: str, batch: int) -> float:
        times = self.train_times if phase == "train" else self.infer_times
        return batch / statistics.median(times) if times and not self.failed else math.nan


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch", type=int, help="default: 64 on CUDA, 4 on CPU")
    parser.add_argument("--frames", type=int, help="default: 300 on CUDA, 64 on CPU")
    parser.add_argument("--bodies", type=int, default=2)
    parser.add_argument("--steps", type=int, help="timed steps; default: 20 on CUDA, 3 on CPU")
    parser.add_argument("--warmup", type=int, help="untimed steps; default: 3 on CUDA, 1 on CPU")
    parser.add_argument("--width", type=float, default=1.0, help="STGCN width_multiplier")
    parser.add_argument(
        "--compile", choices=("auto", "on", "off"), default="auto", help="auto: on for CUDA"
    )
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode")
    parser.add_argument(
        "--bf16", choices=("auto", "on", "off"), default="auto", help="auto: CUDA or bf16 CPUs"
    )
    parser.add_argument(
        "--layout",
        choices=("channels_last", "contiguous"),
        default="channels_last",
        help="activation layout of the optimised path",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    return parser.parse_args(argv)


def _cpu_has_native_bf16() -> bool:
    return torch.backends.cpu.get_cpu_capability() in ("AVX512_BF16", "AMX")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(
    config: Config,
    phase: str,
    x: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    record: bool,
) -> None:
    """One step of ``phase`` ("train"/"infer"); an out-of-memory error disables the config."""
    if config.failed:
        return
    step = config.train_step if phase == "train" else config.infer_step
    start = time.perf_counter()
    try:
        step(x, labels)
        _synchronize(device)
    except torch.cuda.OutOfMemoryError as error:
        config.failed = f"out of GPU memory: {str(error).splitlines()[0]}"
        print(f"{config.name}: {config.failed}", flush=True)
        config.optimiser.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        return
    elapsed = time.perf_counter() - start
    if record:
        (config.train_times if phase == "train" else config.infer_times).append(elapsed)
    else:
        config.warmup_s[phase] += elapsed


def _measure(
    configs: list[Config],
    x: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    warmup: int,
    steps: int,
) -> None:
    for phase in ("train", "infer"):
        for config in configs:
            config.model.train(phase == "train")
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            for _ in range(max(warmup, 1)):  # the first step compiles
                _run(config, phase, x, labels, device, record=False)
            if phase == "train" and device.type == "cuda" and not config.failed:
                config.peak_train_gib = torch.cuda.max_memory_allocated(device) / 2**30
            print(f"  {config.name}: {phase} warm-up {config.warmup_s[phase]:.1f} s", flush=True)
        for _ in range(steps):
            for config in configs:
                config.model.train(phase == "train")
                _run(config, phase, x, labels, device, record=True)


@dataclass(frozen=True)
class Settings:
    """The run's device and sizes: the command-line values, or the device's defaults."""

    device: torch.device
    batch: int
    frames: int
    steps: int
    warmup: int
    use_compile: bool
    use_bf16: bool

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"


def _device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but torch.cuda.is_available() is False")
    return device


def _settings(args: argparse.Namespace) -> Settings:
    device = _device(args.device)
    on_cuda = device.type == "cuda"
    return Settings(
        device=device,
        batch=args.batch or (64 if on_cuda else 4),
        frames=args.frames or (300 if on_cuda else 64),
        steps=args.steps or (20 if on_cuda else 3),
        warmup=args.warmup if args.warmup is not None else (3 if on_cuda else 1),
        use_compile=args.compile == "on" or (args.compile == "auto" and on_cuda),
        use_bf16=args.bf16 == "on" or (args.bf16 == "auto" and (on_cuda or _cpu_has_native_bf16())),
    )


def _print_header(args: argparse.Namespace, settings: Settings) -> None:
    hardware = (
        torch.cuda.get_device_name(settings.device)
        if settings.on_cuda
        else f"{torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}"
    )
    print(
        f"torch {torch.__version__}, {settings.device} ({hardware}); batch {settings.batch}, "
        f"T={settings.frames}, M={args.bodies}, V=25, width {args.width}; {settings.warmup} "
        f"warm-up + {settings.steps} timed steps"
    )
    compile_text = f"on, mode {args.compile_mode}" if settings.use_compile else "off"
    print(
        f"optimised path: {args.layout}, bf16 autocast {'on' if settings.use_bf16 else 'off'}, "
        f"torch.compile {compile_text}",
        flush=True,
    )


def _use_true_fp32() -> None:
    """cuDNN autotuning on, TF32 off: the baseline is true fp32."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def _inputs(args: argparse.Namespace, settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """The random batch and labels every step uses (seeded: the same on every run)."""
    torch.manual_seed(0)
    shape = (settings.batch, 3, settings.frames, 25, args.bodies)
    x = torch.randn(*shape, device=settings.device)
    labels = torch.randint(0, NUM_CLASSES, (settings.batch,), device=settings.device)
    if not bool(torch.isfinite(x).all()):  # validated once here, not on every step
        raise SystemExit("non-finite benchmark input")
    return x, labels


def _configs(args: argparse.Namespace, settings: Settings) -> tuple[Config, Config]:
    """The fp32 eager baseline and the optimised path, each on a copy of the same weights."""
    initial = STGCN(num_classes=NUM_CLASSES, width_multiplier=args.width, check_finite=False)
    baseline = Config(
        "fp32 eager",
        copy.deepcopy(initial).to(settings.device),
        bf16=False,
        compile_mode=None,
        fused_sgd=False,
    )
    optimised = Config(
        "optimised",
        copy.deepcopy(initial)
        .to(settings.device)
        .set_channels_last(args.layout == "channels_last"),
        bf16=settings.use_bf16,
        compile_mode=args.compile_mode if settings.use_compile else None,
        fused_sgd=settings.on_cuda,
    )
    return baseline, optimised


def _first_eval(
    baseline: Config, optimised: Config, x: torch.Tensor, device: torch.device
) -> tuple[float, float]:
    """Max |logit difference| of the two paths on the shared initial weights, before any
    training step, and the logit scale. For the optimised path this also compiles its inference
    graph (same batch shape as the timed steps)."""
    with torch.inference_mode():
        fp32_logits = baseline.model.eval()(x).float()
        optimised.model.eval()
        start = time.perf_counter()
        with optimised.autocast():
            fast_logits = optimised.runner(x).float()
        _synchronize(device)
        first_eval_s = time.perf_counter() - start
    print(f"  optimised: first eval forward (compiles when on) {first_eval_s:.1f} s", flush=True)
    drift = (fast_logits - fp32_logits).abs().max().item()
    return drift, fp32_logits.abs().max().item()


def _report(baseline: Config, optimised: Config, batch: int, drift: float, scale: float) -> float:
    """Print the table, step times, logit drift and speed-ups; returns the training speed-up."""
    print()
    print(f"{'config':<12} {'train samples/s':>16} {'infer samples/s':>16} {'peak train GiB':>15}")
    for config in (baseline, optimised):
        peak = f"{config.peak_train_gib:.2f}" if config.peak_train_gib is not None else "-"
        print(
            f"{config.name:<12} {config.samples_per_s('train', batch):>16.2f} "
            f"{config.samples_per_s('infer', batch):>16.2f} {peak:>15}"
        )
    for config in (baseline, optimised):
        times = ", ".join(f"{t:.3f}" for t in config.train_times)
        print(f"{config.name} train step times (s): {times}")
    print(
        f"optimised vs fp32 eval logits on the initial weights: max |diff| {drift:.2e} "
        f"(logit scale {scale:.2e})"
    )
    train_ratio = optimised.samples_per_s("train", batch) / baseline.samples_per_s("train", batch)
    infer_ratio = optimised.samples_per_s("infer", batch) / baseline.samples_per_s("infer", batch)
    print(f"speed-up: train x{train_ratio:.2f}, inference x{infer_ratio:.2f}")
    print(f"RESULT stgcn_train_speedup={train_ratio:.3f}")
    return train_ratio


def main(argv: list[str] | None = None) -> float:
    args = _parse_args(argv)
    settings = _settings(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    _print_header(args, settings)
    _use_true_fp32()
    x, labels = _inputs(args, settings)
    baseline, optimised = _configs(args, settings)
    drift, scale = _first_eval(baseline, optimised, x, settings.device)
    _measure([baseline, optimised], x, labels, settings.device, settings.warmup, settings.steps)
    return _report(baseline, optimised, settings.batch, drift, scale)


if __name__ == "__main__":
    main()
