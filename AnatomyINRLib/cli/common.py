"""Helpers shared by the subcommands: progress output, reports, arguments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.progress import Progress, ProgressReporter
from AnatomyINRLib.io.atomic import atomic_path, check_writable


def make_progress(json_lines: bool) -> ProgressReporter:
    """``--json-progress``: one JSON object per event on stdout; otherwise quiet."""
    if not json_lines:
        return ProgressReporter(None)

    def emit(event: Progress) -> None:
        sys.stdout.write(event.to_json() + "\n")
        sys.stdout.flush()

    return ProgressReporter(emit)


def device_arg(value: str) -> str:
    """argparse ``type`` of ``--device``: the name if this machine has that device.

    Checked while parsing so a missing GPU is a usage error (exit 2, one line
    listing the available devices) instead of a failure after inputs are read.
    """
    import argparse

    from AnatomyINRLib.core.device import resolve_device
    from AnatomyINRLib.core.errors import InputError

    try:
        resolve_device(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("device: ")) from None
    return value


def add_device_arg(parser) -> None:
    """--device: auto (default), cpu, cuda, cuda:N or mps, validated against this machine."""
    parser.add_argument("--device", default="auto", type=device_arg,
                        help="compute device: auto, cpu, cuda, cuda:N or mps (default auto)")


def threads_arg(text: str) -> int:
    """argparse type of every --threads: a whole number of CPU threads ≥ 1, a one-line exit-2 error otherwise."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of CPU threads >= 1, got {text!r}")
    return value


def seed_arg(text: str) -> int:
    """argparse type of every --seed: core.config.check_seed's rule, a one-line exit-2 error otherwise."""
    import argparse

    from AnatomyINRLib.core.config import SEED_MAX, check_seed
    from AnatomyINRLib.core.errors import InputError

    try:
        return check_seed(int(text))
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(f"expected an integer in [0, {SEED_MAX}], got {text!r}") from None


# 40x the paper preset's 25k iterations (hours of CPU time); more is a typo, not a plan.
MAX_ITERATIONS = 1_000_000


def iterations_arg(text: str) -> int:
    """argparse type of every --iterations: an integer in [1, MAX_ITERATIONS]."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= MAX_ITERATIONS:
        raise argparse.ArgumentTypeError(f"expected an integer in [1, {MAX_ITERATIONS}], got {text!r}")
    return value


def add_common_run_args(parser, *, iterations: bool = True) -> None:
    """--seed, --device, --report, --json-progress (and --iterations) for fitting commands."""
    parser.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    add_device_arg(parser)
    parser.add_argument("--threads", type=threads_arg, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--report", default=None, metavar="JSON", help="write a JSON report here")
    parser.add_argument("--json-progress", action="store_true", help="print one JSON progress event per line on stdout")
    if iterations:
        parser.add_argument("--iterations", type=iterations_arg, default=None, help="override the preset's iteration budget")


def _box(lo, hi) -> str:
    return f"[{', '.join(f'{v:.1f}' for v in lo)}] to [{', '.join(f'{v:.1f}' for v in hi)}]"


def check_reference_overlap(reference, lo, hi, what: str) -> None:
    """InputError unless the reference image's box meets the object's box (both RAS mm).

    A reference that misses the object gives an all-zero labelmap; saying so
    (with both boxes) before any work beats writing an empty image.

    Args:
        reference: ImageGrid (may be oblique: its voxel corners' box is used).
        lo, hi: (3,) corners of the object's box in RAS mm.
        what: What the object box is, for the message ("the points", "the surface").
    """
    import itertools

    import numpy as np

    corners = np.array(list(itertools.product(*[(-0.5, n - 0.5) for n in reference.shape])))
    world = reference.index_to_world(corners)
    rlo, rhi = world.min(axis=0), world.max(axis=0)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if np.any(hi < rlo) or np.any(lo > rhi):
        raise InputError(f"--reference: the image covers {_box(rlo, rhi)} mm (RAS) but {what} lie in "
                         f"{_box(lo, hi)} mm: they do not overlap, so the labelmap would be empty "
                         f"(another image, or points in another frame?)")


def check_outputs(*paths: Optional[str]) -> None:
    """Fail before any computation if an output cannot be written."""
    for p in paths:
        if p:
            check_writable(p)


def make_output_folder(path: "str | Path", argument: str = "--output-dir") -> tuple[Path, bool]:
    """Create an output folder (its parent must exist); returns (folder, whether it was created here).

    Raises:
        OutputError: the path is a file, or its parent folder does not exist.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{argument} {str(out)!r}: is a file, expected a folder")
    if not out.parent.is_dir():
        raise OutputError(f"{argument} {str(out)!r}: parent folder {str(out.parent)!r} does not exist")
    created = not out.exists()
    out.mkdir(exist_ok=True)
    return out, created


def training_setup(args, config_type, preset) -> tuple:
    """Shared start of a ``train`` command: its config, threads, and which process writes the report.

    The config is ``--config JSON`` (read as ``config_type``) or ``preset(args.preset)``, with
    ``--epochs`` applied; ``--threads`` sets torch's CPU threads. Under ``torchrun`` only rank 0
    writes the report, so the other ranks check only the checkpoint path.

    Returns:
        (config, rank0): the config to train with, and whether this process is rank 0.
    """
    import os

    import torch

    from AnatomyINRLib.io.configs import read_config

    cfg = read_config(args.config, config_type) if args.config else preset(args.preset)
    if args.epochs is not None:
        cfg = cfg.replace(epochs=args.epochs)
    if args.threads:
        torch.set_num_threads(args.threads)
    rank0 = os.environ.get("RANK", "0") == "0"
    check_outputs(args.output, args.report if rank0 else None)
    return cfg, rank0


def config_path(output: "str | Path") -> Path:
    """``<output without extension>.config.json``: where a subcommand saves the config of ``output``."""
    from AnatomyINRLib.io.formats import strip_extension

    return Path(str(strip_extension(str(output))) + ".config.json")


def write_config(path: "str | Path", command: str, config, **run: Any) -> None:
    """Save the config that produced an output, next to it: ``{"command", "config", **run}``.

    ``config`` is a ``core.config.ConfigBase``; ``run`` holds the run settings
    outside the config (seed, inputs...). ``type(config).from_dict(data["config"])``
    rebuilds the config.
    """
    write_json(str(path), {"command": command, "config": config.to_dict(), **run})


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
