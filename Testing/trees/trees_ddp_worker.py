"""Run by ``torchrun`` in test_diffusion_ddp.py: train the diffusion model on a toy weight set, print one JSON line.

Usage: trees_ddp_worker.py DATA.npy OUTPUT.safetensors [--perturb-rank R]
Each rank writes its result to ``rank<R>.json`` beside OUTPUT (the ranks share one stdout).
(--perturb-rank: that rank changes one value of its data, so the ranks disagree).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.trees._diffusion_train import run_training
from AnatomyINRLib.trees.config import DiffusionConfig

LAYOUT = [("a.weight", (4, 2)), ("a.bias", (4,)), ("b.weight", (1, 4)), ("b.bias", (1,))]


def main(argv):
    torch.set_num_threads(1)
    weights = np.load(argv[0])
    if "--perturb-rank" in argv and int(os.environ["RANK"]) == int(argv[argv.index("--perturb-rank") + 1]):
        weights = weights.copy()
        weights[0, 0] += 1.0
    cfg = DiffusionConfig(token_size=8, width=32, depth=1, heads=2, diffusion_steps=100, batch_size=8, epochs=2)
    if "--hull" in argv:
        cfg = cfg.replace(head="hull", x0_skip=False)
    result = Path(argv[1]).with_name(f"rank{os.environ['RANK']}.json")
    try:
        out = run_training(weights, LAYOUT, cfg, 3, torch.device("cpu"), argv[1], ProgressReporter())
    except InputError as exc:
        result.write_text(json.dumps({"rank": int(os.environ["RANK"]), "error": str(exc)}))
        return 2
    result.write_text(json.dumps({k: out[k] for k in ("rank", "world_size", "digest", "ema_digest", "history")}))
    return 0


if __name__ == "__main__":
    from AnatomyINRLib.nn.distributed import leave_group

    try:
        code = main(sys.argv[1:])
    finally:
        leave_group()  # as the CLI does: no rank exits while a peer is still in the last collective
    sys.exit(code)
