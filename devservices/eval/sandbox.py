"""Parent side of the Python sandbox: spawn, limit, collect, kill, clean up.

One submission = one fresh ``python -I -S`` process running :mod:`._harness` (passed with
``-c``; the harness file is read once at import). See the harness docstring for what the
child does; this module:

* creates an empty temporary work directory (removed afterwards) and, as root, picks a
  unique unprivileged uid for the run;
* starts the child in its own session with an empty environment, stdin carrying the
  configuration (code, test *arguments* and a nonce) and an extra pipe for results;
* drains stdout/stderr with a size cap (they are never parsed for results), reads the
  result pipe with a size cap, enforces the wall-clock limit by killing the whole process
  group, and turns what it got into a :class:`RunOutcome`.

Expected values never leave the parent: comparison happens in :mod:`.python_eval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

HARNESS_SOURCE: Final = (Path(__file__).with_name("_harness.py")).read_text(encoding="utf-8")
REPO_ROOT: Final = Path(__file__).resolve().parents[2]


def _base_python() -> str:
    """The real interpreter behind the venv: the child needs only the standard library."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


def default_hidden_paths() -> tuple[str, ...]:
    """What to cover with empty read-only mounts inside the sandbox (root + namespaces).

    Every top-level entry of ``/`` except the system directories the interpreter needs
    (``/usr``, ``/lib*``, ``/bin``, ``/sbin``, ``/dev``; ``/tmp`` is replaced by a private
    tmpfs), plus the repository, ``/dev/shm`` and ``/dev/mqueue``. A path that contains
    the interpreter itself is left alone (``/root`` here, which is ``0700`` and so closed
    to the sandbox's unprivileged uid anyway). Symlinks are never mount targets.
    """
    keep = {"/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/dev", "/tmp"}
    candidates = [str(REPO_ROOT), "/dev/shm", "/dev/mqueue"]
    with contextlib.suppress(OSError):
        candidates += sorted(
            "/" + entry.name
            for entry in os.scandir("/")
            if "/" + entry.name not in keep and not entry.is_symlink()
        )
    needed = [os.path.realpath(sys.base_prefix), os.path.realpath(_base_python())]
    out: list[str] = []
    for path in candidates:
        if not os.path.lexists(path) or os.path.islink(path):
            continue
        real = os.path.realpath(path)
        if any(n == real or n.startswith(real.rstrip("/") + "/") for n in needed):
            continue
        if real not in out:
            out.append(real)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    python: str = field(default_factory=_base_python)
    namespaces: bool = True  # unshare net/mount/ipc/uts when running as root
    drop_privileges: bool = True  # run as a fresh unprivileged uid when running as root
    audit: bool = True  # install the audit hook in the child
    uid_range: tuple[int, int] = (420_000, 429_999)
    hidden_paths: tuple[str, ...] = field(default_factory=default_hidden_paths)
    tmp_root: str | None = None  # where work dirs are created (default: tempfile's)
    max_time_limit_ms: int = 10_000
    max_memory_limit_mb: int = 1024
    max_code_bytes: int = 64 * 1024
    max_tests: int = 200
    file_size_bytes: int = 1024 * 1024  # RLIMIT_FSIZE
    scratch_bytes: int = 4 * 1024 * 1024  # size of the private tmpfs (namespaces only)
    nofile: int = 32  # RLIMIT_NOFILE
    max_files_written: int = 64  # files opened for writing per run (audit hook)
    nproc: int = 1  # RLIMIT_NPROC (counts per uid; only enforced for non-root uids)
    stdout_cap: int = 4096  # captured print() output kept per test
    result_cap: int = 256 * 1024  # one return value, JSON-encoded
    result_pipe_cap: int = 8 * 1024 * 1024
    raw_output_cap: int = 64 * 1024  # fd 1/2 bytes kept (diagnostics only)
    startup_grace_s: float = 3.0
    max_wall_s: float = 60.0


@dataclass(frozen=True, slots=True)
class TestRecord:
    __test__ = False

    index: int
    status: str  # ok | error | timeout | memory | too_large | unserializable | not_run
    time_ms: int = 0
    value: Any = None
    error: str | None = None
    error_type: str | None = None
    stdout: str = ""


@dataclass(slots=True)
class RunOutcome:
    """What happened, before comparing with expected values."""

    kind: str  # finished | compile_error | missing_function | setup_failed | crashed | ...
    tests: list[TestRecord] = field(default_factory=list)
    message: str = ""
    setup_status: str | None = None
    max_rss_kb: int | None = None
    sandbox: dict[str, Any] = field(default_factory=dict)
    returncode: int | None = None
    killed_by_timeout: bool = False


