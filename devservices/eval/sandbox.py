"""Parent side of the Python sandbox: spawn, confine, limit, collect, kill.

One submission runs in up to two fresh processes, each ``python -I -S`` running
:mod:`._harness` inside bubblewrap (``bwrap``):

* the **public** process gets the code and the public tests' arguments; its per-test
  records (value, captured output, error text) may be shown to the learner;
* the **hidden** process gets the code and, one at a time and only once the previous
  answer is back, each hidden test's arguments. From it the parent keeps a status and the
  return value of each call, which it compares itself; its stdout and stderr go to
  ``/dev/null`` and it reports no error text and no timing.

The OS boundary is bubblewrap's, and it does not need root: new PID, network, IPC, UTS
(and, when not root, user) namespaces; a file system made of ``/usr``, the interpreter's
own prefix (read-only), a private ``/proc``, a minimal ``/dev`` and a size-limited
``/tmp`` scratch (the working directory); an empty environment; ``no_new_privs``; killed
with its parent. As root the harness also drops to a fresh unprivileged uid per run. The
rlimits and the audit hook set inside the child come on top. If bubblewrap is missing or
cannot create its namespaces, :func:`check_boundary` says why and no code runs.

Expected values never leave the parent: comparison happens in :mod:`.service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

HARNESS_SOURCE: Final = (Path(__file__).with_name("_harness.py")).read_text(encoding="utf-8")
SCRATCH: Final = "/tmp"  # the working directory inside the sandbox (a private tmpfs)
MAX_VALUE_DEPTH: Final = 64  # nesting of a returned JSON value the parent will decode

log = logging.getLogger(__name__)


def _base_python() -> str:
    """The real interpreter behind the venv: the child needs only the standard library."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    python: str = field(default_factory=_base_python)
    python_prefix: str = field(default_factory=lambda: os.path.realpath(sys.base_prefix))
    bwrap: str | None = field(default_factory=lambda: shutil.which("bwrap"))
    drop_privileges: bool = True  # as root: run learner code as a fresh unprivileged uid
    seccomp: bool = True  # a syscall filter (SECCOMP_DENIED) applied by bubblewrap
    audit: bool = True  # install the audit hook in the child (defence in depth)
    uid_range: tuple[int, int] = (420_000, 429_999)
    max_time_limit_ms: int = 10_000
    max_memory_limit_mb: int = 1024
    max_code_bytes: int = 64 * 1024
    max_tests: int = 200
    file_size_bytes: int = 1024 * 1024  # RLIMIT_FSIZE
    scratch_bytes: int = 4 * 1024 * 1024  # size of the private /tmp
    nofile: int = 32  # RLIMIT_NOFILE
    max_files_written: int = 64  # files opened for writing per run (audit hook)
    nproc: int = 1  # RLIMIT_NPROC (counts per uid; only enforced for non-root uids)
    stdout_cap: int = 4096  # captured print() output kept per test
    result_cap: int = 256 * 1024  # one return value, JSON-encoded
    result_pipe_cap: int = 8 * 1024 * 1024
    raw_output_cap: int = 64 * 1024  # fd 1/2 bytes kept of the public run (diagnostics only)
    startup_grace_s: float = 3.0
    max_wall_s: float = 60.0


class SandboxUnavailable(RuntimeError):
    """The OS boundary cannot be set up here: no learner code may run."""


# Refused with EPERM by the seccomp filter: no socket of any family (so nothing on
# loopback or a Unix path either), no debugging other processes, no new namespaces or
# mounts, no kernel attack surface a solution has no use for.
SECCOMP_DENIED: Final = (
    "socket",
    "socketpair",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "init_module",
    "finit_module",
    "delete_module",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
)


@functools.lru_cache(maxsize=1)
def seccomp_program() -> bytes:
    """The filter as a BPF program for ``bwrap --seccomp`` (libseccomp via pyseccomp).

    Allow by default, EPERM for :data:`SECCOMP_DENIED`; calls of another architecture's
    ABI (e.g. 32-bit ``int 0x80``) kill the process (libseccomp's default).
    """
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:
        raise SandboxUnavailable(f"seccomp is unavailable (pyseccomp/libseccomp): {exc}") from exc
    program = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    for name in SECCOMP_DENIED:
        with contextlib.suppress(ValueError, RuntimeError):  # unknown to this libseccomp
            program.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(write_fd, "wb") as sink:
            program.export_bpf(sink)
        with os.fdopen(read_fd, "rb") as source:
            read_fd = -1
            return source.read()
    finally:
        if read_fd >= 0:
            os.close(read_fd)


