"""The Qt-free half of the background runner: command lines, progress lines, exit codes.

``run_blocking`` is exercised with real child processes (small Python
programs that speak the same protocol), not with mocks.
"""

import json
import sys
import time
from pathlib import Path

import pytest

from AnatomyINRSlicerLib.worker_protocol import (
    FIT_POINTS_STAGES,
    ProgressEvent,
    StagePlan,
    WorkerRun,
    fit_points_arguments,
    library_search_dir,
    parse_progress_line,
    read_report,
    run_blocking,
    worker_command,
)

REPO = Path(__file__).resolve().parents[2]


def line(stage, fraction, message="", **metrics):
    return json.dumps({"stage": stage, "fraction": fraction, "message": message, "metrics": metrics}) + "\n"


def test_parse_progress_line_reads_the_cli_protocol():
    event = parse_progress_line(line("fit", 0.25, "iteration 100/400", loss=0.5))
    assert event == ProgressEvent("fit", 0.25, "iteration 100/400", {"loss": 0.5})


@pytest.mark.parametrize("text", [
    "anatomy-inr: error: points: expected at least 10 points",
    "{not json",
    json.dumps({"fraction": 0.5}),
    json.dumps({"stage": "fit", "fraction": "half"}),
    json.dumps({"stage": "fit", "fraction": True}),
    '{"stage": "fit", "fraction": NaN}',
    json.dumps([1, 2]),
    "",
])
def test_parse_progress_line_ignores_other_output(text):
    assert parse_progress_line(text) is None


def test_parse_progress_line_clamps_fraction():
    assert parse_progress_line(line("fit", 1.7)).fraction == 1.0
    assert parse_progress_line(line("fit", -2)).fraction == 0.0


def test_stage_plan_is_weighted_and_monotone():
    plan = StagePlan((("a", 1.0), ("b", 3.0)))
    assert plan.update(ProgressEvent("a", 1.0)) == pytest.approx(0.25)
    assert plan.update(ProgressEvent("b", 0.5)) == pytest.approx(0.25 + 0.75 * 0.5)
    assert plan.update(ProgressEvent("a", 0.1)) == pytest.approx(0.625)  # a late event never moves the bar back
    assert plan.update(ProgressEvent("unknown", 0.9)) == pytest.approx(0.625)
    assert plan.update(ProgressEvent("b", 1.0)) == pytest.approx(1.0)
    assert plan.stage_label(ProgressEvent("b", 0.0)) == "b (2/2)"


def test_stage_plan_rejects_empty_weights():
    with pytest.raises(ValueError):
        StagePlan(())
    with pytest.raises(ValueError):
        StagePlan((("a", 0.0),))


def test_fit_points_stages_cover_every_stage_the_library_reports():
    names = [name for name, _ in FIT_POINTS_STAGES]
    sources = "\n".join(p.read_text() for p in (REPO / "AnatomyINRLib").rglob("*.py")
                        if "surface" in p.parts or "meshing" in p.parts)
    for name in names:
        assert f'"{name}"' in sources, f"stage {name!r} is not reported by the library any more"


@pytest.mark.parametrize("code,lines,expected", [
    (0, [], "Finished."),
    (2, ["anatomy-inr: error: points: expected at least 10 points, got 4\n"],
     "The input was rejected: points: expected at least 10 points, got 4"),
    (3, ["anatomy-inr: error: --output: folder is not writable\n"], "An output file could not be written: --output"),
    (4, ["anatomy-inr: error: fit diverged at iteration 12\n"], "The computation failed: fit diverged"),
    (5, ["anatomy-inr: error: torch is not installed\n"], "Install the extension's Python requirements"),
    (-9, [], "stopped by signal 9"),
    (1, ["Traceback (most recent call last):\n", "ZeroDivisionError: division by zero\n"],
     "exit code 1): ZeroDivisionError: division by zero"),
])
def test_exit_codes_become_actionable_messages(code, lines, expected):
    run = WorkerRun(StagePlan(FIT_POINTS_STAGES))
    for text in lines:
        run.feed(text)
    outcome = run.outcome(code)
    assert outcome.ok is (code == 0)
    assert not outcome.cancelled
    assert expected in outcome.message


def test_cancel_wins_over_exit_code():
    run = WorkerRun(StagePlan(FIT_POINTS_STAGES))
    run.cancel_requested = True
    outcome = run.outcome(-9)
    assert outcome.cancelled and not outcome.ok
    assert WorkerRun(StagePlan(FIT_POINTS_STAGES)).outcome(130).cancelled


def test_worker_run_records_warnings_and_progress():
    run = WorkerRun(StagePlan(FIT_POINTS_STAGES))
    assert run.feed("anatomy-inr: warning: 3 duplicate points removed\n") is None
    event = run.feed(line("fit", 0.5))
    assert event.stage == "fit" and run.last_event == event
    assert run.warnings == ["3 duplicate points removed"]
    assert run.plan.overall > 0


def test_command_line_uses_the_cli_spelling():
    args = fit_points_arguments("p.mrk.json", "s.vtp", reference="r.nrrd", output_labelmap="l.nrrd",
                                save_inr="f.safetensors", init_inr="old.safetensors", spacing_mm=0.25,
                                preset="fast", iterations=50, seed=3, device="cpu", threads=1, report="r.json")
    command = worker_command("/opt/PythonSlicer", "fit-points", args)
    assert command[:4] == ["/opt/PythonSlicer", "-m", "AnatomyINRLib", "fit-points"]
    assert command[-1] == "--json-progress"
    assert command[4:7] == ["p.mrk.json", "--output", "s.vtp"]
    expected = {"--reference": "r.nrrd", "--output-labelmap": "l.nrrd", "--save-inr": "f.safetensors",
                "--init-inr": "old.safetensors", "--spacing": "0.25", "--preset": "fast", "--iterations": "50",
                "--seed": "3", "--device": "cpu", "--threads": "1", "--report": "r.json"}
    assert {flag: command[command.index(flag) + 1] for flag in expected} == expected
    assert len(command) == 7 + 2 * len(expected) + 1


