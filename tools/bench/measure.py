"""Running commands as separate processes: the measured one (wall time and peak
memory of its whole process tree) and the quiet setup steps."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pci.core.project import PROJECT_DIR

ROOT = PROJECT_DIR


@dataclass
class Sample:
    seconds: float
    peak_rss_bytes: int


def pci_command(*args: str) -> list[str]:
    """``python -m pci …`` with this interpreter."""
    return [sys.executable, "-m", "pci", *args]


def measure(cmd: list[str], *, env: dict | None = None, cwd: Path = ROOT) -> Sample:
    """Run cmd; wall time and peak RSS summed over the whole process tree."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [ps, *ps.children(recursive=True)]
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-4000:]}")
    return Sample(seconds, peak)


def run_setup(cmd: list[str]) -> None:
    """Run a preparation step (not measured); raise with its stderr if it fails."""
    res = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark setup failed: {' '.join(cmd)}\n{res.stderr[-4000:]}")
