"""`make fuzz` (`python -m fuzz`): feeds gitjit's parsers of untrusted bytes generated inputs.

Each target asserts one thing: nothing but the parser's documented errors
escapes it. Prints, per target, how many inputs ran and for how long,
then every finding with its minimized input; exits 1 if there is any.

Options: --only NAME (repeatable), --scale F (multiplies every target's
input count: 0.1 for a quick look), --budget SECONDS (per target),
--seed N (to run the same inputs again), --slow SECONDS (one input taking
longer is a finding), --memory MIB (the process's address-space limit: an
input needing more is a finding, and the machine is spared).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
from pathlib import Path

from . import commits, push_lines, sigpackets, toml_documents
from .harness import Outcome, run

TARGETS = [*commits.TARGETS, *sigpackets.TARGETS, *toml_documents.TARGETS, *push_lines.TARGETS]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[t.name for t in TARGETS])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per target (default 600)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--slow", type=float, default=1.0, help="seconds one input may take (default 1)")
    parser.add_argument("--memory", type=int, default=2048, help="MiB of address space (default 2048)")
    args = parser.parse_args()
    limit = args.memory * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    master_seed = args.seed if args.seed is not None else random.randrange(2**32)

    import hypothesis

    print(f"fuzzing with hypothesis {hypothesis.__version__}, seed {master_seed} (--seed to repeat), "
          f"{args.slow:g} s and {args.memory} MiB per input", flush=True)
    outcomes: list[Outcome] = []
    for target in TARGETS:
        if args.only and target.name not in args.only:
            continue
        wanted = max(1, round(target.examples * args.scale))
        outcome = run(target, wanted, args.budget, master_seed, args.slow)
        outcomes.append(outcome)
        print(_row(outcome, wanted), flush=True)

    ran = [o for o in outcomes if not o.skipped]
    total_inputs, total_seconds = sum(o.inputs for o in ran), sum(o.seconds for o in ran)
    skipped = len(outcomes) - len(ran)
    print(f"{'total':24} {total_inputs:8,} inputs {total_seconds:8.1f} s  ({len(ran)} targets run"
          f"{f', {skipped} skipped' if skipped else ''})")
    findings = [f for o in outcomes for f in o.findings]
    if not findings:
        print("no finding: only documented errors escaped")
        return 0
    saved = Path(tempfile.mkdtemp(prefix="gitjit-fuzz-"))
    print(f"\n{len(findings)} finding(s); full reproducers in {saved}")
    for number, finding in enumerate(findings, 1):
        path = saved / f"{number}-{finding.target}.txt"
        path.write_text(repr(finding.reproducer) + "\n")
        shown = repr(finding.reproducer)
        if len(shown) > 300:
            shown = shown[:300] + f"... ({len(shown)} characters)"
        how = "minimized input" if finding.shrunk else "input (as found, not minimized)"
        print(f"{number}. {finding.target}: {finding.error}\n   at {finding.where}\n   {how}: {shown}")
    return 1


def _row(outcome: Outcome, wanted: int) -> str:
    if outcome.skipped:
        return f"{outcome.target:24} skipped: {outcome.skipped}"
    verdict = f"{len(outcome.findings)} finding(s)" if outcome.findings else "ok"
    short = f" (time budget reached before {wanted:,})" if outcome.out_of_time else ""
    return f"{outcome.target:24} {outcome.inputs:8,} inputs {outcome.seconds:8.1f} s  {verdict}{short}"


if __name__ == "__main__":
    sys.exit(main())
