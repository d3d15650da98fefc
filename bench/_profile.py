"""Where a served process's CPU goes: py-spy samples it from outside (no code of ours runs in
the process being measured) and the collapsed stacks are summed by package and by our own
functions."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["Sampler", "summarize"]

OUR_PACKAGES = ("gateway", "process_apis", "system_apis", "experience_apis", "contracts")
SAMPLES_PER_SECOND = 100
# py-spy's raw frames read `function (path/to/module.py:line)`.
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")


class Sampler:
    """py-spy `record` on each pid (and its children: granian serves from a worker) for the
    length of the block; `report()` sums what it saw. Does nothing when not `enabled`.
    Sampling pauses the process for each sample, so a sampled run is slower."""

    def __init__(self, pids: Sequence[int], folder: Path, *, enabled: bool) -> None:
        self._pids = list(pids)
        self._folder = folder
        self._enabled = enabled
        self._recorders: list[tuple[subprocess.Popen[bytes], Path]] = []

    def __enter__(self) -> Sampler:
        if not self._enabled:
            return self
        binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(binary).exists():
            raise SystemExit("--profile needs py-spy: pip install py-spy (in the dev extras)")
        for pid in self._pids:
            output = self._folder / f"profile-{pid}.txt"
            recorder = subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--subprocesses",
                    # Only samples that hold the GIL: Python code running, not threads
                    # waiting on sockets or locks (the server's own Rust threads are not seen).
                    "--gil",
                    "--full-filenames",
                    "--rate",
                    str(SAMPLES_PER_SECOND),
                    "--format",
                    "raw",
                    "--output",
                    str(output),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._recorders.append((recorder, output))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for recorder, _ in self._recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder, _ in self._recorders:
            try:
                recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                recorder.kill()

    def report(self, *, count: int, unit: str) -> str:
        """The summary, with CPU per `unit` over `count` of them (flows, requests)."""
        stacks: Counter[str] = Counter()
        for _, output in self._recorders:
            if output.exists():
                stacks.update(_read(output.read_text()))
        keep = os.environ.get("ERPGW_BENCH_PROFILE_RAW")
        if keep:
            # py-spy's raw stacks, for a flame graph or a closer look than the summary's.
            Path(keep).write_text("".join(f"{stack} {n}\n" for stack, n in stacks.items()))
        return summarize(stacks, count=count, unit=unit)


def _read(text: str) -> Counter[str]:
    stacks: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def summarize(stacks: Counter[str], *, count: int, unit: str, top: int = 15) -> str:
    """CPU by the package of the innermost frame (where the time is spent), and by the
    outermost function of ours on the stack (which of our code asked for it)."""
    total = sum(stacks.values())
    if not total:
        return "profile: no samples (was py-spy allowed to attach?)"
    by_package: Counter[str] = Counter()
    by_ours: Counter[str] = Counter()
    by_frame: Counter[str] = Counter()
    for stack, samples in stacks.items():
        frames = [_frame(raw) for raw in stack.split(";") if raw]
        frames = [frame for frame in frames if frame is not None]
        if not frames:
            continue
        by_package[_package(frames[-1][1])] += samples
        function, path = frames[-1]
        by_frame[f"{_module(path)}.{function}"] += samples
        ours = [
            f"{_module(path)}.{function}"
            for function, path in frames
            if _package(path) in OUR_PACKAGES
        ]
        by_ours[ours[-1] if ours else "(no code of ours on the stack)"] += samples
    ms_per_sample = 1000 / SAMPLES_PER_SECOND
    per = ms_per_sample / max(count, 1)
    lines = [
        f"profile: {total} samples holding the GIL at {SAMPLES_PER_SECOND}/s "
        f"({total * per:.3f} ms of Python CPU a {unit})"
    ]
    lines.append("  where the CPU is spent (innermost frame's package):")
    for name, samples in by_package.most_common(top):
        lines.append(_share(name, samples, total, per, unit))
    lines.append("  the hottest functions (innermost frame):")
    for name, samples in by_frame.most_common(top):
        lines.append(_share(name, samples, total, per, unit))
    lines.append("  which of our functions asked for it (innermost frame of ours):")
    for name, samples in by_ours.most_common(top):
        lines.append(_share(name, samples, total, per, unit))
    return "\n".join(lines)


def _share(name: str, samples: int, total: int, per: float, unit: str) -> str:
    return f"    {100 * samples / total:5.1f}%  {samples * per:7.3f} ms/{unit}  {name}"


def _frame(raw: str) -> tuple[str, str] | None:
    match = FRAME.match(raw.strip())
    if match is None:
        return None
    return match.group("function"), match.group("path")


def _package(path: str) -> str:
    parts = Path(path).parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        return rest[0].removesuffix(".py") if rest else path
    for package in OUR_PACKAGES:
        if package in parts:
            return package
    if path.startswith("<"):
        return path
    return f"stdlib:{Path(path).stem}"


def _module(path: str) -> str:
    parts = list(Path(path).with_suffix("").parts)
    if "site-packages" in parts:
        return ".".join(parts[parts.index("site-packages") + 1 :])
    for index, part in enumerate(parts):
        if part in OUR_PACKAGES:
            return ".".join(parts[index:])
    return Path(path).stem
