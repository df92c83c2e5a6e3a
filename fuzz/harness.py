"""Runs one fuzz target: hypothesis-generated inputs until a count or a time budget.

A target passes when the parser under test either returns or raises one of
its documented errors for every input. Anything else that escapes is a
finding: hypothesis shrinks it to a minimal input, the harness keeps that
input and goes on fuzzing, ignoring further failures that leave gitjit at
the same place, so one run can report several distinct findings.

An input that takes longer than `slow` seconds, or more memory than the
process may have (the caller sets the limit), is a finding too: SPEC s.8
wants every push judged in bounded time and memory. Those are kept as
found, not shrunk: shrinking would run the slow input hundreds of times.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.strategies import SearchStrategy

# Inputs per hypothesis run: the time budget is checked between runs.
CHUNK = 1000


class Unavailable(Exception):
    """The code under test is not there (e.g. a module from a branch not merged yet)."""


class TooSlow(Exception):
    """Raised from a timer signal inside the code under test."""


class Target(NamedTuple):
    name: str
    examples: int  # how many inputs a full run generates
    inputs: SearchStrategy
    # Imports the code under test (lazily: a missing module skips the target)
    # and returns (the function to call on one input, its documented errors).
    load: Callable[[], tuple[Callable[[Any], object], tuple[type[BaseException], ...]]]


class Finding(NamedTuple):
    target: str
    error: str  # "ValueError: year 10000 is out of range"
    where: str  # the last gitjit frame it went through, file:line
    reproducer: Any  # the input: minimized, except for slow and memory findings
    shrunk: bool = True


class Outcome(NamedTuple):
    target: str
    inputs: int
    seconds: float
    findings: list[Finding]
    skipped: str | None = None  # why the target did not run
    out_of_time: bool = False  # the budget ran out before `examples` inputs


def where(exc: BaseException) -> str:
    """The innermost frame in gitjit the exception came through, else the innermost one.

    Walks the frames by hand: a RecursionError has a thousand of them, and
    `traceback.extract_tb` would read the source line of each.
    """
    last = ours = None
    tb = exc.__traceback__
    while tb is not None:
        last = tb
        if "/gitjit/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            ours = tb
        tb = tb.tb_next
    found = ours or last
    if found is None:
        return "?"
    return f"{Path(found.tb_frame.f_code.co_filename).name}:{found.tb_lineno}"


def run(target: Target, examples: int, budget: float, master_seed: int, slow: float = 1.0) -> Outcome:
    try:
        call, documented = target.load()
    except Unavailable as exc:
        return Outcome(target.name, 0, 0.0, [], skipped=str(exc))

    calls = 0
    known: set[tuple[str, str]] = set()  # (error type, where) already reported
    last_failing: dict[tuple[str, str], Any] = {}
    findings: list[Finding] = []

    def too_slow(signum, frame):
        # Not inside hypothesis's own callbacks (its gc timer), which would swallow
        # the exception: the interval timer fires again a moment later.
        if frame is not None and "hypothesis" in frame.f_code.co_filename:
            return
        raise TooSlow(f"one input took more than {slow:g} s")

    def one_input(data: Any) -> None:
        nonlocal calls
        calls += 1
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, slow, 0.05)
                call(data)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except documented:
            pass
        except (TooSlow, MemoryError) as exc:
            key = (type(exc).__name__, where(exc))
            if key not in known:
                known.add(key)
                findings.append(Finding(target.name, f"{key[0]}: {exc}", key[1], data, shrunk=False))
        except Exception as exc:
            key = (type(exc).__name__, where(exc))
            if key in known:
                return  # reported already: keep looking for others
            last_failing[key] = data  # hypothesis replays the minimal input last
            raise

    previous = signal.signal(signal.SIGALRM, too_slow)
    started = time.monotonic()
    generated, run_index = 0, 0
    while generated < examples and time.monotonic() - started < budget:
        size = min(CHUNK, examples - generated)
        test = settings(
            max_examples=size,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            print_blob=False,
        )(seed(master_seed + run_index)(given(target.inputs)(one_input)))
        before = calls
        try:
            test()
        except Exception as exc:  # noqa: BLE001 - whatever escaped the parser is the finding
            key = (type(exc).__name__, where(exc))
            known.add(key)
            message = str(exc).splitlines()[0] if str(exc) else ""
            findings.append(Finding(target.name, f"{key[0]}: {message[:200]}", key[1],
                                    last_failing.get(key)))
        if calls == before:
            break  # hypothesis has nothing more to generate
        generated += min(size, calls - before)
        run_index += 1
    signal.signal(signal.SIGALRM, previous)
    elapsed = time.monotonic() - started
    return Outcome(target.name, calls, elapsed, findings, out_of_time=generated < examples)