def seccomp_fd(settings: SandboxSettings) -> int | None:
    """A fresh readable descriptor holding the filter (bubblewrap reads it to the end)."""
    if not settings.seccomp:
        return None
    program = seccomp_program()
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, program)  # a few hundred bytes: fits the pipe buffer
    finally:
        os.close(write_fd)
    return read_fd


def bwrap_argv(settings: SandboxSettings, seccomp: int | None = None) -> list[str]:
    """The bubblewrap command line in front of the interpreter."""
    if not settings.bwrap:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    argv = [settings.bwrap, "--die-with-parent", "--new-session"]
    if seccomp is not None:
        argv += ["--seccomp", str(seccomp)]
    if os.geteuid() != 0:
        argv.append("--unshare-user")  # as root the harness drops to a fresh uid instead
    argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--cap-drop", "ALL"] if os.geteuid() != 0 else []
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    prefix = settings.python_prefix
    if not (prefix == "/usr" or prefix.startswith("/usr/")):
        argv += ["--ro-bind", prefix, prefix]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--perms", "1777", "--size", str(settings.scratch_bytes), "--tmpfs", SCRATCH]
    argv += ["--chdir", SCRATCH, "--clearenv", "--"]
    return argv


def child_argv(settings: SandboxSettings, seccomp: int | None) -> list[str]:
    return [
        *bwrap_argv(settings, seccomp),
        settings.python,
        "-I",
        "-S",
        "-B",
        "-X",
        "utf8",
        "-c",
        HARNESS_SOURCE,
    ]


_PROBE = (
    "import os, socket, sys\n"
    "assert not os.path.exists('/etc'), 'host /etc visible'\n"
    "try:\n"
    "    s = socket.socket()\n"
    "except PermissionError:\n"
    "    pass\n"
    "else:\n"
    "    assert sys.argv[1] == 'no-seccomp', 'socket() allowed'\n"
    "    assert s.connect_ex(('127.0.0.1', 1)) != 0, 'loopback reachable'\n"
    "print('sandbox-ok')\n"
)


async def check_boundary(settings: SandboxSettings) -> str | None:
    """``None`` when bubblewrap confines a probe here, else the reason it does not."""
    mode = "seccomp" if settings.seccomp else "no-seccomp"
    seccomp: int | None = None
    try:
        seccomp = seccomp_fd(settings)
        argv = [*bwrap_argv(settings, seccomp), settings.python, "-I", "-S", "-c", _PROBE, mode]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={},
            pass_fds=() if seccomp is None else (seccomp,),
            start_new_session=True,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    except SandboxUnavailable as exc:
        return str(exc)
    except (OSError, TimeoutError) as exc:
        return f"bubblewrap could not start: {type(exc).__name__}: {exc}"
    finally:
        if seccomp is not None:
            os.close(seccomp)
    if proc.returncode != 0 or b"sandbox-ok" not in out:
        tail = err.decode("utf-8", "replace").strip()[-300:]
        return f"bubblewrap failed (exit {proc.returncode}): {tail}"
    return None


@dataclass(frozen=True, slots=True)
class TestRecord:
    __test__ = False

    index: int
    status: str  # ok | error | timeout | memory | too_large | unserializable | too_deep
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


@dataclass(slots=True)
class HiddenOutcome:
    """Per hidden test: a status and (status ``ok``) the decoded value; nothing else.

    ``statuses[i]`` is ``not_run`` when the process ended or misbehaved before answering.
    """

    statuses: list[str]
    values: list[Any]
    total_ms: int = 0
    tampered: bool = False


_STRING_RE: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET_RE: Final = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """Nesting depth of a JSON text, without decoding it (decoding a deep one recurses)."""
    depth = deepest = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def decode_value(text: str) -> tuple[str, Any]:
    """(status, value) of a JSON-encoded return value from the child."""
    if json_depth(text) > MAX_VALUE_DEPTH:
        return "too_deep", None
    try:
        return "ok", json.loads(text)
    except (ValueError, RecursionError):
        return "unserializable", None


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


def _limits(
    time_limit_ms: int, memory_limit_mb: int, n_runs: int, settings: SandboxSettings
) -> tuple[int, int, int, float]:
    time_limit_ms = max(50, min(time_limit_ms, settings.max_time_limit_ms))
    memory_limit_mb = max(16, min(memory_limit_mb, settings.max_memory_limit_mb))
    cpu_seconds = math.ceil(n_runs * time_limit_ms / 1000 + 0.5)  # + start-up
    wall = min(settings.max_wall_s, settings.startup_grace_s + n_runs * time_limit_ms / 1000)
    return time_limit_ms, memory_limit_mb, cpu_seconds, wall


