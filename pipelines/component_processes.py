"""Runs the nodes of a DAG at the same time, each in a process of its own, as soon as the nodes upstream of it
have finished; at most `workers` at once, the node with the longest chain of nodes below it first.

The processes come from multiprocessing's fork server: a fresh interpreter, started once, that imports what
the pipeline's definition imports (TensorFlow, TFX, Beam, TFMA, TFT, TFDV) and then only forks. Forking the runner itself would be
cheaper, but the runner may be a process that has already run TensorFlow, Beam or gRPC (a notebook, a test
session), and a fork taken while their threads hold locks can hang. Each node's process gets the runner's
environment variables, working directory, stdout and stderr (the files they are now, and Python's stdout if
it was redirected to a file), logging set-up, and dies with the
runner: it holds the reading end of a pipe that only the runner writes to, and a thread ends the process
when that pipe closes.

A node that fails stops the run: nothing new starts, the nodes already running finish, and the first failure's
exception is raised. No TFX import here, so that the fork server starts before the runner's own imports.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.connection import wait

from absl import logging

from settings import logs

# What the runner imports to define the pipeline, so that a node's process finds the libraries as a
# LocalDagRunner run in the runner's process did: imported this way, `tf.keras` is Keras 3 in both.
PRELOAD = ("pipelines.pipeline",)
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes with its terminating NUL; a margin for the listener's name


class ComponentFailedError(RuntimeError):
    """A node failed and its exception could not be passed back as itself, or its process ended without a word."""


def start(preload: tuple[str, ...] = PRELOAD) -> multiprocessing.context.BaseContext:
    """Starts the fork server (once per process; it imports `preload` while the caller goes on)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    from multiprocessing import forkserver

    with _socket_directory():
        forkserver.ensure_running()
    return context


@contextlib.contextmanager
def _socket_directory():
    """The fork server listens on a Unix socket under multiprocessing's temporary directory, made in TMPDIR
    when it starts, and a socket's path may hold at most 107 bytes: under a longer TMPDIR that directory is made
    in /tmp instead (what Python 3.14's multiprocessing does by itself)."""
    base = tempfile.gettempdir()
    if len(os.path.join(base, "pymp-12345678", "listener-12345678")) < _SOCKET_PATH_MAX:
        yield
        return
    saved = tempfile.tempdir
    tempfile.tempdir = "/tmp"  # noqa: S108 (a directory made by mkdtemp, owner-only, removed at exit)
    try:
        yield
    finally:
        tempfile.tempdir = saved


def default_workers() -> int:
    """One node per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def launch_order(upstream: dict[str, set[str]]) -> dict[str, int]:
    """Node -> the number of nodes on its longest chain downstream (itself included): the priority."""
    downstream: dict[str, set[str]] = {n: set() for n in upstream}
    for node, ups in upstream.items():
        for up in ups:
            downstream[up].add(node)
    depth: dict[str, int] = {}

    def chain(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((chain(d) for d in downstream[node]), default=0)
        return depth[node]

    return {n: chain(n) for n in upstream}


def run_nodes(upstream: dict[str, list[str]], launch: Callable[[str], None], workers: int) -> None:
    """Calls `launch(node_id)` (picklable) in a process of its own for every node of `upstream` (node id -> ids of
    the nodes before it, in topological order; ties go in that order), once those nodes have finished."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    ups = {n: set(u) & set(upstream) for n, u in upstream.items()}
    context = start()
    state = _State(environment=dict(os.environ), stdout=_stdout_path(), logging=logs.current_setup(),
                   verbosity=logging.get_verbosity())  # fmt: skip
    lifeline, alive = context.Pipe(duplex=False)  # only this process holds `alive`: closed when it ends
    try:
        _schedule(upstream, ups, launch, workers, context, state, lifeline)
    finally:
        alive.close()
        lifeline.close()


def _schedule(upstream, ups, launch, workers, context, state, lifeline) -> None:
    priority = launch_order(ups)
    position = {n: k for k, n in enumerate(upstream)}
    pending, done = set(upstream), set()
    running: dict = {}  # the reading end of a node's pipe -> node id, process
    failure: BaseException | None = None
    while pending or running:
        ready = sorted((n for n in pending if ups[n] <= done), key=lambda n: (-priority[n], position[n]))
        while failure is None and ready and len(running) < workers:
            node_id = ready.pop(0)
            pending.discard(node_id)
            logging.info("Component %s is running.", node_id)
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(launch, node_id, state, writer, lifeline), name=node_id)
            process.start()
            writer.close()
            running[reader] = (node_id, process)
        if not running:
            break
        for reader in wait(list(running)):  # readable: the node's report, or the end of its process
            node_id, process = running.pop(reader)
            error = _result(node_id, process, reader)
            if error is None:
                done.add(node_id)
                logging.info("Component %s is finished.", node_id)
            else:
                logging.error("Component %s failed: %s", node_id, error)
                failure = failure or error
    if failure is not None:
        raise failure


class _State:
    """What a node's process takes over from the runner."""

    def __init__(self, environment: dict, stdout: str | None, logging: dict, verbosity: int):
        self.environment, self.stdout, self.logging, self.verbosity = environment, stdout, logging, verbosity

    def __getstate__(self) -> dict:
        from multiprocessing import reduction

        # the runner's stdout and stderr as they are now (a test's capture, a redirect), not the fork server's
        return {**self.__dict__, "fds": (reduction.DupFd(1), reduction.DupFd(2))}

    def enter(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for target, fd in zip((1, 2), getattr(self, "fds", ()), strict=False):
            own = fd.detach()
            os.dup2(own, target)
            os.close(own)
        os.environ.clear()
        os.environ.update(self.environment)
        if self.stdout:  # the runner's stdout is a file (its log): prints go there too
            sys.stdout = open(self.stdout, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (the process's own)
        if self.logging:
            logs.setup(**self.logging)
        logging.set_verbosity(self.verbosity)


def _stdout_path() -> str | None:
    name = getattr(sys.stdout, "name", None)
    return name if isinstance(name, str) and os.path.isfile(name) else None


def _child(launch: Callable[[str], None], node_id: str, state: _State, writer, lifeline) -> None:
    threading.Thread(target=_end_with_the_runner, args=(lifeline,), daemon=True, name="lifeline").start()
    try:
        state.enter()
        launch(node_id)
        writer.send_bytes(b"")
    except BaseException as e:
        logging.exception("Component %s failed", node_id)
        writer.send_bytes(_pickled(e))
    finally:
        writer.close()
        sys.stdout.flush()
        sys.stderr.flush()


def _end_with_the_runner(lifeline) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()  # the runner never writes: this returns when its end closes
    os.kill(os.getpid(), signal.SIGKILL)


def _pickled(error: BaseException) -> bytes:
    """The exception itself where it survives pickling, else one that carries its type and message."""
    try:
        data = pickle.dumps(error)
        pickle.loads(data)  # noqa: S301 (just made)
        return data
    except Exception:
        return pickle.dumps(ComponentFailedError(f"{type(error).__name__}: {error}"))


def _result(node_id: str, process, reader) -> BaseException | None:
    """None when the node's process reported success, else the exception it reported (or why it reported none)."""
    try:
        data = reader.recv_bytes()
    except EOFError:
        data = None
    reader.close()
    process.join()
    if data == b"":  # the node's work is recorded; how its process ended after that does not undo it
        return None
    if data:
        return pickle.loads(data)  # noqa: S301 (written by this run's own child process)
    code = process.exitcode
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return ComponentFailedError(f"component {node_id}'s process ended ({how}) without reporting a result")
