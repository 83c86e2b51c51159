"""ST-GCN (Yan, Xiong and Lin, AAAI 2018), a parity-exact port of the original implementation.

The module tree and parameter names mirror ``github.com/yysijie/st-gcn`` (``net/st_gcn.py``) so
that its ``state_dict`` loads key for key (``load_reference_state_dict``); the fixtures in
``shared/fixtures/stgcn`` pin logits, features and the adjacency to the original's numbers.

Data flow for an input ``x`` of shape (N, C, T, V, M):

* ``data_bn`` (BatchNorm1d over V*C channels, joint-major: channel ``v*C + c``), statistics
  shared by all bodies and frames;
* bodies folded into the batch: the backbone runs on N*M single-body sequences (row n*M + m);
* 10 blocks ``relu(tcn(gcn(x, A * importance)) + residual(x))``;
* global average over (T', V) per body, then the mean over the M bodies (all-zero padding bodies
  included, as in the original), giving the (N, 256) feature; a 1x1 ``fcn`` gives the logits.

The graph convolution is the 1x1 convolution to K*C channels followed by a single contraction
over (partition, source joint) with the stacked adjacency: no Python loop over joints or
partitions, no data-dependent control flow in the network, so ``torch.compile`` captures it whole
(input validation, which must look at the values, runs outside the compiled graph).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pose_zsl.models.graph import build_adjacency
from pose_zsl.skeleton.layouts import Layout, get_layout

__all__ = [
    "REFERENCE_CHANNELS",
    "REFERENCE_STRIDES",
    "STGCN",
    "STGCNBlock",
    "SpatialGraphConv",
    "block_channels",
]

# (out channels, temporal stride) of the ten blocks of the original network.
REFERENCE_CHANNELS: tuple[int, ...] = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
REFERENCE_STRIDES: tuple[int, ...] = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)
TEMPORAL_KERNEL = 9


def block_channels(width_multiplier: float = 1.0) -> tuple[int, ...]:
    """Output channels of the ten blocks for a width multiplier (1.0: the reference widths)."""
    if not (math.isfinite(width_multiplier) and width_multiplier > 0):
        raise ValueError(f"width_multiplier must be a positive number, got {width_multiplier}")
    return tuple(max(1, round(c * width_multiplier)) for c in REFERENCE_CHANNELS)


class SpatialGraphConv(nn.Module):
    """The original ``ConvTemporalGraphical`` with temporal kernel 1.

    ``y[n, c, t, w] = sum_k sum_v (W_k x + b_k)[n, c, t, v] * A[k, v, w]``: a 1x1 convolution to
    K*C channels (subset-major, channel ``k*C + c``), then one contraction over (k, v), in the
    original's order of operations.

    Two equivalent layouts of that contraction:

    * contiguous (NCHW) activations: the reference ``einsum("nkctv,kvw->nctw")`` (one permuted
      copy of the K*C-channel tensor, then a single matrix product);
    * channels-last activations (``channels_last=True``): the conv output is already laid out
      (N, T, V, K, C), so ``(v, k)`` are adjacent and the contraction is one batched product with
      the (W, V*K) adjacency broadcast over the N*T rows, with no permuted copy; its output
      (N, T, W, C) is channels-last again for the temporal convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.num_subsets = num_subsets
        self.channels_last = False
        self.conv = nn.Conv2d(in_channels, out_channels * num_subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        if not self.channels_last:
            h = h.unflatten(1, (self.num_subsets, self.out_channels))
            return torch.einsum("nkctv,kvw->nctw", h, adjacency)
        n, _, t, v = h.shape
        k, _, w = adjacency.shape
        # (N, K*C, T, V) channels-last is (N, T, V, K, C) in memory: a view, no copy.
        rows = h.permute(0, 2, 3, 1).reshape(n * t, v * k, self.out_channels)
        mixing = adjacency.permute(2, 1, 0).reshape(w, v * k).to(rows.dtype)
        y = torch.bmm(mixing.expand(n * t, w, v * k), rows)
        return y.view(n, t, w, self.out_channels).permute(0, 3, 1, 2)


class STGCNBlock(nn.Module):
    """One spatial-temporal block: ``relu(tcn(gcn(x)) + residual(x))``.

    ``residual`` is ``"none"`` (adds 0), ``"identity"`` or ``"conv"`` (1x1 strided conv + BN); the
    original picks ``"none"`` for block 0 and ``"conv"`` where channels or stride change.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_subsets: int,
        *,
        stride: int = 1,
        dropout: float = 0.0,
        residual: str = "identity",
    ) -> None:
        super().__init__()
        if residual not in ("none", "identity", "conv"):
            raise ValueError(f"residual must be 'none', 'identity' or 'conv', got {residual!r}")
        if residual == "identity" and (in_channels != out_channels or stride != 1):
            raise ValueError("an identity residual needs in == out channels and stride 1")
        self.gcn = SpatialGraphConv(in_channels, out_channels, num_subsets)
        # Indices 0..4 match the original's Sequential, hence its state-dict keys tcn.0/2/3.
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(
                out_channels,
                out_channels,
                kernel_size=(TEMPORAL_KERNEL, 1),
                stride=(stride, 1),
                padding=((TEMPORAL_KERNEL - 1) // 2, 0),
            ),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout, inplace=True),
        )
        self.residual_mode = residual
        self.residual: nn.Module | None = None
        if residual == "conv":
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x, adjacency))
        if self.residual is not None:
            y = y + self.residual(x)
        elif self.residual_mode == "identity":
            y = y + x
        return self.relu(y)


class STGCN(nn.Module):
    """Spatial temporal graph convolutional network.

    Args:
        in_channels: coordinates per joint C (3 for x, y, z).
        num_classes: classifier outputs.
        layout: skeleton layout name (see ``pose_zsl.skeleton.layouts``).
        partition: ``"uniform"``, ``"distance"`` or ``"spatial"``.
        edge_importance: learn a per-block mask multiplied into the adjacency.
        dropout: dropout after the temporal convolution of blocks 1-9 (block 0 has none, as in
            the original).
        reference_exact_graph: spatial partition with the original's truncated hop distances
            (True, needed to load its checkpoints) or true BFS distances (False); see
            ``pose_zsl.models.graph``.
        width_multiplier: scales every block's channels; 1.0 is the reference network. Smaller
            widths make CPU runs on synthetic data affordable; ``feature_dim`` follows.
        max_hop, dilation: graph neighbourhood (original: 1, 1).
        check_finite: ``forward`` rejects inputs with NaN/inf. This reads the values (a host
            sync on GPU); a training loop that validates batches on the host may turn it off.
        channels_last: run the backbone on channels-last activations (see
            ``set_channels_last``); the fast layout for GPU convolutions. Same numbers.

    ``forward(x)`` maps (N, C, T, V, M) to (N, num_classes) logits; ``extract_features(x)`` gives
    the pooled (N, feature_dim) embedding the logits are computed from.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 60,
        layout: str | Layout = "ntu-rgb+d",
        *,
        partition: str = "spatial",
        edge_importance: bool = True,
        dropout: float = 0.5,
        reference_exact_graph: bool = True,
        width_multiplier: float = 1.0,
        max_hop: int = 1,
        dilation: int = 1,
        check_finite: bool = True,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.layout = get_layout(layout) if isinstance(layout, str) else layout
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.partition = partition
        self.reference_exact_graph = reference_exact_graph
        self.width_multiplier = width_multiplier
        self.check_finite = check_finite
        self._config: dict[str, object] = {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "layout": self.layout.name,
            "partition": partition,
            "edge_importance": edge_importance,
            "dropout": dropout,
            "reference_exact_graph": reference_exact_graph,
            "width_multiplier": width_multiplier,
            "max_hop": max_hop,
            "dilation": dilation,
        }

        adjacency = torch.from_numpy(
            build_adjacency(self.layout, partition, max_hop, dilation, reference_exact_graph)
        )
        self.register_buffer("A", adjacency)
        num_subsets, num_joints, _ = adjacency.shape

        channels = block_channels(width_multiplier)
        self.feature_dim = channels[-1]
        self.data_bn = nn.BatchNorm1d(in_channels * num_joints)
        blocks = []
        previous = in_channels
        for index, (out, stride) in enumerate(zip(channels, REFERENCE_STRIDES, strict=True)):
            if index == 0:
                residual = "none"
            elif previous == out and stride == 1:
                residual = "identity"
            else:
                residual = "conv"
            blocks.append(
                STGCNBlock(
                    previous,
                    out,
                    num_subsets,
                    stride=stride,
                    dropout=0.0 if index == 0 else dropout,
                    residual=residual,
                )
            )
            previous = out
        self.st_gcn_networks = nn.ModuleList(blocks)
        self.edge_importance: nn.ParameterList | None = None
        if edge_importance:
            self.edge_importance = nn.ParameterList(
                [nn.Parameter(torch.ones_like(adjacency)) for _ in blocks]
            )
        self.fcn = nn.Conv2d(self.feature_dim, num_classes, kernel_size=1)
        self.channels_last = False
        if channels_last:
            self.set_channels_last(True)

    def config(self) -> dict[str, object]:
        """Constructor arguments that rebuild this architecture: ``STGCN(**model.config())``.

        Plain Python values (the layout by name), suitable for a checkpoint's metadata.
        Run-time switches (``check_finite``, ``channels_last``) are not part of it.
        """
        return dict(self._config)

    def set_channels_last(self, enabled: bool = True) -> STGCN:
        """Switch the backbone between channels-last and contiguous activations (in place).

        Converts the convolution weights' memory format and the graph convolution's contraction
        (see ``SpatialGraphConv``). Results are the same up to float rounding; state-dict keys
        and shapes do not change. Returns ``self``.
        """
        self.channels_last = bool(enabled)
        memory_format = torch.channels_last if enabled else torch.contiguous_format
        for module in self.modules():
            if isinstance(module, SpatialGraphConv):
                module.channels_last = self.channels_last
        # Only the 4-D convolution weights have a channels-last form.
        return self.to(memory_format=memory_format)

    # ------------------------------------------------------------------ input checks
    def validate_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is a finite (N, C, T, V, M) batch for this model."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"STGCN input must be a torch.Tensor, got {type(x).__name__}")
        self._validate_shape(x)
        if self.check_finite:
            self._validate_finite(x)

    def _validate_shape(self, x: torch.Tensor) -> None:
        if x.dim() != 5:
            raise ValueError(f"STGCN input must be 5-D (N, C, T, V, M), got shape {tuple(x.shape)}")
        n, c, t, v, m = x.shape
        if c != self.in_channels:
            raise ValueError(
                f"STGCN input has C={c} channels, expected in_channels={self.in_channels} "
                f"(shape (N, C, T, V, M) = {tuple(x.shape)})"
            )
        if v != self.layout.num_joints:
            raise ValueError(
                f"STGCN input has V={v} joints, layout {self.layout.name!r} expects "
                f"{self.layout.num_joints} (shape (N, C, T, V, M) = {tuple(x.shape)})"
            )
        if n < 1 or t < 1 or m < 1:
            raise ValueError(f"STGCN input has an empty dimension: shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"STGCN input must be floating point, got {x.dtype}")

    @torch.compiler.disable
    def _validate_finite(self, x: torch.Tensor) -> None:
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(f"STGCN input contains {bad} NaN/inf value(s)")

    # ------------------------------------------------------------------ forward passes
    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """Last block's activation, (N*M, feature_dim, T', V), body-major rows ``n*M + m``.

        No input validation: call ``validate_input`` first when the data is untrusted.
        """
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x)
        if self.channels_last:
            # (N*M, T, V, C) in memory, seen as (N*M, C, T, V) channels-last.
            x = x.view(n, m, v, c, t).permute(0, 1, 4, 2, 3).reshape(n * m, t, v, c)
            x = x.permute(0, 3, 1, 2)
        else:
            x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        if self.edge_importance is None:
            for block in self.st_gcn_networks:
                x = block(x, self.A)
        else:
            for block, importance in zip(self.st_gcn_networks, self.edge_importance, strict=True):
                x = block(x, self.A * importance)
        return x

    def pool(self, activation: torch.Tensor, num_bodies: int) -> torch.Tensor:
        """Mean over (T', V) per body, then over the bodies: (N*M, C', T', V) -> (N, C')."""
        pooled = activation.mean(dim=(2, 3))
        return pooled.view(-1, num_bodies, pooled.shape[1]).mean(dim=1)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from pooled features (N, feature_dim) -> (N, num_classes)."""
        return F.linear(features, self.fcn.weight.flatten(1), self.fcn.bias)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, num_classes), pooled features (N, feature_dim)) from one pass."""
        self.validate_input(x)
        features = self.pool(self.backbone(x), x.shape[4])
        return self.classify(features), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for a batch (N, C, T, V, M)."""
        return self.forward_with_features(x)[0]

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (N, feature_dim): mean over T', V, then over the M bodies."""
        self.validate_input(x)
        return self.pool(self.backbone(x), x.shape[4])

    def extract_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Unpooled last-block activation laid out (N, feature_dim, T', V, M), as the original's
        ``extract_feature(x)[1]``."""
        self.validate_input(x)
        activation = self.backbone(x)
        nm, c, t, v = activation.shape
        n, m = x.shape[0], x.shape[4]
        return activation.view(n, m, c, t, v).permute(0, 2, 3, 4, 1).contiguous()

    # ------------------------------------------------------------------ reference checkpoints
    def load_reference_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load a ``state_dict`` of the original implementation (same keys), strictly.

        Raises:
            ValueError: naming every missing, unexpected or wrongly shaped key, or when the
                checkpoint's adjacency ``A`` differs from this model's graph (e.g. a BFS-graph
                model given a reference checkpoint).
        """
        if not isinstance(state_dict, Mapping):
            raise ValueError(
                f"expected a state_dict mapping of tensors, got {type(state_dict).__name__}"
            )
        problems = _key_and_shape_problems(self.state_dict(), state_dict)
        if problems:
            raise ValueError(
                "incompatible ST-GCN checkpoint for "
                f"STGCN(in_channels={self.in_channels}, num_classes={self.num_classes}, "
                f"layout={self.layout.name!r}, partition={self.partition!r}, "
                f"edge_importance={self.edge_importance is not None}, "
                f"width_multiplier={self.width_multiplier}): " + "; ".join(problems)
            )
        adjacency = state_dict["A"].to(dtype=self.A.dtype, device=self.A.device)
        if not torch.allclose(adjacency, self.A, rtol=0.0, atol=1e-6):
            raise ValueError(
                "checkpoint adjacency 'A' differs from this model's graph "
                f"(layout={self.layout.name!r}, partition={self.partition!r}, "
                f"reference_exact_graph={self.reference_exact_graph}); the original "
                "implementation's checkpoints need reference_exact_graph=True"
            )
        for key, value in state_dict.items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise ValueError(f"checkpoint entry {key!r} contains NaN/inf")
        self.load_state_dict(dict(state_dict), strict=True)
        if self.channels_last:
            self.set_channels_last(True)


def _key_and_shape_problems(
    own: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor]
) -> list[str]:
    """What keeps ``state_dict`` from loading into a model whose own state dict is ``own``:
    missing and unexpected keys, non-tensors and wrong shapes (empty when it fits)."""
    missing = [key for key in own if key not in state_dict]
    unexpected = [key for key in state_dict if key not in own]
    mismatched = []
    for key, value in state_dict.items():
        if key not in own:
            continue
        if not isinstance(value, torch.Tensor):
            mismatched.append(f"{key}: not a tensor ({type(value).__name__})")
        elif value.shape != own[key].shape:
            mismatched.append(
                f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}"
            )
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_preview(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {_preview(mismatched)}")
    return problems


def _preview(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")
