"""Executors of a sweep: they run its runs, one after another in this process, in local worker processes, or as
tasks of a Dask distributed cluster, and hand back each run's outcome as it finishes.

Every executor calls the same `execute(request)`, which runs `dlbench.runner.run_experiment` and turns a user
mistake (a DlbenchError) into a failed outcome, so one bad run never stops the others. Safety comes from the runs
themselves: a run is claimed by its lock file, finished records are reused and `<run_id>.partial` is resumed, so
a task retried after its worker died, or a run that two sweeps both start, still ends as one record. Workers run
with `wait=True`, so a task that meets a run held by a live duplicate waits for it instead of failing.
"""
from __future__ import annotations

import os
import socket
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Protocol

from dlbench.errors import ConfigError, DlbenchError
from dlbench.plugins import DISABLE_ENV

TRAINED, REUSED, FAILED = "trained", "reused", "failed"
# A Dask task that raised runs again up to this many times; one lost with its worker is rescheduled by Dask itself
# (up to distributed.scheduler.allowed-failures times) and resumes from the run's checkpoints.
DASK_RETRIES = 2
POOL_RESTARTS = 2  # the local process pool breaks as a whole when one worker dies: restart it this many times
# gin's config is process-wide: one run at a time per process, whatever the number of threads a worker has.
_ONE_RUN_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class RunRequest:
    """One run of a sweep as a worker gets it: plain, picklable data."""
    plan_id: str
    config_files: tuple[str, ...]  # absolute paths (on a cluster: on a file system the workers share)
    bindings: tuple[str, ...]
    out_dir: str
    device: str = "auto"
    wait: bool = True
    disabled_plugins: str = ""  # the sweep's $DLBENCH_DISABLE_PLUGINS, for workers started elsewhere


@dataclass(frozen=True)
class RunOutcome:
    plan_id: str
    status: str  # TRAINED, REUSED or FAILED
    worker: str  # host:pid of the process that ran it
    run_id: str | None = None
    run_dir: str | None = None
    fit_seconds: float | None = None
    headline: tuple[str, float] | None = None  # (score label, value): the record's first score
    rescored: tuple[str, ...] = ()  # metrics scored again on a reused run's saved fit
    message: str | None = None  # why a run failed, or a note from the runner

    @classmethod
    def failure(cls, request: RunRequest, message: str, worker: str | None = None) -> RunOutcome:
        return cls(request.plan_id, FAILED, worker or _this_worker(), message=message)


async def _scheduler_identity(address: str, timeout: float) -> object:
    """What the server at `address` says it is, asked over Dask's own protocol (with the configured security)."""
    from distributed.comm import connect
    from distributed.security import Security

    comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.split("\n", 1)[0] if text else type(exc).__name__


def headline_score(record: dict[str, Any]) -> tuple[str, float] | None:
    """The first score of the record that has a known value, sample-based metrics before the model's exact and
    training scores, averaged over the run's solutions."""
    import numpy as np

    from dlbench import records
    from dlbench.summary import scalar_scores

    def rank(label: str) -> int:
        source = label.split(".", 1)[0] if "." in label else records.EXACT_METRICS
        return {records.EXACT_METRICS: 1, records.TRAINING_SCORES: 2}.get(source, 0)

    scores = scalar_scores(record)
    for label in sorted(scores, key=rank):  # stable: the record's order within each rank
        known = scores[label][~np.isnan(scores[label])]
        if known.size:
            return label, float(known.mean())
    return None


def execute(request: RunRequest) -> RunOutcome:
    """Run one request through run_experiment; a DlbenchError (or running out of memory) is a failed outcome."""
    from dlbench.runner import run_experiment

    with _ONE_RUN_AT_A_TIME:
        if os.environ.get(DISABLE_ENV, "") != request.disabled_plugins:
            os.environ[DISABLE_ENV] = request.disabled_plugins
        try:
            result = run_experiment(list(request.config_files), list(request.bindings), out_dir=request.out_dir,
                                    device=request.device, progress=False, wait=request.wait)
        except DlbenchError as exc:
            return RunOutcome.failure(request, _first_line(exc))
        except MemoryError:
            return RunOutcome.failure(request, "out of memory; make the run smaller (--split its stack, or fewer "
                                               "solutions or a smaller batch)")
    record = result.record
    return RunOutcome(request.plan_id, REUSED if result.reused else TRAINED, _this_worker(), run_id=record["run_id"],
                      run_dir=str(result.run_dir), fit_seconds=record["timings"]["fit_seconds"],
                      headline=headline_score(record), rescored=tuple(result.rescored), message=result.note)


class Executor(Protocol):
    description: str  # for the sweep's header line

    def run(self, requests: Iterable[RunRequest]) -> Iterator[RunOutcome]:
        """Yield each request's outcome as it finishes (in any order)."""
        ...


