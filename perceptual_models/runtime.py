"""Process-wide settings (allocator, threads, cuDNN autotuning, denormals),
chosen once by an entry point: the app, the CLI, the benchmark, training. Library objects never
change them, so a result does not depend on which object was made first.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import torch

from .errors import ConfigError

COMPILE_CHOICES = ("auto", "1", "0")  # PERCEPTUAL_COMPILE / --compile of the app and the service check


@dataclass(frozen=True)
class RuntimeChoices:
    """What `configure` set, for `info`, the app's status line and benchmark reports."""

    device: str
    threads: int
    keep_freed_memory: bool  # glibc keeps freed memory for reuse (CPU fast path)
    cudnn_benchmark: bool
    flush_denormal: bool

    def summary(self) -> str:
        parts = [f"{self.threads} threads"]
        if self.keep_freed_memory:
            parts.append("freed memory kept for reuse")
        if self.cudnn_benchmark:
            parts.append("cuDNN autotuning")
        if self.flush_denormal:
            parts.append("denormals flushed")
        return ", ".join(parts)

    def as_dict(self) -> dict:
        return asdict(self)


def keep_freed_memory_for_reuse() -> bool:
    """Ask glibc to keep freed memory for reuse instead of handing it back to the OS.

    By default every tensor over a few MB is a fresh mmap, so each forward pass page-faults in
    hundreds of MB again (measured at 512 px: eager fp32 0.49 -> 0.27 s, compiled bf16 0.158 ->
    0.123 s). The price is that the process keeps its peak memory. Process-wide, glibc only;
    returns whether it took effect.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))


def configure(device: torch.device, threads: int | None = None, *, keep_freed_memory: bool = True,
              flush_denormal: bool = False) -> RuntimeChoices:
    """Set this process up for `device`; returns what was chosen.

    `keep_freed_memory` applies on a CPU (the fast path's allocator setting); `flush_denormal` suits
    training (saturated tanh outputs produce denormals that crawl on CPUs).
    """
    if threads:
        torch.set_num_threads(threads)
    kept = device.type == "cpu" and keep_freed_memory and keep_freed_memory_for_reuse()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # picks the fastest conv kernels per input size
    flushed = flush_denormal and torch.set_flush_denormal(True)
    return RuntimeChoices(str(device), torch.get_num_threads(), kept, device.type == "cuda", flushed)


def compiles(choice: str, device: torch.device) -> bool:
    """Whether a server compiles its networks: "auto" on a GPU only. On the 2-core CPU of a free Space it buys
    little (512 px: 0.110 s compiled, 0.135 s eager) and costs much: with the empty compiler cache of every
    restart, compiling holds the GIL for ~7 minutes, and meanwhile a 512 px stylisation took 2.0 s and a
    2048x2048 super-resolution 49 s (docs/performance.md)."""
    if choice not in COMPILE_CHOICES:
        raise ConfigError(f"PERCEPTUAL_COMPILE / --compile must be one of {', '.join(COMPILE_CHOICES)}, got {choice!r}.")
    return choice == "1" or (choice == "auto" and device.type == "cuda")


class LongWork:
    """Threads of their own, at the lowest CPU priority (nice 19; Linux), for the steps of long jobs (an
    optimization's iterations, a super-resolution's methods): the kernel gives the cores to a feed-forward
    request first, and to long jobs, at full speed, whenever none needs them. On 2 cores with a class of
    thirty at once this halved the feed-forward requests' p95; giving long jobs one thread instead of
    two changed nothing more and halves their speed when alone (docs/performance.md).
    """

    def __init__(self, workers: int, nice: int = 19) -> None:
        def lower_priority() -> None:
            if sys.platform.startswith("linux"):  # per thread there; the thread's OpenMP team inherits it
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)

        self._pool = ThreadPoolExecutor(workers, "long-work", initializer=lower_priority)

    def steps(self, job: Generator) -> Generator:
        """`job`'s items, each computed in one of these threads; closing this closes `job`."""
        done = object()
        try:
            while (step := self._pool.submit(next, job, done).result()) is not done:
                yield step
        finally:
            job.close()
