"""The Logic of AnatomyINRTreeSynthesis outside Slicer.

Options and their messages, arguments the ``trees sample`` / ``trees compress`` parsers
accept, then the real worker (``python -m AnatomyINRLib trees ...``) driven by the
protocol code the Slicer Logic uses: sampling from a tiny checkpoint trained on three
synthetic trees (``trees_fixtures``) gives the trees the library samples in process with
the same seed; compressing a synthetic tree gives an INR file that re-extracts to the
same mesh with ``anatomy-inr extract``, sizes that are the files' sizes, and the surface
distances the library's metric gives; an open mesh and a file that is no checkpoint are
refused with one message; a cancel as the fit starts, or while sampling, leaves no output.
"""

import os
import sys

import numpy as np
import pytest

from AnatomyINRSlicerLib.worker_protocol import (TREES_COMPRESS_STAGES, TREES_SAMPLE_STAGES, StagePlan,
                                                 library_search_dir, run_blocking, worker_command)
from AnatomyINRTreeSynthesisLib import compute
from trees_fixtures import treeMesh


@pytest.fixture(autouse=True)
def oneThread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def run(arguments, stages, events=None, should_cancel=None):
    command = worker_command(sys.executable, "trees", arguments)
    return run_blocking(command, StagePlan(stages), cwd=library_search_dir(), should_cancel=should_cancel,
                        on_event=(lambda e, overall: events.append((e.stage, overall))) if events is not None else None)


def test_constants_match_the_library():
    from AnatomyINRLib.trees.config import FIT_PRESETS
    from AnatomyINRSlicerLib.serve_protocol import DEVICES

    # "shared" fits a folder's trees jointly; compress fits one tree, so the module does not offer it
    assert set(compute.PRESETS) == set(FIT_PRESETS) - {"shared"} and compute.DEVICES == DEVICES
    assert set(compute.PRESET_TITLES) == set(compute.PRESETS) and set(compute.TASK_TITLES) == set(compute.TASKS)
    assert compute.sampleName(7) == "Sampled tree 007"


def test_options_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="checkpoint: choose the .safetensors file"):
        compute.SampleOptions().validate()
    with pytest.raises(ValueError, match="does not exist or is not a file"):
        compute.SampleOptions(checkpoint=str(tmp_path / "missing.safetensors")).validate()
    present = tmp_path / "c.safetensors"
    present.write_bytes(b"x")
    compute.SampleOptions(checkpoint=str(present)).validate()
    for bad, message in (({"count": 0}, r"count: expected a number of trees in \[1, 100\], got 0"),
                         ({"count": 2.5}, "count"), ({"spacingMm": 0.0}, "spacingMm: expected a positive spacing"),
                         ({"sampleSteps": -1}, "sampleSteps"), ({"temperature": 0.0}, "temperature: expected a positive"),
                         ({"device": "tpu"}, "device: expected one of"),
                         ({"keepAllPieces": "yes"}, "keepAllPieces: expected True or False")):
        with pytest.raises(ValueError, match=message):
            compute.SampleOptions(checkpoint=str(present), **bad).validate()
    for bad, message in (({"spacingMm": -0.3}, "spacingMm"), ({"preset": "default"}, "preset: expected one of tiny"),
                         ({"iterations": 0}, "iterations: expected a positive number"), ({"device": "gpu"}, "device")):
        with pytest.raises(ValueError, match=message):
            compute.CompressOptions(**bad).validate()


def test_worker_arguments_are_what_the_cli_parses(tmp_path):
    from AnatomyINRLib.cli import build_parser

    files = compute.WorkFiles(str(tmp_path))
    checkpoint = tmp_path / "c.safetensors"
    checkpoint.write_bytes(b"x")
    sample = compute.sampleArguments(files, compute.SampleOptions(str(checkpoint), count=5, seed=9, spacingMm=0.25,
                                                                  device="auto", sampleSteps=20, temperature=1.5,
                                                                  keepAllPieces=True))
    parsed = build_parser().parse_args(worker_command("python", "trees", sample)[3:])
    assert (parsed.trees_command, parsed.checkpoint, parsed.count, parsed.seed) == ("sample", str(checkpoint), 5, 9)
    assert (parsed.output_dir, parsed.spacing, parsed.sample_steps, parsed.device) == (files.samples, 0.25, 20, "auto")
    assert parsed.report == files.report and parsed.json_progress and parsed.temperature == 1.5
    assert parsed.keep_all_components
    options = compute.CompressOptions(spacingMm=0.4, preset="tiny", seed=2, device="cpu", iterations=30, threads=1)
    compress = compute.writeCompressInputs(files, treeMesh(), options)
    parsed = build_parser().parse_args(worker_command("python", "trees", compress)[3:])
    assert (parsed.trees_command, parsed.input, parsed.output_inr, parsed.output) == (
        "compress", files.source, files.inr, files.mesh)
    assert (parsed.spacing, parsed.preset, parsed.iterations, parsed.seed, parsed.device, parsed.threads) == (
        0.4, "tiny", 30, 2, "cpu", 1)
    assert parsed.config is None and parsed.report == files.report
    from AnatomyINRLib import io

    np.testing.assert_allclose(io.read_mesh(files.source).vertices, treeMesh().vertices, atol=1e-5)  # RAS mm as given