@dataclass
class InProcessExecutor:
    """One run after another in this process; a run held by another process fails unless requests wait."""
    description: str = "in this process"

    def run(self, requests: Iterable[RunRequest]) -> Iterator[RunOutcome]:
        for request in requests:
            yield execute(request)


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries ([] without CUDA)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    return listed[:count] if listed else [str(index) for index in range(count)]


def _start_worker(started_workers, gpus: list[str], torch_threads: int) -> None:
    """Worker initializer: the n-th worker takes the n-th GPU (round robin) before torch touches CUDA."""
    with started_workers.get_lock():
        index = started_workers.value
        started_workers.value += 1
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    import torch

    torch.set_num_threads(torch_threads)  # the workers share the cores instead of each taking all of them


@dataclass
class ProcessExecutor:
    """`workers` local processes (spawned, so each starts clean of this process's torch and CUDA state). Where this
    machine has several GPUs and the runs ask for `auto` or `cuda`, each worker sees one GPU."""
    workers: int
    gpus: list[str] = field(default_factory=list)

    def __post_init__(self):
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"--workers {self.workers!r} is not accepted; expected an integer >= 1")

    @property
    def description(self) -> str:
        gpus = f", one GPU each ({', '.join(self.gpus)})" if self.gpus else ""
        return f"in {self.workers} local worker process{'es' if self.workers > 1 else ''}{gpus}"

    def _pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        torch_threads = max(1, (os.cpu_count() or 1) // self.workers)
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                   initargs=(context.Value("i", 0), self.gpus, torch_threads))

    def run(self, requests: Iterable[RunRequest]) -> Iterator[RunOutcome]:
        pending = [replace(request, wait=True) for request in requests]
        for attempt in range(POOL_RESTARTS + 1):
            pool = self._pool()
            try:
                futures = {pool.submit(execute, request): request for request in pending}
                broken = []
                for future in as_completed(futures):
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:  # a worker died (killed, out of memory): its pool is gone
                        broken.append(futures[future])
                        continue
                    yield outcome
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            pending = broken
            if not pending:
                return
        for request in pending:
            yield RunOutcome.failure(request, f"a worker process died while running it or beside it, "
                                              f"{POOL_RESTARTS + 1} times (out of memory? killed?); rerun the sweep "
                                              "to resume it", worker="local pool")


@dataclass
class DaskExecutor:
    """One task per run on a running Dask distributed scheduler. A task whose worker dies (or that raises) is
    retried on another worker, and resumes from the run's checkpoints; config files and the output directory must
    be on a file system every worker sees."""
    scheduler: str
    connect_timeout: float = 5.0  # seconds: an address where no scheduler answers is refused within about this

    @property
    def description(self) -> str:
        return f"on the Dask cluster at {self.scheduler}"

    def _refused(self, reason: str) -> ConfigError:
        return ConfigError(f"--scheduler {self.scheduler!r}: no Dask scheduler answered there ({reason}); expected "
                           "the address of a running scheduler, e.g. tcp://127.0.0.1:8786")

    def connect(self):
        """A client of the scheduler, made only once the address answered as a Dask scheduler: a Client made for
        anything else (a bad address, a port where some other server answers) hangs, then fails as it is closed."""
        import asyncio

        from distributed import Client

        try:
            identity = asyncio.run(asyncio.wait_for(_scheduler_identity(self.scheduler, self.connect_timeout),
                                                    self.connect_timeout + 1))
        except asyncio.TimeoutError:
            raise self._refused(f"no answer within {self.connect_timeout:g} s") from None
        except MemoryError:  # the first bytes of another protocol's reply, read as the size of a Dask frame
            raise self._refused("what answered does not speak Dask's protocol") from None
        except Exception as exc:  # whatever is there (nothing, an HTTP server, a bad address) is no scheduler
            raise self._refused(_first_line(exc)) from None
        if not isinstance(identity, dict) or identity.get("type") != "Scheduler":
            raise self._refused(f"what answered is not a scheduler: {str(identity)[:80]}")
        try:
            return Client(self.scheduler, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, ValueError, TypeError) as exc:
            raise self._refused(_first_line(exc)) from None

    def run(self, requests: Iterable[RunRequest]) -> Iterator[RunOutcome]:
        from distributed import KilledWorker, as_completed

        client = self.connect()
        sweep_token = uuid.uuid4().hex[:8]  # task keys unique to this sweep, named for the dashboard
        futures = {}
        try:
            for request in requests:
                future = client.submit(execute, replace(request, wait=True), retries=DASK_RETRIES,
                                       key=f"dlbench-run-{request.plan_id}-{sweep_token}")
                futures[future] = request
            for future in as_completed(futures, loop=client.loop):  # this client's: it is not the default one
                try:
                    outcome = future.result()
                except KilledWorker as exc:
                    outcome = RunOutcome.failure(futures[future], f"every worker that ran it died ({_first_line(exc)})"
                                                 "; rerun the sweep to resume it", worker=self.scheduler)
                yield outcome
        finally:
            client.cancel(list(futures))
            client.close()

