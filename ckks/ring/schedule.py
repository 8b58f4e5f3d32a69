"""How the parallel kernels share their jobs among threads: each thread claims the next job from a counter.

``prange(n)`` gives each of the T threads one contiguous share of about n/T jobs, fixed before the loop
starts (static scheduling), so a kernel lasts as long as its slowest thread. On a shared virtual machine
the cores' speed changes from one moment to the next with the host's other load: with static shares, the
faster core waits at the end of every kernel. Here the jobs are claimed from a shared counter instead,
each by the first thread to ask for it, so a core that runs faster does more of them (OpenMP's
``schedule(dynamic, 1)``):

    jobs = job_counter()  # the next job to claim
    for _ in prange(n):  # n tasks: every thread is started on its static share of them
        i = next_job(jobs)
        while i < n:  # the first task of each thread claims jobs until none is left
            ...  # job i
            i = next_job(jobs)  # (the thread's later tasks find none, at one claim each)

``prange`` is only what starts the threads (one loop per thread would need the thread count inside the
kernel, which Numba reads through a pointer that its on-disk cache cannot keep).

``benchmarks/dynamic_schedule.py`` times both ways on the same NTT rows (the README's "Jobs claimed from a
counter" gives its figures): at two threads the medians fall, most when another process shares the cores.
A job is computed by the same code whichever thread claims it, so every result is the same, bit for bit,
at every thread count; at one thread the jobs run in order.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic


@njit(cache=True)
def job_counter():
    """A new counter at job 0: a one-element int64 array. (Made here, in a serial function: ``np.zeros`` in a
    parallel kernel would become a parallel loop of its own, one more start of the threads.)"""
    return np.zeros(1, dtype=np.int64)


@intrinsic
def next_job(typingctx, counter):
    """The value of ``counter[0]`` before adding one to it, in one atomic step: the job the calling thread
    claims. ``counter`` is a one-element int64 array that the tasks of one kernel call share.

    The addition is an LLVM ``atomicrmw add`` with monotonic ordering: two threads never claim the same
    job, and no other memory needs ordering (the kernel's inputs were written before it started, each job
    writes its own outputs, and the kernel ends at a barrier).

    Numba's own analyses do not see this write: a kernel must not read the counter after its loop (with
    another parallel loop in the kernel, Numba may move that read before the loop, which then reads 0).
    """
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64 and counter.ndim == 1
            and counter.mutable):
        raise TypingError(f"next_job: the counter must be a writable 1-D int64 array, got {counter}")

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        first = cgutils.get_item_pointer(context, builder, array_type, array,
                                         [context.get_constant(types.intp, 0)])
        return builder.atomic_rmw("add", first, context.get_constant(types.int64, 1), "monotonic")

    return types.int64(counter), codegen