def test_command_line_rejects_labelmap_without_reference():
    with pytest.raises(ValueError):
        fit_points_arguments("p.mrk.json", "s.vtp", output_labelmap="l.nrrd")


def test_every_flag_we_pass_is_accepted_by_the_cli_parser():
    from AnatomyINRLib.cli import build_parser

    args = fit_points_arguments("p.mrk.json", "s.vtp", reference="r.nrrd", output_labelmap="l.nrrd",
                                save_inr="f.safetensors", init_inr="o.safetensors", spacing_mm=0.5, preset="fast",
                                iterations=5, seed=1, device="cpu", threads=1, report="r.json")
    parsed = build_parser().parse_args(worker_command("python", "fit-points", args)[3:] + ["--config", "c.json"])
    assert (parsed.reference, parsed.output_labelmap, parsed.init_inr, parsed.spacing) == ("r.nrrd", "l.nrrd", "o.safetensors", 0.5)
    assert parsed.json_progress and parsed.config == "c.json"


def test_library_search_dir_holds_the_package():
    assert (Path(library_search_dir()) / "AnatomyINRLib" / "__main__.py").is_file()


def test_read_report_of_missing_file_is_empty(tmp_path):
    assert read_report(str(tmp_path / "none.json")) == {}


CHILD = """
import json, sys, time
for i in range(4):
    print(json.dumps({"stage": "fit", "fraction": (i + 1) / 4, "message": f"step {i}", "metrics": {}}), flush=True)
    time.sleep(float(sys.argv[1]))
print("anatomy-inr: error: points are collinear", file=sys.stderr, flush=True)
sys.exit(int(sys.argv[2]))
"""


def test_run_blocking_streams_progress_and_maps_the_exit_code():
    seen = []
    outcome = run_blocking([sys.executable, "-c", CHILD, "0.01", "2"], StagePlan(FIT_POINTS_STAGES),
                           on_event=lambda event, overall: seen.append((event.fraction, overall)))
    assert [f for f, _ in seen] == [0.25, 0.5, 0.75, 1.0]
    assert all(b >= a for (_, a), (_, b) in zip(seen, seen[1:]))
    assert outcome.returncode == 2 and not outcome.ok
    assert outcome.message == "The input was rejected: points are collinear"


def test_run_blocking_cancel_kills_the_process():
    start = time.perf_counter()
    outcome = run_blocking([sys.executable, "-c", CHILD, "30", "0"], StagePlan(FIT_POINTS_STAGES),
                           should_cancel=lambda: time.perf_counter() - start > 0.5)
    assert outcome.cancelled and not outcome.ok
    assert time.perf_counter() - start < 10


def test_missing_package_in_the_real_worker_becomes_the_install_message(tmp_path):
    # SimpleITK made unimportable by a module first on PYTHONPATH, as a broken install would be.
    import os

    (tmp_path / "shim").mkdir()
    broken = 'raise ImportError("libSimpleITKIO.so.1: cannot open shared object file")\n'
    (tmp_path / "shim" / "SimpleITK.py").write_text(broken)
    (tmp_path / "ref.nrrd").write_bytes(b"NRRD0004\n")
    (tmp_path / "pts.csv").write_text("x,y,z\n" + "".join(f"{i},{i * i % 7},{i % 3}\n" for i in range(30)))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path / "shim"), library_search_dir()]))
    command = worker_command(sys.executable, "fit-points", fit_points_arguments(
        "pts.csv", "out.vtp", reference="ref.nrrd", output_labelmap="label.nrrd", device="cpu", threads=1))
    outcome = run_blocking(command, StagePlan(FIT_POINTS_STAGES), cwd=str(tmp_path), env=env)
    assert outcome.returncode == 5 and not outcome.ok and not outcome.cancelled
    assert outcome.message == (
        "A required Python package is missing: Python package 'SimpleITK' is missing or cannot be imported "
        "(libSimpleITKIO.so.1: cannot open shared object file); install the requirements (pip install SimpleITK). "
        "Install the extension's Python requirements (Apply does this) and retry.")


_NOISY_CHILD = ("import sys; out = sys.stdout.buffer; out.write(b'bad \\xff\\xfe bytes\\n'); "
                "[out.write(b'x' * 99 + b'\\n') for _ in range(2000)]; out.write(b'last\\n'); out.flush()")


def test_pump_lines_keeps_reading_after_undecodable_bytes():
    """One bad byte must not stop the reader: 200 kB follow it (more than a pipe holds), all arrive."""
    import queue
    import subprocess
    import threading

    from AnatomyINRSlicerLib.worker_protocol import pump_lines

    proc = subprocess.Popen([sys.executable, "-c", _NOISY_CHILD], stdout=subprocess.PIPE, text=True, encoding="utf-8")
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=pump_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert proc.wait(timeout=30) == 0 and not reader.is_alive()
    received = []
    while (line := lines.get_nowait()) is not None:
        received.append(line)
    assert len(received) == 2002 and received[0] == "bad \ufffd\ufffd bytes\n" and received[-1] == "last\n"