def _config(
    mode: str,
    code: str,
    function_name: str,
    tests_args: list[list[Any]],
    *,
    nonce: str,
    result_fd: int,
    uid: int | None,
    time_limit_ms: int,
    memory_limit_mb: int,
    cpu_seconds: int,
    settings: SandboxSettings,
) -> bytes:
    config = {
        "mode": mode,
        "nonce": nonce,
        "result_fd": result_fd,
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
        "workdir": SCRATCH,
        "uid": uid,
        "audit": settings.audit,
        "stdout_cap": settings.stdout_cap,
        "result_cap": settings.result_cap,
    }
    return json.dumps(config).encode() + b"\n"


def _fds(*fds: int | None) -> tuple[int, ...]:
    return tuple(fd for fd in fds if fd is not None)


def _close(*fds: int | None) -> None:
    for fd in _fds(*fds):
        with contextlib.suppress(OSError):
            os.close(fd)


async def _spawn(
    argv: list[str], result_fd: int, seccomp: int | None, *, capture_output: bool
) -> asyncio.subprocess.Process:
    """Start a sandbox in a session of its own with an empty environment, handing it the
    result pipe's write end (and the seccomp filter), which this process then closes."""
    output = asyncio.subprocess.PIPE if capture_output else asyncio.subprocess.DEVNULL
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=output,
            stderr=output,
            env={},
            pass_fds=_fds(result_fd, seccomp),
            start_new_session=True,
        )
    finally:
        _close(result_fd, seccomp)


