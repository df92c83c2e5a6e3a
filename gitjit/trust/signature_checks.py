"""GnuPG's verdicts on the commits a walk meets, in batches, on every core (docs/format.md, section 4).

`TrustedBranch` is given a `SignatureChecker` (the default one unless a
caller passes its own) and asks it for verdicts; it never runs GnuPG or a
thread itself. A checker:

1. verifies one commit with the keyring of the policy in force at it
   (`verify_one`), and fails closed where that raises (`verdict`);
2. reuses the good verdicts an earlier run kept (trust/cache/signatures.py),
   through the cache it opens for the branch's cache folder (`open_cache`);
3. runs GnuPG on a thread pool, one thread per core (`workers`), once a batch
   has `pool_min_jobs` checks for GnuPG: a push of one decision never pays
   for a pool;
4. lets a walk start each check as soon as it meets it (`PendingChecks`), so
   gpg runs on the other cores while the walk reads the next commits.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from gitjit import reasons as R
from gitjit.namedtuple import TYPE_CHECKING
from gitjit.reasons import Reason
from gitjit.trust.signatures import CommitParts, Keyring, SignatureCheck

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import ThreadPoolExecutor

    from gitjit.trust.cache.signatures import SignatureCache
    from gitjit.trust.entries import DecisionEntry, RequestEntry

Job = tuple[str, CommitParts, Keyring]  # (commit id, its parts, the keyring that checks it)

# A batch shorter than this is checked one signature at a time, in this thread:
# a push of one decision never pays for a thread pool.
POOL_MIN_JOBS = 4


def default_workers() -> int:
    """One pool thread per core: each keeps a gpg process busy. More threads fight the
    walk (and each other) for the GIL and measured slower on two cores, not faster."""
    return int(os.environ.get("GITJIT_WORKERS", "0")) or os.cpu_count() or 2


def _open_shared_cache(directory: str) -> SignatureCache:
    from gitjit.trust.cache.signatures import SignatureCache  # only a run that checks signatures pays for it

    return SignatureCache.for_directory(directory)


class SignatureChecker:
    """Verdicts on commit signatures, batched and cached (see the module docstring).

    `workers`: pool threads (default: `default_workers()`, read when a pool
    starts); `pool_min_jobs`: the shortest batch that gets a pool;
    `open_cache`: the signature cache of a cache folder (default: the one
    this process keeps open for it).
    """

    def __init__(self, workers: int | None = None, pool_min_jobs: int = POOL_MIN_JOBS,
                 open_cache: Callable[[str], SignatureCache] | None = None):
        self.workers = workers
        self.pool_min_jobs = pool_min_jobs
        self.open_cache = open_cache or _open_shared_cache

    def pool_workers(self) -> int:
        return self.workers or default_workers()

    def verify_one(self, job: Job) -> SignatureCheck:
        """GnuPG's verdict on one commit; an unsigned one is refused without running it."""
        _, parts, keyring = job
        if parts.signature is None:
            return SignatureCheck.refused(Reason(R.NOT_SIGNED, "not signed"))
        return keyring.verify(parts.payload, parts.signature)

    def verdict(self, job: Job) -> SignatureCheck:
        """`verify_one`, failing closed: whatever raises makes it "not good"."""
        try:
            return self.verify_one(job)
        except Exception as exc:
            return SignatureCheck.refused(Reason(R.GPG_FAILED, f"signature could not be checked: {exc}"))

    def verify(self, jobs: list[Job]) -> list[SignatureCheck]:
        """GnuPG verdicts for many commits, on every core when there are many."""
        if len(jobs) < self.pool_min_jobs:
            return [self.verify_one(job) for job in jobs]
        from concurrent.futures import ThreadPoolExecutor  # only a long batch pays for it

        with ThreadPoolExecutor(max_workers=self.pool_workers()) as pool:
            return list(pool.map(self.verify_one, jobs))

    def check(self, cache_directory: str, jobs: list[Job]) -> list[SignatureCheck]:
        """Verdicts for many commits; good ones reached by an earlier run come from the cache."""
        return self.open_cache(cache_directory).check(jobs, self.verify)

    def pending(self, cache_directory: str) -> PendingChecks:
        """An empty batch for one walk, whose checks start as they are appended."""
        return PendingChecks(self, cache_directory)


class PendingChecks:
    """The signed requests and decisions one walk meets, in branch order,
    each one's GnuPG check started as soon as it is appended, so that gpg runs
    on the other cores while the walk reads and parses the next commits.

    The verdicts are exactly those `SignatureChecker.check` gives the same
    batch at the end of the walk: one the cache may reuse is taken from it,
    every other comes from GnuPG in this process, and the good ones are stored
    once all are in. Checks wait until `pool_min_jobs` of them need GnuPG, and
    a batch shorter than that is checked one by one at the end. Fail closed: a
    check that raises, wherever it raises, is "not good".
    """

    def __init__(self, checker: SignatureChecker, cache_directory: str):
        self.entries: list[RequestEntry | DecisionEntry] = []
        self._checker = checker
        self._cache_directory = cache_directory
        self._jobs: list[Job] = []
        self._found: list[SignatureCheck | None] = []  # from the cache, else None
        self._waiting: list[int] = []  # jobs for GnuPG before the pool starts
        self._futures: dict = {}  # job index -> its Future in the pool
        self._cache: SignatureCache | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def pooled(self) -> int:
        """How many checks were handed to the pool so far."""
        return len(self._futures)

    @property
    def pool_running(self) -> bool:
        return self._pool is not None

    def append(self, entry: RequestEntry | DecisionEntry) -> None:
        if self._cache is None:
            self._cache = self._checker.open_cache(self._cache_directory)
        job = (entry.commit, entry.parts, entry.state.keyring)
        found = self._cache.lookup(job, datetime.now(UTC))
        self.entries.append(entry)
        self._jobs.append(job)
        self._found.append(found)
        if found is not None:
            return
        self._waiting.append(len(self._jobs) - 1)
        if self._pool is None and len(self._waiting) >= self._checker.pool_min_jobs:
            from concurrent.futures import ThreadPoolExecutor  # only a long batch pays for it

            self._pool = ThreadPoolExecutor(max_workers=self._checker.pool_workers())
        if self._pool is not None:
            for index in self._waiting:
                self._futures[index] = self._pool.submit(self._checker.verdict, self._jobs[index])
            self._waiting.clear()

    def checks(self) -> list[SignatureCheck]:
        """Every verdict, in the order appended; stores the good ones GnuPG just reached."""
        verdict = self._checker.verdict
        results = list(self._found)
        for index in self._waiting:  # a batch too short for the pool
            results[index] = verdict(self._jobs[index])
        # The walk is over, so this thread checks too: it takes the checks the pool
        # has not started, from the back of the queue, while the pool works from the front.
        for index in reversed(list(self._futures)):
            if not self._futures[index].cancel():
                break
            results[index] = verdict(self._jobs[index])
        for index, future in self._futures.items():
            if not future.cancelled():
                try:
                    results[index] = future.result()
                except Exception as exc:  # fail closed
                    results[index] = SignatureCheck.refused(
                        Reason(R.GPG_FAILED, f"signature could not be checked: {exc}"))
        computed = [i for i, found in enumerate(self._found) if found is None]
        if computed:  # so the first append opened the cache
            self._cache.store([(self._jobs[i], results[i]) for i in computed])  # type: ignore[union-attr]
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Stops the pool; the checks it has not started are dropped (the walk failed)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