_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()


def _allocate_uid(low: int, high: int) -> int:
    with _uid_lock:
        for _ in range(1000):
            uid = low + secrets.randbelow(high - low + 1)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid
    raise RuntimeError("no free sandbox uid")


def _release_uid(uid: int | None) -> None:
    if uid is not None:
        with _uid_lock:
            _uids_in_use.discard(uid)


async def _drain(stream: asyncio.StreamReader | None, cap: int) -> tuple[bytes, bool]:
    """Read a stream to EOF, keeping at most ``cap`` bytes."""
    if stream is None:
        return b"", False
    kept = bytearray()
    overflow = False
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return bytes(kept), overflow
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > max(room, 0):
            overflow = True


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _rmtree(path: str) -> None:
    def fix_and_retry(func: Any, p: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)

    shutil.rmtree(path, onerror=fix_and_retry)
    if os.path.exists(path):
        shutil.rmtree(path, ignore_errors=True)


async def run_python(
    code: str,
    function_name: str,
    tests_args: list[list[Any]],
    *,
    time_limit_ms: int,
    memory_limit_mb: int,
    settings: SandboxSettings,
) -> RunOutcome:
    """Run ``function_name(*args)`` for each ``args`` in a fresh sandboxed process."""
    time_limit_ms = max(50, min(time_limit_ms, settings.max_time_limit_ms))
    memory_limit_mb = max(16, min(memory_limit_mb, settings.max_memory_limit_mb))
    is_root = os.geteuid() == 0
    uid = _allocate_uid(*settings.uid_range) if is_root and settings.drop_privileges else None
    tmp_root = settings.tmp_root or tempfile.gettempdir()
    workdir = tempfile.mkdtemp(prefix="co-eval-", dir=tmp_root)
    os.chmod(workdir, 0o700)
    scratch = os.path.realpath(tmp_root)
    if scratch == "/" or not os.path.realpath(workdir).startswith(scratch + "/"):
        scratch = ""
    hide = [
        p
        for p in settings.hidden_paths
        if not (scratch and (scratch == p or scratch.startswith(p.rstrip("/") + "/")))
        and not os.path.realpath(workdir).startswith(p.rstrip("/") + "/")
    ]
    n_runs = len(tests_args) + 1  # the module body counts as one run
    cpu_seconds = math.ceil(n_runs * time_limit_ms / 1000 + 0.5)  # + start-up
    wall = min(settings.max_wall_s, settings.startup_grace_s + n_runs * time_limit_ms / 1000)
    nonce = secrets.token_hex(16)
    read_fd, write_fd = os.pipe()
    config = {
        "nonce": nonce,
        "result_fd": write_fd,
        "code": code,
        "function_name": function_name,
        "tests": tests_args,
        "time_limit_ms": time_limit_ms,
        "memory_limit_mb": memory_limit_mb,
        "cpu_seconds": cpu_seconds,
        "file_size_bytes": settings.file_size_bytes,
        "nofile": settings.nofile,
        "max_files_written": settings.max_files_written,
        "nproc": settings.nproc,
        "workdir": workdir,
        "scratch_root": scratch if (is_root and settings.namespaces) else "",
        "scratch_bytes": settings.scratch_bytes,
        "hide_paths": hide,
        "namespaces": bool(is_root and settings.namespaces),
        "uid": uid,
        "audit": settings.audit,
        "stdout_cap": settings.stdout_cap,
        "result_cap": settings.result_cap,
    }
    payload = json.dumps(config).encode()
    del config
    proc: asyncio.subprocess.Process | None = None
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                settings.python,
                "-I",
                "-S",
                "-B",
                "-X",
                "utf8",
                "-c",
                HARNESS_SOURCE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={},
                cwd=workdir,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        return await _supervise(proc, payload, nonce, read_fd, wall, settings)
    finally:
        if proc is not None and proc.returncode is None:
            _kill_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if proc is not None:
            _kill_group(proc.pid)  # anything left in the session
        with contextlib.suppress(OSError):
            os.close(read_fd)
        _rmtree(workdir)
        _release_uid(uid)