async def _stop(proc: asyncio.subprocess.Process | None) -> None:
    if proc is None:
        return
    if proc.returncode is None:
        _kill_group(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    _kill_group(proc.pid)  # anything left in the session


async def run_python(
    code: str,
    function_name: str,
    tests_args: list[list[Any]],
    *,
    time_limit_ms: int,
    memory_limit_mb: int,
    settings: SandboxSettings,
) -> RunOutcome:
    """The public run: ``function_name(*args)`` for each public test, in a fresh sandbox."""
    time_limit_ms, memory_limit_mb, cpu_seconds, wall = _limits(
        time_limit_ms, memory_limit_mb, len(tests_args) + 1, settings
    )
    seccomp = seccomp_fd(settings)
    argv = child_argv(settings, seccomp)
    is_root = os.geteuid() == 0
    uid = _allocate_uid(*settings.uid_range) if is_root and settings.drop_privileges else None
    nonce = secrets.token_hex(16)
    read_fd, write_fd = os.pipe()
    payload = _config(
        "public",
        code,
        function_name,
        tests_args,
        nonce=nonce,
        result_fd=write_fd,
        uid=uid,
        time_limit_ms=time_limit_ms,
        memory_limit_mb=memory_limit_mb,
        cpu_seconds=cpu_seconds,
        settings=settings,
    )
    proc: asyncio.subprocess.Process | None = None
    try:
        proc = await _spawn(argv, write_fd, seccomp, capture_output=True)
        return await _supervise(proc, payload, nonce, read_fd, wall, settings)
    finally:
        await _stop(proc)
        with contextlib.suppress(OSError):
            os.close(read_fd)
        _release_uid(uid)


async def run_hidden(
    code: str,
    function_name: str,
    tests_args: list[list[Any]],
    *,
    time_limit_ms: int,
    memory_limit_mb: int,
    settings: SandboxSettings,
) -> HiddenOutcome:
    """The hidden run: one process, fed one test's arguments at a time.

    Only a status and the decoded return value per test come back; the process's output
    goes to ``/dev/null``. A reply that is not exactly the answer to the question asked
    (wrong nonce, wrong index, extra lines) ends the run as tampered.
    """
    n = len(tests_args)
    outcome = HiddenOutcome(statuses=["not_run"] * n, values=[None] * n)
    if n == 0:
        return outcome
    time_limit_ms, memory_limit_mb, cpu_seconds, wall = _limits(
        time_limit_ms, memory_limit_mb, n + 1, settings
    )
    seccomp = seccomp_fd(settings)
    argv = child_argv(settings, seccomp)
    is_root = os.geteuid() == 0
    uid = _allocate_uid(*settings.uid_range) if is_root and settings.drop_privileges else None
    nonce = secrets.token_hex(16)
    prefix = nonce.encode()
    read_fd, write_fd = os.pipe()
    payload = _config(
        "hidden",
        code,
        function_name,
        [],
        nonce=nonce,
        result_fd=write_fd,
        uid=uid,
        time_limit_ms=time_limit_ms,
        memory_limit_mb=memory_limit_mb,
        cpu_seconds=cpu_seconds,
        settings=settings,
    )
    loop = asyncio.get_running_loop()
    results = asyncio.StreamReader(limit=settings.result_cap + 4096, loop=loop)
    proc: asyncio.subprocess.Process | None = None
    transport: asyncio.ReadTransport | None = None
    deadline = loop.time() + wall
    per_test = time_limit_ms / 1000 + 1.0

    failure = ["crashed"]

    async def answer(timeout: float) -> dict[str, Any] | None:
        """The next record, or None (timeout, end of stream, oversized, forged)."""
        try:
            line = await asyncio.wait_for(
                results.readline(), timeout=max(0.05, min(timeout, deadline - loop.time()))
            )
        except TimeoutError:
            failure[0] = "timeout"
            return None
        except (ValueError, asyncio.LimitOverrunError):
            failure[0] = "too_large"
            return None
        if not line:
            failure[0] = "crashed"
            return None
        if not line.startswith(prefix):
            outcome.tampered = True
            return None
        try:
            record = json.loads(line[len(prefix) :])
        except (ValueError, RecursionError):
            outcome.tampered = True
            return None
        return record if isinstance(record, dict) else None

    try:
        proc = await _spawn(argv, write_fd, seccomp, capture_output=False)
        pipe = os.fdopen(os.dup(read_fd), "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(results, loop=loop), pipe
        )
        assert proc.stdin is not None
        stdin = proc.stdin
        stdin.write(payload)
        await stdin.drain()
        ready = await answer(settings.startup_grace_s + time_limit_ms / 1000)
        if ready is None or ready.get("kind") != "ready":
            return outcome
        ready = await answer(settings.startup_grace_s + time_limit_ms / 1000)
        if ready is None or ready.get("kind") != "loaded":
            return outcome  # the module body failed here: the public run reports why
        started = time.perf_counter()
        try:
            for index, args in enumerate(tests_args):
                stdin.write(json.dumps({"args": args}).encode() + b"\n")
                await stdin.drain()
                record = await answer(per_test)
                if record is None or record.get("kind") != "test" or record.get("index") != index:
                    if record is not None:
                        outcome.tampered = True
                    elif not outcome.tampered:
                        outcome.statuses[index] = failure[0]
                    break
                status = str(record.get("status"))
                value: Any = None
                if status == "ok":
                    status, value = decode_value(str(record.get("value")))
                outcome.statuses[index] = status
                outcome.values[index] = value
                if status in ("timeout", "memory"):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            outcome.total_ms = int((time.perf_counter() - started) * 1000)
        with contextlib.suppress(OSError):
            stdin.close()
        # Anything written after the last answer was not asked for.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=1.0)
        if "crashed" in outcome.statuses and proc.returncode is not None:
            # Only the kind of ending is kept (never the exit code: the learner chooses it).
            ending = _crash_status(proc.returncode, False, b"")
            outcome.statuses = [ending if s == "crashed" else s for s in outcome.statuses]
        if not outcome.tampered and results.at_eof() is False:
            with contextlib.suppress(TimeoutError, ValueError, asyncio.LimitOverrunError):
                extra = await asyncio.wait_for(results.read(1), timeout=0.2)
                if extra:
                    outcome.tampered = True
        if outcome.tampered:
            outcome.statuses = ["tampered" if s == "ok" else s for s in outcome.statuses]
        return outcome
    finally:
        await _stop(proc)
        if transport is not None:
            transport.close()
        with contextlib.suppress(OSError):
            os.close(read_fd)
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
                status, value = decode_value(str(record.get("value")))
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


def _signal_of(returncode: int | None) -> int | None:
    """The signal that ended the child: bubblewrap reports it as exit code 128 + n."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    return returncode - 128 if returncode > 128 else None


def _crash_status(returncode: int | None, killed: bool, stderr: bytes) -> str:
    """timeout | memory | error, for a process that ended without finishing."""
    if killed or _signal_of(returncode) in (signal.SIGXCPU, signal.SIGKILL):
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
    signum = _signal_of(returncode)
    if signum is not None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"the process crashed ({name})"
    return f"the process exited early (exit code {returncode})"
