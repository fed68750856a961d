"""What a training subprocess needs of its parent: to die with it. No Django; `sft.run_distributed` (the parent's
side) and `launch` (the child's side) both import it, so neither imports the other for it."""

from __future__ import annotations

import ctypes
import signal


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG), so that a worker killed
    mid-run leaves no orphan training on the GPUs."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the parent's own cleanup has to do
        pass
