"""Memory estimates before large allocations: a request that cannot fit is refused with what would fit, instead of
an out-of-memory crash deep inside torch (or the machine swapping for an hour)."""
from __future__ import annotations

import os
import re

from dlbench.errors import ResourceError

# What torch's allocators say when a request cannot be met: the CPU allocator's RuntimeError, and the size in it.
_CPU_ALLOCATOR_FAILURE = "can't allocate memory"
_ASKED_SIZE = re.compile(r"[Tt]ried to allocate (?P<size>\d+ bytes|[\d.]+ [KMGT]?i?B)")

# Leave room for everything else the process and the machine hold.
USABLE_SHARE = 0.8


def available_bytes(device) -> int:
    """Free memory of `device`: the GPU's free memory, or the host's available memory."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def byte_size(num_bytes: float) -> str:
    """A size for people: 3.07 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if num_bytes < 1024 or unit == "TiB":
            return f"{num_bytes:.3g} {unit}"
        num_bytes /= 1024
    raise AssertionError("unreachable")


def require_memory(needed_bytes: float, device, what: str, per_unit_bytes: float | None = None,
                   unit: str = "") -> None:
    """Refuse `what` when it needs more than the usable share of the device's free memory, saying how much it needs,
    how much there is, and (given the bytes per unit of the request) how many units would fit."""
    usable = USABLE_SHARE * available_bytes(device)
    if needed_bytes <= usable:
        return
    fits = ""
    if per_unit_bytes:
        fits = f"; at most about {int(usable // per_unit_bytes):,} {unit} would fit"
    raise ResourceError(f"{what} needs about {byte_size(needed_bytes)} of memory but {device} has {byte_size(usable)} "
                        f"usable{fits}")


def is_out_of_memory(exc: BaseException) -> bool:
    """An allocation the device could not meet: Python's MemoryError, torch's OutOfMemoryError (CUDA and others), or
    the CPU allocator's RuntimeError."""
    import torch

    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or \
        (isinstance(exc, RuntimeError) and _CPU_ALLOCATOR_FAILURE in str(exc))


def out_of_memory_refusal(exc: BaseException, what: str, device, smaller: str) -> ResourceError:
    """The one-line refusal of `what` after the allocation `exc` failed on `device`: how much one allocation asked for
    (when the allocator said), how much the device has, and what to make `smaller`."""
    asked = _ASKED_SIZE.search(str(exc))
    size = ""
    if asked:
        text = asked["size"]
        size = f" (one allocation of {byte_size(int(text.split()[0])) if text.endswith('bytes') else text})"
    return ResourceError(f"{what} ran out of memory on {device}{size}; {byte_size(available_bytes(device))} is "
                         f"available there; make it smaller: {smaller}")
