"""Device resolution and CPU thread policy.

Nothing else in the library names a device literally: everything goes through
:func:`resolve_device` so "auto" picks CUDA, then Apple MPS, then CPU.
"""

from __future__ import annotations

import os

from AnatomyINRLib.core.errors import InputError

_KINDS = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    """Device names that :func:`resolve_device` accepts on this machine.

    "auto" and "cpu" always; "cuda" and "cuda:0".."cuda:N-1" for N CUDA GPUs;
    "mps" when Apple Metal is usable.
    """
    import torch

    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(device: str = "auto"):
    """Turn a device name into a ``torch.device`` that exists on this machine.

    Args:
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".

    Returns:
        torch.device; "auto" picks CUDA, then Apple MPS, then CPU.

    Raises:
        InputError: the name is malformed or names a device this machine lacks
            (the message lists :func:`available_devices`), so a bad choice fails
            before any work rather than at the first tensor placed on it.
    """
    import torch

    name = str(device).strip().lower()
    available = available_devices()
    if name not in available and not (name.startswith("cpu:") and name[4:].isdigit()):
        what = "is not available on this machine" if name.split(":", 1)[0] in _KINDS else \
            "is not a device name (auto, cpu, cuda, cuda:N, mps)"
        raise InputError(f"device: {device!r} {what}; available: {', '.join(available)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if "mps" in available else "cpu")
    return torch.device(name)


def configure_threads(num_threads: int | None = None, interactive: bool = False) -> int:
    """Set torch CPU threads and flush denormals.

    Softplus(β=100) networks produce denormal floats; flushing them made
    softplus 4.8× faster on CPU (PERFORMANCE.md). Inside an interactive host
    (Slicer) one core is left free because OpenMP threads collapse when another
    process competes for every core.

    Args:
        num_threads: Explicit thread count (more than the cores is capped at the core
            count, with a warning); None chooses from ``interactive``, and under ``torchrun``
            shares the cores among the machine's processes (``LOCAL_WORLD_SIZE``).
        interactive: Leave one core for the GUI.

    Returns:
        The thread count now in force.
    """
    import torch

    torch.set_flush_denormal(True)
    cores = os.cpu_count() or 1
    if num_threads is None:
        # torchrun starts LOCAL_WORLD_SIZE processes here: all cores each would oversubscribe them
        # (a 2-process 'trees fit' on 2 cores took over twice as long as with one thread each)
        local = _local_world_size()
        num_threads = max(1, cores - 1) if interactive and local == 1 else max(1, cores // local)
    if num_threads < 1:
        raise InputError(f"num_threads: expected >= 1, got {num_threads}")
    if num_threads > cores:
        # More OpenMP threads than cores only oversubscribe them (--threads 1000 ran 9x slower).
        import warnings

        warnings.warn(f"threads: {num_threads} requested but this machine has {cores} cores; using {cores}",
                      stacklevel=2)
        num_threads = cores
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(int(num_threads))
    return int(num_threads)


def _local_world_size() -> int:
    """Processes ``torchrun`` started on this machine (``LOCAL_WORLD_SIZE``); 1 outside torchrun."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def restore_ieee_denormals() -> None:
    """Turn flush-to-zero off again if torch is loaded (no-op otherwise).

    :func:`configure_threads` sets flush-to-zero for the networks' speed; scipy's
    balanced ``cKDTree`` then crashes (segfault) on voxel-grid coordinates, so
    numpy/scipy algorithms that may run in the same process after a fit call
    this first. The next :func:`configure_threads` turns it back on.
    """
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)