def test_sample_through_the_worker_gives_the_librarys_trees(tmp_path, treeCheckpoint):
    from AnatomyINRLib.trees import sample_trees

    files = compute.WorkFiles(str(tmp_path))
    events = []
    options = compute.SampleOptions(treeCheckpoint.checkpoint, count=3, seed=5, spacingMm=1.0)
    outcome = run(compute.sampleArguments(files, options), TREES_SAMPLE_STAGES, events)
    assert outcome.ok, outcome.message + "\n".join(outcome.log_tail)
    assert [stage for stage, _ in events][0] == "sample" and events[-1][0] == "mesh"
    overall = [value for _, value in events]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0)
    result = compute.readSampleResult(files)
    expected = sample_trees(treeCheckpoint.checkpoint, 3, spacing_mm=1.0, seed=5)
    assert [index for index, _mesh in result.trees] == [0, 1, 2]
    for (_index, mesh), same in zip(result.trees, expected.meshes):
        assert (mesh is None) == (same is None)
        if mesh is not None:
            np.testing.assert_allclose(mesh.vertices, same.vertices, atol=1e-4)
            np.testing.assert_array_equal(mesh.faces, same.faces)
    assert len(result.meshes) == 3 - expected.report["empty"] >= 1
    assert compute.sampleSummary(result).startswith(f"{len(result.meshes)} trees sampled (seed 5, ")


def test_a_centreline_checkpoint_samples_through_the_worker_as_whole_trees(tmp_path):
    from AnatomyINRLib.phantoms.tree_synth import dataset_params, grow_tree
    from AnatomyINRLib.trees import diffusion_preset, sample_trees, train_model

    checkpoint = str(tmp_path / "centerline.safetensors")
    graphs = [grow_tree(p) for p in dataset_params(8, 3)]
    train_model(graphs, None, checkpoint, config=diffusion_preset("centerline").replace(epochs=2, batch_size=4))
    files = compute.WorkFiles(str(tmp_path / "run"))
    os.mkdir(files.folder)
    outcome = run(compute.sampleArguments(files, compute.SampleOptions(checkpoint, count=2, seed=3, spacingMm=1.0)),
                  TREES_SAMPLE_STAGES)
    assert outcome.ok, outcome.message + "\n".join(outcome.log_tail)
    result = compute.readSampleResult(files)
    expected = sample_trees(checkpoint, 2, spacing_mm=1.0, seed=3)
    assert len(result.meshes) == 2 and result.report["in_pieces"] == 0
    for mesh, same in zip(result.meshes, expected.meshes):
        np.testing.assert_allclose(mesh.vertices, same.vertices, atol=1e-4)
        np.testing.assert_array_equal(mesh.faces, same.faces)


def test_compress_through_the_worker_reextracts_and_reports_size_and_error(tmp_path, treeCheckpoint):
    from AnatomyINRLib import io
    from AnatomyINRLib.cli import main
    from AnatomyINRLib.metrics.surface import surface_distances

    files = compute.WorkFiles(str(tmp_path / "run"))
    os.mkdir(files.folder)
    source = treeMesh(seed=4)
    options = compute.CompressOptions(spacingMm=1.0, seed=3, device="cpu", configFile=treeCheckpoint.fitConfig)
    events = []
    outcome = run(compute.writeCompressInputs(files, source, options), TREES_COMPRESS_STAGES, events)
    assert outcome.ok, outcome.message + "\n".join(outcome.log_tail)
    assert [s for s, _ in events if s in dict(TREES_COMPRESS_STAGES)][-1] == "compare" and events[-1][1] == 1.0
    result = compute.readCompressResult(files)
    report = result.report
    size, error = report["size"], report["error"]
    # sizes are the files' sizes: the INR pair the user keeps and the source as the worker received it
    assert size["inr_bytes"] == os.path.getsize(files.inr) + os.path.getsize(files.inrSidecar) == result.inrBytes
    assert size["source_file_bytes"] == size["source_vtp_bytes"] == os.path.getsize(files.source)
    assert size["source_raw_bytes"] == 12 * (source.n_vertices + source.n_faces)
    assert size["compression_vs_vtp"] == pytest.approx(size["source_vtp_bytes"] / size["inr_bytes"])
    weights = io.load_inr(files.inr)[0].network.state_dict().values()
    assert size["parameters"] == sum(int(np.prod(v.shape)) for v in weights)
    # the error is the library's metric between the mesh the user gets and the source
    again = surface_distances(result.mesh, source, n_samples=20_000, seed=3)
    assert (error["asd_mm"], error["hd95_mm"], error["hd_mm"]) == (again["asd"], again["hd95"], again["hd"])
    assert report["fit"]["iterations"] == 40 and report["spacing_mm"] == 1.0
    # the INR file re-extracts to that mesh with 'anatomy-inr extract'
    assert main(["extract", files.inr, "--output", str(tmp_path / "again.vtp"), "--spacing", "1.0"]) == 0
    remeshed = io.read_mesh(tmp_path / "again.vtp")
    np.testing.assert_allclose(remeshed.vertices, result.mesh.vertices, atol=1e-4)
    rows = {row[0]: row for row in compute.compressRows(report)}
    assert rows["INR file (weights + sidecar)"][1] == pytest.approx(size["inr_bytes"] / 1024.0)
    assert rows["ASD to the source"][1:] == (error["asd_mm"], "mm") and len(rows) == 11
    assert compute.compressSummary(result).splitlines()[1].startswith("Re-extracted at 1 mm: ASD ")
    saved = compute.saveInr(result, str(tmp_path / "kept.safetensors"))
    assert saved == [str(tmp_path / "kept.safetensors"), str(tmp_path / "kept.json")]
    kept, _meta = io.load_inr(saved[0])
    np.testing.assert_allclose(kept(source.vertices[:50]), io.load_inr(files.inr)[0](source.vertices[:50]))
    with pytest.raises(ValueError, match="expected a .safetensors path"):
        compute.saveInr(result, str(tmp_path / "kept.pt"))


