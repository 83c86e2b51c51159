"""Relation Network training speed: vectorised episodes vs the per-class loop baseline.

Both run in this process on the same data, sizes, model initialisation and optimiser:

* vectorised: :func:`pose_zsl.training.head_trainer.train_head` (``relation_net``), which scores all
  ``(sample, class)`` pairs of an episode in one batched pass;
* per-class loop (the baseline, as in a straightforward port of the original code): for each
  class, concatenate the episode's features with that class's projected embedding and run the
  relation net, then stack the ``K`` columns;
* per-pair loop (information only, ``--pair-episodes 0`` skips it): one relation-net call per
  ``(sample, class)`` pair.

Rounds alternate between the variants so that load from other processes hits them alike; the
median rate over rounds is reported. The last line is ``RESULT relation_net_speedup=<ratio>``
(vectorised / per-class loop episodes per second).

CPU runs use one torch thread by default (``--threads``): the kernels are small, and on a shared
host OpenMP barriers stall on descheduled threads, which slows every variant unevenly.

Usage: ``python bench/relation_net.py [--device auto|cpu|cuda] [--rounds 3] [--threads 1]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pose_zsl.models.heads import (  # noqa: E402
    RelationNetConfig,
    RelationNetwork,
    build_head,
    l2_normalise,
    relation_mse_loss,
)
from pose_zsl.training.head_trainer import (  # noqa: E402
    relation_net_optimizer,
    train_head,
)

NUM_CLASSES = 60
NUM_SEEN = 55
EMBEDDING_DIM = 384
FEATURE_DIM = 256
SAMPLES_PER_CLASS = 40
PAPER_EPISODES = 400_000


def synthetic_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seen-class features, their labels and all class embeddings (random, fixed seed)."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(NUM_CLASSES, EMBEDDING_DIM)).astype(np.float32)
    mapping = rng.normal(size=(EMBEDDING_DIM, FEATURE_DIM)).astype(np.float32)
    labels = np.repeat(np.arange(NUM_SEEN), SAMPLES_PER_CLASS)
    features = embeddings[labels] @ mapping + rng.normal(size=(labels.size, FEATURE_DIM))
    return features.astype(np.float32), labels, embeddings


def loop_trainer(
    features: np.ndarray,
    labels: np.ndarray,
    embeddings: np.ndarray,
    config: RelationNetConfig,
    *,
    device: torch.device,
    per_pair: bool,
) -> Callable[[int], None]:
    """A trainer running ``n`` episodes with a Python loop over classes (or pairs)."""
    torch.manual_seed(0)
    model = build_head("relation_net", FEATURE_DIM, EMBEDDING_DIM, config)
    assert isinstance(model, RelationNetwork)
    model.to(device).train()
    optimizer, scheduler = relation_net_optimizer(model, config)
    feats = torch.from_numpy(l2_normalise("features", features)).to(device)
    classes = torch.from_numpy(l2_normalise("class_embeddings", embeddings)).to(device)
    targets = torch.from_numpy(labels).to(device)
    generator = torch.Generator().manual_seed(0)

    def relations_per_class(batch_features: torch.Tensor) -> torch.Tensor:
        projected = model.project_classes(classes)
        columns = []
        for k in range(projected.shape[0]):
            pairs = torch.cat(
                [batch_features, projected[k].expand(batch_features.shape[0], -1)], dim=1
            )
            columns.append(model.relate_concatenated(pairs))
        return torch.stack(columns, dim=1)

    def relations_per_pair(batch_features: torch.Tensor) -> torch.Tensor:
        projected = model.project_classes(classes)
        rows = []
        for i in range(batch_features.shape[0]):
            row = [
                model.relate_concatenated(torch.cat([batch_features[i], projected[k]])[None])
                for k in range(projected.shape[0])
            ]
            rows.append(torch.cat(row))
        return torch.stack(rows)

    relations_of = relations_per_pair if per_pair else relations_per_class

    def run(episodes: int) -> None:
        for _ in range(episodes):
            batch = torch.randint(feats.shape[0], (config.batch_size,), generator=generator)
            batch = batch.to(device)
            loss = relation_mse_loss(relations_of(feats[batch]), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        _sync(device)

    return run


def vectorised_trainer(
    features: np.ndarray,
    labels: np.ndarray,
    embeddings: np.ndarray,
    config: RelationNetConfig,
    device: torch.device,
) -> Callable[[int], None]:
    """Runs the product training function for ``n`` episodes."""

    def run(episodes: int) -> None:
        train_head(
            "relation_net",
            features,
            labels,
            embeddings,
            np.arange(NUM_CLASSES),
            seen_class_ids=np.arange(NUM_SEEN),
            config=replace(config, episodes=episodes, log_every=max(episodes, 1)),
            seed=0,
            device=device,
        )
        _sync(device)

    return run


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def episodes_per_second(run: Callable[[int], None], episodes: int) -> float:
    start = time.perf_counter()
    run(episodes)
    return episodes / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    parser.add_argument("--episodes", type=int, default=300, help="vectorised episodes per round")
    parser.add_argument("--loop-episodes", type=int, default=10, help="per-class loop episodes")
    parser.add_argument(
        "--pair-episodes",
        type=int,
        default=1,
        help="per-pair loop episodes per round (0 skips this variant)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch default); 1 keeps small kernels steady on a shared host",
    )
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda"
        if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    config = RelationNetConfig()  # paper settings and widths; only the episode count changes
    features, labels, embeddings = synthetic_problem()
    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}"
        f"{torch.get_num_threads()} CPU threads), K={NUM_CLASSES} classes, E={EMBEDDING_DIM}, "
        f"{config.batch_size} samples/episode, attribute_hidden={config.attribute_hidden}, "
        f"relation_hidden={config.relation_hidden}"
    )
    variants: dict[str, tuple[Callable[[int], None], int]] = {
        "vectorised": (
            vectorised_trainer(features, labels, embeddings, config, device),
            args.episodes,
        ),
        "per-class loop": (
            loop_trainer(features, labels, embeddings, config, device=device, per_pair=False),
            args.loop_episodes,
        ),
    }
    if args.pair_episodes > 0:
        variants["per-pair loop"] = (
            loop_trainer(features, labels, embeddings, config, device=device, per_pair=True),
            args.pair_episodes,
        )
    for run, _ in variants.values():  # warm-up: allocator, kernels, lazy init
        run(2)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (run, episodes) in variants.items():
            rates[name].append(episodes_per_second(run, episodes))

    median = {name: statistics.median(values) for name, values in rates.items()}
    for name, rate in median.items():
        hours = PAPER_EPISODES / rate / 3600
        print(
            f"{name:>15}: {rate:10.2f} episodes/s  (rounds: "
            f"{', '.join(f'{r:.2f}' for r in rates[name])}); "
            f"{PAPER_EPISODES} episodes ~ {PAPER_EPISODES / rate:,.0f} s ({hours:.2f} h)"
        )
    ratio = median["vectorised"] / median["per-class loop"]
    print(f"speedup vectorised / per-class loop: {ratio:.1f}x")
    if "per-pair loop" in median:
        pair_ratio = median["vectorised"] / median["per-pair loop"]
        print(f"speedup vectorised / per-pair loop: {pair_ratio:.1f}x (information only)")
    print(f"RESULT relation_net_speedup={ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
