"""Small tree data for the Tree synthesis tests: synthetic tree meshes, a quick fit config, a tiny checkpoint.

The checkpoint is made the way a user makes one, with the library's CLI: three
one-bifurcation synthetic trees → ``trees fit`` (a 16-wide, one-block occupancy net,
40 steps) → ``trees train --preset tiny`` (40 epochs). About 15 s on one core, once
per session; its samples are rough trees (the plumbing is tested here, sample quality
in ``Testing/trees``).
"""

from __future__ import annotations

import types

import pytest


def treeMesh(seed: int = 1, spacing: float = 0.8):
    """A closed one-bifurcation synthetic tree (about 30 x 20 x 25 mm, RAS mm)."""
    from AnatomyINRLib.phantoms.tree_synth import SynthTreeParams, grow_tree, tree_mesh

    graph = grow_tree(SynthTreeParams(seed=seed, bifurcations=1, terminal_radius=2.5, domain_radius=20.0,
                                      min_distance=6.0))
    return tree_mesh(graph, spacing)


def writeQuickFitConfig(path, iterations: int = 40) -> str:
    """A ``TreeFitConfig`` JSON for fits of a few seconds; returns the path."""
    from AnatomyINRLib.fitting.config import OptimConfig
    from AnatomyINRLib.nn.occupancy import OccupancyNetworkConfig
    from AnatomyINRLib.trees import TreeFitConfig, TreeSamplingConfig

    config = TreeFitConfig(network=OccupancyNetworkConfig(width=16, blocks=1),
                           sampling=TreeSamplingConfig(points_per_draw=1000, resample_every=0, batch_size=512,
                                                       eval_points=1000),
                           optim=OptimConfig(iterations=iterations, lr=5e-3, min_iterations=iterations,
                                             check_every=20, rel_tol=0.0))
    path.write_text(config.to_json())
    return str(path)


@pytest.fixture(scope="session")
def treeCheckpoint(tmp_path_factory):
    """``.checkpoint`` (a tiny diffusion checkpoint), ``.fitConfig`` (quick fit JSON), ``.meshes`` (folder)."""
    from AnatomyINRLib import io
    from AnatomyINRLib.cli import main

    root = tmp_path_factory.mktemp("trees_checkpoint")
    meshes = root / "meshes"
    meshes.mkdir()
    for seed in range(3):
        io.write_mesh(treeMesh(seed), meshes / f"tree_{seed}.vtp")
    fitConfig = writeQuickFitConfig(root / "fit.json")
    checkpoint = root / "diffusion.safetensors"
    assert main(["trees", "fit", str(meshes), "--output", str(root / "inrs"), "--config", fitConfig,
                 "--threads", "1"]) == 0
    assert main(["trees", "train", str(root / "inrs"), "--output", str(checkpoint), "--preset", "tiny",
                 "--epochs", "40", "--threads", "1"]) == 0
    return types.SimpleNamespace(checkpoint=str(checkpoint), fitConfig=fitConfig, meshes=meshes, root=root)
