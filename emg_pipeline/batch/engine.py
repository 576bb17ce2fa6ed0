"""The engine of batches and benchmark suites: Dask (``dask.distributed``).

:class:`Engine` holds a Dask client, from one of three places:

- a client the caller already has (a notebook, a SLURM or Kubernetes cluster
  started with dask-jobqueue or dask-kubernetes);
- a scheduler address (``tcp://HOST:PORT``, or ``DASK_SCHEDULER_ADDRESS``);
- otherwise an embedded :class:`~distributed.LocalCluster` sized to the
  machine: one single-threaded worker process per core.

:meth:`Engine.map_unordered` sends one task per item (small values: a path,
a seed; never samples) and yields the results as they finish.

Dask is imported only here, when an engine is made: the rest of the package
never needs it. Without it, :func:`require_dask` raises one clear
:class:`~emg_pipeline.errors.MissingDependencyError`.

On a cluster of a scheduler (SLURM through dask-jobqueue, Kubernetes through
dask-kubernetes, or ``dask scheduler`` and ``dask worker`` by hand), give the
batch a client or the scheduler's address::

    from dask_jobqueue import SLURMCluster
    from distributed import Client
    cluster = SLURMCluster(cores=1, processes=1, memory="2GB")
    cluster.scale(jobs=50)
    emg_pipeline.batch("study/", out="study-results", client=Client(cluster))

    emg-pipeline batch study/ --out study-results --scheduler tcp://HOST:8786

What a cluster's workers need
-----------------------------
The same emg-pipeline (``pip install 'emg-pipeline[batch]'``), the same
Python, and read access to the recordings at the same paths; the output folder
is written by the process that runs the batch, not by the workers. The signal
kernels are compiled once per installation and cached next to its sources: an
image should run any pipeline once while it is built (``emg-pipeline detect``
on the bundled demo does) so that workers load them instead of compiling; when
the installation is read-only, point ``NUMBA_CACHE_DIR`` at a writable folder.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from emg_pipeline._closing import Closing
from emg_pipeline.errors import ClusterError, ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

__all__ = ["DEFAULT_DASHBOARD", "Engine", "default_workers", "require_dask"]

#: where the embedded cluster serves its dashboard (another port if taken)
DEFAULT_DASHBOARD = ":8787"
#: how long to wait for a scheduler given by address
CONNECT_TIMEOUT_S = 10.0


def require_dask(feature: str = "batch") -> None:
    """Import Dask's distributed scheduler and pyarrow, or say in one line how to install them.

    Raises
    ------
    MissingDependencyError
        If either is missing (``pip install 'emg-pipeline[batch]'``).
    """
    for module in ("dask.distributed", "pyarrow.parquet"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing = (exc.name or module).split(".")[0]
            raise MissingDependencyError(feature, "batch", missing) from None


def default_workers() -> int:
    """Worker processes of the embedded cluster: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _compile_once() -> None:
    """Compile the signal kernels here first when this installation has none cached.

    Else every worker of the embedded cluster, sharing this installation,
    would compile them all at the same time; this way one process compiles
    and the workers load the cache.
    """
    from emg_pipeline._jit import compilation_pending

    if not compilation_pending():
        return
    import numpy as np

    from emg_pipeline.pipeline import Pipeline
    from emg_pipeline.run import run
    from emg_pipeline.sources.synthetic import simulate

    rec = simulate(np.random.default_rng(0), fs=1000.0, duration_s=30.0, n_channels=2,
                   ecg_uv=300.0, motion_per_min=2.0)
    run(np.array_split(rec.signal, 30), Pipeline(rec.fs, rec.channels, unit=rec.unit))


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Start processes that ignore Ctrl-C: the embedded cluster's worker processes.

    Ctrl-C reaches every process of the terminal's foreground group; the
    process running the batch handles it (cancels the tasks, closes the
    cluster), so the workers must not die of it on their own, each with a
    traceback. An ignored signal stays ignored in a child process, even after
    it starts a new interpreter. (A Ctrl-C during the cluster's start-up, a few
    seconds, is ignored too.) Only the main thread can change signal handling:
    elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Engine(Closing):
    """A Dask client to run tasks on, and the cluster behind it when the engine started one.

    Parameters
    ----------
    client : distributed.Client, optional
        Use this client (it is left open on :meth:`close`).
    scheduler : str, optional
        Connect to the scheduler at this address (``tcp://HOST:PORT``);
        default: ``DASK_SCHEDULER_ADDRESS`` when set, else an embedded cluster.
    workers : int, optional
        Worker processes of the embedded cluster (default: one per core).
    dashboard_address : str or None
        Where the embedded cluster serves its dashboard (None: no dashboard).

    Attributes
    ----------
    client : distributed.Client
    cluster : distributed.LocalCluster or None
        The embedded cluster, when the engine started one.
    kind : {"client", "scheduler", "local"}
        Where the client came from.
    startup_s : float
        Seconds it took to start the cluster or connect.

    Raises
    ------
    MissingDependencyError
        Without Dask or pyarrow.
    ConfigError
        For a worker count below 1, or given with a client or a scheduler.
    ClusterError
        If the scheduler cannot be reached or the embedded cluster not started.
    """

    def __init__(self, client: Client | None = None, *, scheduler: str | None = None,
                 workers: int | None = None,
                 dashboard_address: str | None = DEFAULT_DASHBOARD) -> None:
        require_dask()
        from distributed import Client, LocalCluster

        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):
            raise ConfigError("workers", workers, "a whole number of worker processes, >= 1")
        started = time.perf_counter()
        self.cluster: LocalCluster | None = None
        self._owned = client is None
        self.address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        if client is not None:
            if scheduler is not None or workers is not None:
                raise ConfigError("client", client, "no scheduler address or worker count "
                                                    "with a client (it has its own workers)")
            self.kind = "client"
            self.client = client
        elif self.address is not None:
            if workers is not None:
                raise ConfigError("workers", workers, "no worker count with a scheduler "
                                                      "address (the cluster has its own workers)")
            self.kind = "scheduler"
            try:
                self.client = Client(self.address, timeout=f"{CONNECT_TIMEOUT_S:g}s")
            except (OSError, TimeoutError, ValueError, TypeError) as exc:
                raise ClusterError(self.address, f"cannot connect ({_one_line(exc)})") from None
        else:
            self.kind = "local"
            n = workers if workers is not None else default_workers()
            _compile_once()
            try:
                with warnings.catch_warnings(), _sigint_ignored():
                    # a taken dashboard port moves to another one: the address is printed
                    warnings.simplefilter("ignore")
                    self.cluster = LocalCluster(
                        n_workers=n, threads_per_worker=1, processes=True,
                        dashboard_address=dashboard_address, silence_logs=logging.ERROR,
                    )
                self.client = Client(self.cluster)
            except (OSError, RuntimeError, TimeoutError) as exc:
                if self.cluster is not None:
                    self.cluster.close()
                raise ClusterError("local", f"cannot start ({_one_line(exc)})") from None
        self.startup_s = time.perf_counter() - started

    @property
    def n_workers(self) -> int:
        """Workers connected now."""
        return len(self.client.nthreads())

    @property
    def dashboard(self) -> str | None:
        """The address of the Dask dashboard, or None when there is none."""
        services = self.client.scheduler_info().get("services", {})
        if "dashboard" not in services:
            return None
        return str(self.client.dashboard_link)

    def describe(self) -> str:
        """One line: where tasks run, how many workers, the dashboard."""
        n = self.n_workers
        where = {
            "local": f"embedded Dask cluster, {n} worker process{'es' if n != 1 else ''}",
            "scheduler": f"Dask scheduler {self.address}, {n} worker{'s' if n != 1 else ''}",
            "client": f"the given Dask client, {n} worker{'s' if n != 1 else ''}",
        }[self.kind]
        link = self.dashboard
        if link is None:
            return f"{where}; no dashboard"
        if self.kind == "local" and importlib.util.find_spec("bokeh") is None:
            return f"{where}; dashboard {link} (its plots need bokeh: pip install bokeh)"
        return f"{where}; dashboard {link}"

    def check_workers(self) -> dict[str, str]:
        """The code version of every worker (``address -> version``).

        Raises
        ------
        ClusterError
            If a worker cannot import emg-pipeline.
        """
        from .task import code_version

        try:
            return dict(self.client.run(code_version))
        except Exception as exc:  # an ImportError or a lost worker, raised from the worker
            raise ClusterError(self.address or "local",
                               f"a worker cannot run emg-pipeline ({_one_line(exc)}); "
                               "install the same version on every worker") from None

    def map_unordered(
        self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], *, name: str = "task",
    ) -> Iterator[tuple[int, Any, BaseException | None]]:
        """Run ``fn(*args)`` for every ``args`` of ``tasks``; yield results as they finish.

        Tasks start in the order given. Leaving the loop early (or Ctrl-C)
        cancels the tasks not finished.

        Parameters
        ----------
        fn : callable
            An importable function (workers import it by name).
        tasks : sequence of tuple
            The arguments of each call: small values, never large arrays.
        name : str
            Prefix of the tasks' keys (as the dashboard shows them).

        Yields
        ------
        index : int
            Position of the task in ``tasks``.
        result : object
            What ``fn`` returned (None if it failed).
        error : BaseException or None
            Why the task failed: raised by ``fn``, or the worker was lost.
        """
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]
        total = len(tasks)
        futures = [self.client.submit(fn, *args, key=f"{name}-{run}-{i}", pure=False,
                                      priority=total - i)
                   for i, args in enumerate(tasks)]
        where = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                index = where[future.key]
                try:
                    result = future.result()
                except Exception as exc:  # the task's own error, or a lost worker
                    yield index, None, exc
                else:
                    yield index, result, None
                finally:
                    future.release()
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)

    def close(self) -> None:
        """Close the client and the embedded cluster, if the engine made them."""
        if not self._owned:
            return
        self._owned = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.client.close()
            finally:
                if self.cluster is not None:
                    self.cluster.close()
