"""--device names a device this machine lacks: exit 2 while parsing, one stderr line.

The message names --device and lists what is available, for every subcommand
that takes --device; nothing is read or fitted first.
"""

import os
import subprocess
import sys

import pytest

from AnatomyINRLib.cli import main
from AnatomyINRLib.core.device import available_devices

# Valid arguments of each subcommand apart from --device (the files need not exist:
# the device is checked while parsing, before any input is opened).
SUBCOMMANDS = {
    "fit-points": ["fit-points", "pts.csv", "--output", "out.vtp"],
    "fit-nested": ["fit-nested", "--points", "a.csv", "b.csv", "--output-prefix", "out"],
    "blend": ["blend", "a.vtp", "b.vtp", "--output", "out.vtp"],
    "demo": ["demo", "--output-dir", "demo-out"],
    "pulmonary train": ["pulmonary", "train", "cases", "--output", "m.safetensors"],
    "pulmonary segments": ["pulmonary", "segments", "--lobes", "l.nrrd", "--airways", "a.nrrd",
                           "--checkpoint", "m.safetensors", "--output", "s.nrrd"],
}
MISSING = [d for d in ("cuda", "cuda:7", "mps", "foo", "cuda:x", "gpu:0") if d not in available_devices()]


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
@pytest.mark.parametrize("device", MISSING)
def test_missing_device_is_a_usage_error(command, device, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([*SUBCOMMANDS[command], "--device", device])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("anatomy-inr: error: argument --device: ")
    assert repr(device) in err
    assert err.rstrip().endswith("available: " + ", ".join(available_devices()))
    assert list(tmp_path.iterdir()) == []  # nothing was written


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_cpu_is_accepted_by_the_parser(command):
    from AnatomyINRLib.cli import build_parser

    args = build_parser().parse_args([*SUBCOMMANDS[command], "--device", "cpu"])
    assert args.device == "cpu"


def test_missing_gpu_in_a_real_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "AnatomyINRLib", "fit-points", "pts.csv", "--output", "o.vtp",
                          "--device", "cuda:64"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "anatomy-inr: error: argument --device: 'cuda:64' is not available on this machine; "
        f"available: {', '.join(available_devices())}"]
    assert res.stdout == "" and list(tmp_path.iterdir()) == []