def test_open_mesh_and_wrong_checkpoint_are_refused_with_nothing_written(tmp_path):
    from AnatomyINRLib.core.types import TriangleMesh

    files = compute.WorkFiles(str(tmp_path))
    tree = treeMesh()
    opened = TriangleMesh(tree.vertices, tree.faces[10:])  # ten triangles cut out: a hole
    outcome = run(compute.writeCompressInputs(files, opened, compute.CompressOptions(iterations=5)),
                  TREES_COMPRESS_STAGES)
    assert not outcome.ok and not outcome.cancelled and outcome.returncode == 2
    assert outcome.message.startswith("The input was rejected: ") and "open" in outcome.message
    assert sorted(os.listdir(tmp_path)) == ["source.vtp"]
    notCheckpoint = tmp_path / "weights.safetensors"
    notCheckpoint.write_bytes(b"not a checkpoint")
    outcome = run(compute.sampleArguments(files, compute.SampleOptions(str(notCheckpoint), count=2)),
                  TREES_SAMPLE_STAGES)
    assert not outcome.ok and outcome.returncode == 2 and "weights.safetensors" in outcome.message
    assert not os.path.exists(files.samples) and not os.path.exists(files.report)


def test_cancel_as_the_fit_starts_leaves_no_output(tmp_path):
    seen = []
    files = compute.WorkFiles(str(tmp_path))
    options = compute.CompressOptions(preset="fast", spacingMm=1.0)  # minutes: only a cancel ends it in time
    outcome = run(compute.writeCompressInputs(files, treeMesh(), options), TREES_COMPRESS_STAGES, seen,
                  should_cancel=lambda: any(stage == "prepare" for stage, _ in seen))  # the fit is about to start
    assert outcome.cancelled and not outcome.ok
    assert sorted(os.listdir(tmp_path)) == ["source.vtp"]


def test_cancel_while_sampling_leaves_no_output(tmp_path, treeCheckpoint):
    seen = []
    files = compute.WorkFiles(str(tmp_path))
    # compute.MAX_COUNT trees meshed at 0.5 mm take far longer than a cancel needs to land
    options = compute.SampleOptions(treeCheckpoint.checkpoint, count=compute.MAX_COUNT, seed=1, spacingMm=0.5)
    outcome = run(compute.sampleArguments(files, options), TREES_SAMPLE_STAGES, seen,
                  should_cancel=lambda: any(stage == "sample" for stage, _ in seen))  # the first denoising step
    assert outcome.cancelled and not outcome.ok
    assert seen and all(stage == "sample" for stage, _ in seen)  # nothing was meshed
    assert not os.path.exists(files.samples) and not os.path.exists(files.report)
    assert os.listdir(tmp_path) == []


def test_sample_summary_names_the_trees_that_came_out_in_pieces():
    report = {"seed": 1, "sample_steps": 50, "seconds": 2.0,
              "meshes": [{"pieces": 3, "largest_area_fraction": 0.614}, None, {"pieces": 1, "largest_area_fraction": 1.0},
                         {"pieces": 2, "largest_area_fraction": 0.9999}]}
    result = compute.SampleResult([(0, object()), (1, None), (2, object()), (3, object())], report)
    assert compute.sampleSummary(result).splitlines() == [
        "3 trees sampled (seed 1, 50 DDIM steps) in 2.0 s", "Samples without a surface (no model): 1",
        "Samples in pieces, largest piece kept (the largest piece's share of the surface): 0 (61.4 %), 3 (99.9 %)"]
    result.report["components"] = "all"
    assert compute.sampleSummary(result).splitlines()[-1] == (
        "Samples in pieces, every piece kept (the largest piece's share of the surface): 0 (61.4 %), 3 (99.9 %)")
