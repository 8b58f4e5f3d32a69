"""How much memory this process holds: its resident size now and at its peak, read from Linux's /proc.

``peak_rss_bytes`` reads VmHWM, the kernel's high-water mark of this process's resident set (proc(5)).
``reset_peak_rss`` brings it down to the current size (``5`` written to /proc/self/clear_refs), so that a
peak can cover one block of work. Off Linux the peak falls back to getrusage's ru_maxrss, the largest
resident size since the process started. That figure is not used where /proc answers: Linux carries it
over fork and exec, so a process started by a large one (a Dask worker by its nanny) reports its parent's.
"""

from __future__ import annotations


def _status_bytes(field: str) -> int | None:
    """The ``field`` line of /proc/self/status (VmRSS, VmHWM: kilobytes there) in bytes; None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def current_rss_bytes() -> int | None:
    """Resident memory of this process now (VmRSS), None off Linux."""
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """This process's peak resident memory since it started or since the last ``reset_peak_rss`` (VmHWM);
    off Linux, since it started (ru_maxrss)."""
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    import resource  # Unix only: where there is no /proc either

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Bring the peak down to the current resident size; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True