async def _supervise(
    proc: asyncio.subprocess.Process,
    payload: bytes,
    nonce: str,
    read_fd: int,
    wall: float,
    settings: SandboxSettings,
) -> RunOutcome:
    loop = asyncio.get_running_loop()
    results = asyncio.StreamReader(limit=settings.result_pipe_cap, loop=loop)
    pipe = os.fdopen(os.dup(read_fd), "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(results, loop=loop), pipe
    )
    readers = asyncio.gather(
        _drain(results, settings.result_pipe_cap),
        _drain(proc.stdout, settings.raw_output_cap),
        _drain(proc.stderr, settings.raw_output_cap),
    )
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(payload)
            await proc.stdin.drain()
        with contextlib.suppress(OSError):
            proc.stdin.close()
        killed = False
        try:
            await asyncio.wait_for(proc.wait(), timeout=wall)
        except TimeoutError:
            killed = True
            _kill_group(proc.pid)
            await proc.wait()
        try:
            (res, res_overflow), _out, (err, _) = await asyncio.wait_for(
                asyncio.shield(readers), timeout=2.0
            )
        except TimeoutError:
            # Something kept a pipe open after the process ended: give up on the output.
            _kill_group(proc.pid)
            return RunOutcome(kind="crashed", message="the process did not release its output")
    finally:
        if not readers.done():
            readers.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await readers
        transport.close()
    return _interpret(res, res_overflow, err, proc.returncode, killed, nonce)


def _interpret(
    data: bytes,
    overflow: bool,
    stderr: bytes,
    returncode: int | None,
    killed: bool,
    nonce: str,
) -> RunOutcome:
    outcome = RunOutcome(kind="crashed", returncode=returncode, killed_by_timeout=killed)
    if overflow:
        outcome.kind = "output_limit"
        outcome.message = "the results were larger than the output limit"
        return outcome
    prefix = nonce.encode()
    tampered = False
    records: list[dict[str, Any]] = []
    for line in data.split(b"\n"):
        if not line:
            continue
        if not line.startswith(prefix):
            tampered = True
            continue
        try:
            record = json.loads(line[len(prefix) :])
        except ValueError:
            tampered = True
            continue
        if not isinstance(record, dict):
            tampered = True
            continue
        records.append(record)
    if tampered:
        outcome.kind = "tampered"
        outcome.message = "the result channel was written to by the submission"
        return outcome
    expected_index = 0
    for record in records:
        kind = record.get("kind")
        if kind == "ready":
            outcome.sandbox = {k: v for k, v in record.items() if k != "kind"}
        elif kind == "test":
            if record.get("index") != expected_index:
                outcome.kind = "tampered"
                outcome.message = "results arrived out of order"
                return outcome
            expected_index += 1
            value: Any = None
            status = str(record.get("status"))
            if status == "ok":
                try:
                    value = json.loads(str(record.get("value")))
                except ValueError:
                    status = "unserializable"
            outcome.tests.append(
                TestRecord(
                    index=int(record["index"]),
                    status=status,
                    time_ms=int(record.get("time_ms") or 0),
                    value=value,
                    error=_opt_str(record.get("error")),
                    error_type=_opt_str(record.get("error_type")),
                    stdout=str(record.get("stdout") or ""),
                )
            )
        elif kind == "done":
            outcome.kind = "finished"
            rss = record.get("max_rss_kb")
            outcome.max_rss_kb = int(rss) if isinstance(rss, int) else None
        elif kind == "compile_error":
            outcome.kind = "compile_error"
            outcome.message = str(record.get("error") or "")
        elif kind == "missing_function":
            outcome.kind = "missing_function"
            outcome.message = str(record.get("name") or "")
        elif kind == "setup":
            outcome.kind = "setup_failed"
            outcome.setup_status = str(record.get("status"))
            outcome.message = str(record.get("error") or "")
    if outcome.kind == "crashed":
        stopped = outcome.tests and outcome.tests[-1].status in ("timeout", "memory")
        if stopped and returncode == 0:
            outcome.kind = "stopped"
        elif not outcome.sandbox and not killed:
            outcome.kind = "internal_error"
            outcome.message = _tail(stderr)
        else:
            outcome.message = _crash_reason(returncode, killed, stderr)
            outcome.setup_status = _crash_status(returncode, killed, stderr)
    return outcome


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _tail(stderr: bytes) -> str:
    return stderr.decode("utf-8", "replace").strip().splitlines()[-1:][0][:300] if stderr else ""


def _crash_status(returncode: int | None, killed: bool, stderr: bytes) -> str:
    """timeout | memory | error, for a process that ended without finishing."""
    if killed or returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return "timeout"
    if b"MemoryError" in stderr or returncode == 3:
        return "memory"
    return "error"


def _crash_reason(returncode: int | None, killed: bool, stderr: bytes) -> str:
    status = _crash_status(returncode, killed, stderr)
    if status == "timeout":
        return "time limit exceeded (process killed)"
    if status == "memory":
        return "memory limit exceeded"
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the process crashed ({name})"
    return f"the process exited early (exit code {returncode})"
