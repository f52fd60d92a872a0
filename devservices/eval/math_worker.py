"""Symbolic equivalence in a separate, killable process.

The worker receives *parsed trees* (see :mod:`devservices.eval.mathexpr`), never user
text, and builds sympy objects from them with sympy's constructors. Because
``sympy.simplify`` can run for a very long time, every job has a deadline: the parent
kills the worker when it passes and starts a fresh one for the next job.

Protocol: one JSON object per line on stdin/stdout. The worker first prints
``{"ready": true}``; each job ``{"a": tree, "b": tree}`` is answered with
``{"result": "equal" | "different" | "unknown" | "error", "detail": str}``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class MathWorkerTimeout(Exception):
    """The job did not finish within its deadline (the worker was killed)."""


class MathWorkerError(Exception):
    """The worker crashed or answered garbage."""


# -- worker side (runs in the child process) ------------------------------------------


def _build(tree: list[Any], sympy: Any, symbols: dict[str, Any]) -> Any:
    op = tree[0]
    if op == "num":
        frac = Fraction(tree[1])
        return sympy.Rational(frac.numerator, frac.denominator)
    if op == "var":
        name = tree[1]
        if name not in symbols:
            symbols[name] = sympy.Symbol(name)
        return symbols[name]
    if op == "const":
        return sympy.pi if tree[1] == "pi" else sympy.E
    if op == "neg":
        return -_build(tree[1], sympy, symbols)
    if op == "call":
        fn = {
            "sin": sympy.sin,
            "cos": sympy.cos,
            "tan": sympy.tan,
            "exp": sympy.exp,
            "log": sympy.log,
            "sqrt": sympy.sqrt,
            "abs": sympy.Abs,
            "asin": sympy.asin,
            "acos": sympy.acos,
            "atan": sympy.atan,
            "sinh": sympy.sinh,
            "cosh": sympy.cosh,
            "tanh": sympy.tanh,
        }[tree[1]]
        return fn(_build(tree[2], sympy, symbols))
    a = _build(tree[1], sympy, symbols)
    b = _build(tree[2], sympy, symbols)
    if op == "add":
        return sympy.Add(a, b)
    if op == "sub":
        return sympy.Add(a, -b)
    if op == "mul":
        return sympy.Mul(a, b)
    if op == "div":
        return sympy.Mul(a, sympy.Pow(b, -1))
    if op == "pow":
        return sympy.Pow(a, b)
    raise ValueError(f"unknown node {op!r}")


def _check(job: dict[str, Any], sympy: Any) -> dict[str, str]:
    symbols: dict[str, Any] = {}
    a = _build(job["a"], sympy, symbols)
    b = _build(job["b"], sympy, symbols)
    diff = sympy.simplify(a - b)
    if diff == 0:
        return {"result": "equal", "detail": "simplify(a - b) == 0"}
    if diff.is_number and diff.is_finite and diff.is_zero is False:
        return {"result": "different", "detail": "a - b is a non-zero constant"}
    return {"result": "unknown", "detail": "simplify(a - b) did not reach 0"}


def main() -> None:  # pragma: no cover - exercised through the pool in a subprocess
    import resource

    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit * 1024 * 1024, limit * 1024 * 1024))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import sympy

    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            reply = _check(json.loads(line), sympy)
        except MemoryError:
            reply = {"result": "error", "detail": "out of memory"}
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            reply = {"result": "error", "detail": type(exc).__name__}
        out.write(json.dumps(reply) + "\n")
        out.flush()


# -- parent side ----------------------------------------------------------------------


def _pycache_prefix() -> str | None:
    """A private bytecode cache so that importing sympy is fast after the first run."""
    path = Path(tempfile.gettempdir()) / f"co-devservices-pycache-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return str(path)


class _Worker:
    def __init__(self, memory_limit_mb: int, startup_timeout: float) -> None:
        boot = (
            "import sys; sys.path.insert(0, sys.argv[2]); "
            "from devservices.eval.math_worker import main; main()"
        )
        argv = [sys.executable, "-I"]
        prefix = _pycache_prefix()
        if prefix:
            argv += ["-X", f"pycache_prefix={prefix}"]
        argv += ["-c", boot, str(memory_limit_mb), str(REPO_ROOT)]
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": os.defpath},
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        self._buf = b""
        self.startup_timeout = startup_timeout

    def wait_ready(self) -> None:
        try:
            ready = self._readline(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.kill()
            raise
        if ready.strip() != b'{"ready": true}':
            self.kill()
            raise MathWorkerError("math worker did not start")

    def _readline(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MathWorkerTimeout
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise MathWorkerTimeout
            chunk = os.read(fd, 65536)
            if not chunk:
                raise MathWorkerError("math worker exited")
            self._buf += chunk
            if len(self._buf) > 1 << 20:
                raise MathWorkerError("math worker answer too large")
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def ask(self, job: dict[str, Any], timeout: float) -> dict[str, str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        self.proc.stdin.flush()
        reply = json.loads(self._readline(time.monotonic() + timeout))
        if not isinstance(reply, dict) or "result" not in reply:
            raise MathWorkerError("malformed answer from math worker")
        return {str(k): str(v) for k, v in reply.items()}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class MathWorkerPool:
    """A few long-lived sympy workers; thread-safe, blocking API (use ``asyncio.to_thread``).

    Not tied to an event loop, so one pool can serve several apps and test loops.
    """

    def __init__(
        self, size: int = 2, *, memory_limit_mb: int = 1024, startup_timeout: float = 60.0
    ) -> None:
        self.size = max(1, size)
        self.memory_limit_mb = memory_limit_mb
        self.startup_timeout = startup_timeout
        self._idle: list[_Worker] = []
        self._starting: set[_Worker] = set()
        self._slots = threading.BoundedSemaphore(self.size)
        self._lock = threading.Lock()
        self._closed = False

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise MathWorkerError("math worker pool is closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.proc.poll() is None:
                    return worker
                worker.kill()
            worker = _Worker(self.memory_limit_mb, self.startup_timeout)
            self._starting.add(worker)
        try:
            worker.wait_ready()  # close() kills a starting worker, which ends this wait
        finally:
            with self._lock:
                self._starting.discard(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed:
                worker.kill()
            else:
                self._idle.append(worker)

    def check(self, job: dict[str, Any], timeout: float) -> dict[str, str]:
        """Run one job; raise :class:`MathWorkerTimeout` after ``timeout`` seconds."""
        with self._slots:
            worker = self._take()
            try:
                reply = worker.ask(job, timeout)
            except BaseException:
                worker.kill()
                raise
            self._give_back(worker)
            return reply

    def warm_up(self) -> None:
        """Start one worker ahead of the first job (sympy takes seconds to import)."""
        with self._slots:
            self._give_back(self._take())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            starting = list(self._starting)
        for worker in starting:
            if worker.proc.poll() is None:
                worker.proc.kill()  # its wait_ready() sees EOF and cleans up
        for worker in idle:
            worker.kill()


if __name__ == "__main__":  # pragma: no cover
    main()
