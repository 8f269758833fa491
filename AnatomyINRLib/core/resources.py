"""What this machine can hold: available memory, and refusing work that cannot fit in it.

Size and count arguments (points, grid nodes...) are checked against an
estimate *before* allocating, so an impossible request fails in milliseconds
with a message giving the estimate and the limit, instead of swapping the
machine to a halt.
"""

from __future__ import annotations

import os
from typing import Optional

from AnatomyINRLib.core.errors import InputError


def available_memory_mb() -> Optional[float]:
    """Memory a new allocation can use now, in MB (None if the platform does not say).

    Linux: ``MemAvailable`` of /proc/meminfo (free memory plus reclaimable
    caches); elsewhere the physical memory size from ``sysconf``.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_in_memory(argument: str, need_mb: float, what: str, available_mb: Optional[float] = None) -> None:
    """InputError naming ``argument`` if ``need_mb`` exceeds the available memory.

    Args:
        argument: The argument that sets the size (e.g. "--points").
        need_mb: Estimated working memory in MB.
        what: The work, for the message (e.g. "sampling and saving 100000000 points").
        available_mb: The limit; default :func:`available_memory_mb` (no check if unknown).
    """
    limit = available_memory_mb() if available_mb is None else available_mb
    if limit is not None and need_mb > limit:
        raise InputError(f"{argument}: {what} needs about {need_mb:,.0f} MB but this machine has "
                         f"{limit:,.0f} MB available; use a smaller value")
