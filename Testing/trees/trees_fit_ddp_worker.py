"""Run by ``torchrun`` in test_trees_fit_ddp.py: fit a folder's meshes with ``fit_trees``, write one JSON per rank.

Usage: trees_fit_ddp_worker.py MESH_DIR CONFIG.json RESULT_DIR [--perturb-rank R]
(--perturb-rank: that rank moves one vertex of its first mesh, so the ranks disagree on the data).
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from AnatomyINRLib import io
from AnatomyINRLib.core.errors import AnatomyINRError
from AnatomyINRLib.io.configs import read_config
from AnatomyINRLib.trees import TreeFitConfig, fit_trees


def digest(field) -> str:
    h = hashlib.sha256()
    for name, t in sorted(field.network.state_dict().items()):
        h.update(name.encode() + t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def main(argv):
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    paths = sorted(Path(argv[0]).glob("*.vtp"))
    meshes = [io.read_mesh(p) for p in paths]
    if "--perturb-rank" in argv and rank == int(argv[argv.index("--perturb-rank") + 1]):
        meshes[0].vertices[0, 0] += 0.1
    out = Path(argv[2]) / f"rank{rank}.json"
    try:
        res = fit_trees(meshes, names=[p.stem for p in paths], config=read_config(argv[1], TreeFitConfig),
                        seed=7, device="cpu")
    except AnatomyINRError as exc:
        out.write_text(json.dumps({"rank": rank, "error": f"{type(exc).__name__}: {exc}"}))
        return 2
    out.write_text(json.dumps({"rank": rank, "names": res.names, "digests": [digest(f) for f in res.fields],
                               "seeds": [m["fit"]["seed"] for m in res.metadata], "report": res.report}))
    return 0


if __name__ == "__main__":
    from AnatomyINRLib.nn.distributed import leave_group

    try:
        code = main(sys.argv[1:])
    finally:
        leave_group()  # as the CLI does: no rank exits while a peer is still in the last collective
    sys.exit(code)
