#!/usr/bin/env bash
# One short GPU check for the ST-GCN model (run from the repo root on a lent GPU machine).
#
#   bash bench/gpu_check.sh [FIXTURES_DIR]
#
# 1. nvidia-smi and the first python whose torch sees CUDA (the project .venv is CPU-only torch;
#    the GPU image's python3 has CUDA torch and everything the model needs: torch, numpy);
# 2. if FIXTURES_DIR (a copy of shared/fixtures/stgcn, which does not travel by itself) is given:
#    perturbed-fixture parity on CUDA in fp32 (TF32 off) for both activation layouts, and the
#    bf16-autocast deviation;
# 3. bench/stgcn_throughput.py at T=300, M=2, batch 64 (fp32 eager vs channels-last + bf16 +
#    torch.compile), ending with its RESULT line.
# Logs go to $OUT when set (the device tool returns that folder). About 4-6 minutes on an H100,
# most of it torch.compile.
set -uo pipefail
export PYTHONUNBUFFERED=1
LOG_DIR=${OUT:-/tmp/gpu_check}
mkdir -p "$LOG_DIR"
FIXTURES=${1:-}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true

PY=""
for candidate in python3 /opt/torch/.venv/bin/python3 .venv/bin/python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" \
            >/dev/null 2>&1; then
        PY=$candidate
        break
    fi
done
if [ -z "$PY" ]; then
    echo "no python with CUDA-enabled torch found" >&2
    exit 1
fi
"$PY" -c "import torch; print('python', __import__('sys').executable, '| torch', torch.__version__,
'| cuda', torch.version.cuda, '|', torch.cuda.get_device_name())"

if [ -n "$FIXTURES" ]; then
    PYTHONPATH=src "$PY" - "$FIXTURES" <<'PYEOF' 2>&1 | tee "$LOG_DIR/gpu_parity.log"
import sys
from pathlib import Path

import torch

from pose_zsl.models.stgcn import STGCN

fixtures = Path(sys.argv[1])
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False


def load(name):
    return torch.load(fixtures / name, weights_only=True, map_location="cuda")


state = load("reference_state_dict.pt")
state.update(load("perturbed_overrides.pt"))
expected = load("perturbed_outputs.pt")
x300, x64 = load("input_300.pt"), load("input_64.pt")
ok = True
for channels_last in (False, True):
    model = STGCN(num_classes=60).cuda()
    model.load_reference_state_dict(state)
    model.set_channels_last(channels_last).eval()
    with torch.no_grad():
        logits, features = model.forward_with_features(x300)
        logits64 = model(x64)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits_bf16 = model(x300).float()
    errors = {
        "logits_300": (logits - expected["logits_300"]).abs().max().item(),
        "features_pooled_300": (features - expected["features_pooled_300"]).abs().max().item(),
        "logits_64": (logits64 - expected["logits_64"]).abs().max().item(),
    }
    passed = all(
        torch.allclose(got, expected[key], atol=1e-5, rtol=1e-4)
        for key, got in (("logits_300", logits), ("features_pooled_300", features),
                         ("logits_64", logits64))
    )
    ok &= passed
    bf16 = (logits_bf16 - expected["logits_300"]).abs().max().item()
    print(f"channels_last={channels_last}: fp32 max|err| "
          + ", ".join(f"{k} {v:.2e}" for k, v in errors.items())
          + f" -> {'PASS' if passed else 'FAIL'}; bf16 autocast logits_300 max|err| {bf16:.2e} "
          f"(logit scale {expected['logits_300'].abs().max().item():.2f})")
print("GPU parity", "PASS" if ok else "FAIL")
PYEOF
fi

timeout 480 "$PY" bench/stgcn_throughput.py --device cuda --steps 15 "${@:2}" 2>&1 |
    tee "$LOG_DIR/stgcn_throughput.log"
