"""Device resolution and CPU thread policy.

Nothing else in the library names a device literally: everything goes through
:func:`resolve_device` so "auto" picks CUDA, then Apple MPS, then CPU.
"""

from __future__ import annotations

import os

from AnatomyINRLib.core.errors import InputError

_VALID = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str = "auto"):
    """Turn a device name into a ``torch.device``.

    Args:
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".

    Returns:
        torch.device that exists on this machine.

    Raises:
        InputError: unknown name, or the requested accelerator is absent.
    """
    import torch

    name = str(device).strip().lower()
    base = name.split(":", 1)[0]
    if base not in _VALID:
        raise InputError(f"device: expected one of {', '.join(_VALID)}, got {device!r}")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise InputError("device: 'cuda' requested but no CUDA GPU is available (use auto or cpu)")
    if base == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError("device: 'mps' requested but Apple MPS is not available")
    return torch.device(name)


def configure_threads(num_threads: int | None = None, interactive: bool = False) -> int:
    """Set torch CPU threads and flush denormals.

    Softplus(β=100) networks produce denormal floats; flushing them made
    softplus 4.8× faster on CPU (PERFORMANCE.md). Inside an interactive host
    (Slicer) one core is left free because OpenMP threads collapse when another
    process competes for every core.

    Args:
        num_threads: Explicit thread count (more than the cores is capped at the core
            count, with a warning); None chooses from ``interactive``.
        interactive: Leave one core for the GUI.

    Returns:
        The thread count now in force.
    """
    import torch

    torch.set_flush_denormal(True)
    cores = os.cpu_count() or 1
    if num_threads is None:
        num_threads = max(1, cores - 1) if interactive else cores
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
