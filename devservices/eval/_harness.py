"""Child-side harness of the Python sandbox (standalone: run as ``python -I -S -c <this>``).

It runs inside bubblewrap (new PID, network, IPC and UTS namespaces; a file system of
``/usr``, the interpreter's prefix, a private ``/proc`` and a size-limited scratch ``/tmp``)
and must not import anything from the project. Two modes, each its own process:

* ``public``: the configuration (one JSON line on stdin) carries the public tests'
  arguments; each test's record (status, return value, captured ``print`` output, error
  text) is written to the result pipe. Nothing hidden ever enters this process.
* ``hidden``: the configuration carries no test at all. After loading the code the harness
  reads one line of arguments at a time from its control descriptor, calls the function and
  writes back only a status and the JSON of the return value, which the parent compares and
  reduces to passed/failed. Output is discarded; no error text, no timing leaves.

Results are JSON lines prefixed with a per-run nonce, written to an inherited pipe (moved to
a random high descriptor first); stdout and stderr are never parsed by the parent.

Order of operations (everything before step 5 happens before any learner code runs):

1. preload the allowed standard-library modules (later imports are refused);
2. read the configuration, then point fd 0 at /dev/null;
3. as root, drop to the run's own unprivileged uid/gid (bubblewrap already set
   ``no_new_privs``); set the resource limits (CPU, address space, processes, file size,
   open files, core);
4. install an audit hook (defence in depth, not the boundary) that refuses processes,
   signals, sockets, frame/gc introspection, new imports and files outside the scratch dir;
5. compile and execute the code, then call the function per test under a wall-clock alarm.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

PRELOAD = (
    "abc",
    "array",
    "bisect",
    "cmath",
    "collections",
    "collections.abc",
    "contextlib",
    "copy",
    "datetime",
    "decimal",
    "enum",
    "fractions",
    "functools",
    "heapq",
    "itertools",
    "json",
    "math",
    "numbers",
    "operator",
    "random",
    "re",
    "statistics",
    "string",
    "struct",
    "textwrap",
    "typing",
    "unicodedata",
)


class _TimeLimit(BaseException):
    pass


class _FrameAccess(ValueError):
    """Raised for sys._getframe: stdlib callers already tolerate ValueError there."""


class _CappedWriter(io.TextIOBase):
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError("write() argument must be str")
        room = self.cap - self.size
        if room > 0:
            piece = s[:room]
            self.parts.append(piece)
            self.size += len(piece)
        if len(s) > max(room, 0):
            self.truncated = True
        return len(s)

    def text(self) -> str:
        out = "".join(self.parts)
        return out + ("\n[output truncated]" if self.truncated else "")


def _main() -> None:
    for name in PRELOAD:
        __import__(name)
    # Compiled-in modules that a solution has no use for (importing None fails).
    for name in ("pwd", "faulthandler", "_tracemalloc", "_symtable", "xxsubtype", "gc", "marshal"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    getrusage = resource.getrusage
    perf = time.perf_counter
    dumps = json.dumps
    loads = json.loads
    write = os.write
    setitimer = signal.setitimer

    def read_line(fd: int) -> bytes:
        """One line from the parent (it sends the next only after our answer)."""
        buf = bytearray()
        while not buf.endswith(b"\n"):
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    cfg: dict[str, Any] = loads(read_line(0))
    hidden_mode = cfg["mode"] == "hidden"
    # Private descriptors go to unpredictable high numbers: as high as the (raised) soft
    # limit allows, which is 1024 for a non-root user by default.
    _, nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fd_top = 16000 if nofile_hard == resource.RLIM_INFINITY else min(16000, nofile_hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (fd_top, nofile_hard))

    def high_fd() -> int:
        return 100 + int.from_bytes(os.urandom(2), "big") % (fd_top - 100)

    control_fd = -1
    if hidden_mode:
        control_fd = high_fd()
        os.dup2(0, control_fd, inheritable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = io.StringIO("")

    nonce = cfg["nonce"].encode()
    inherited_fd = cfg["result_fd"]
    # Move the result pipe to an unpredictable descriptor and close the original.
    out_fd = control_fd
    while out_fd == control_fd:
        out_fd = high_fd()
    os.dup2(inherited_fd, out_fd, inheritable=False)
    os.close(inherited_fd)

    def emit(record: dict[str, Any]) -> None:
        data = nonce + dumps(record, allow_nan=True).encode() + b"\n"
        view = memoryview(data)
        while view:
            n = write(out_fd, view)
            view = view[n:]

    workdir = cfg["workdir"]
    dropped_uid: int | None = None
    try:
        baseline = os.sysconf("SC_PAGE_SIZE") * int(open("/proc/self/statm").read().split()[0])
    except Exception:
        baseline = 64 * 1024 * 1024

    os.chdir(workdir)
    uid = cfg["uid"]
    if os.geteuid() == 0 and uid is not None:
        os.chown(workdir, uid, uid)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        dropped_uid = uid
    # -- 4. resource limits -----------------------------------------------------------
    mem = baseline + cfg["memory_limit_mb"] * 1024 * 1024 + 32 * 1024 * 1024
    cpu = cfg["cpu_seconds"]
    limits = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_NPROC, cfg["nproc"], cfg["nproc"]),
        (resource.RLIMIT_FSIZE, cfg["file_size_bytes"], cfg["file_size_bytes"]),
        (resource.RLIMIT_NOFILE, cfg["nofile"], cfg["nofile"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for which, soft, hard in limits:
        resource.setrlimit(which, (soft, hard))

    # -- 5. audit hook ----------------------------------------------------------------
    wd = os.path.realpath(workdir)
    max_files_written = cfg["max_files_written"]
    realpath = os.path.realpath
    fspath = os.fspath
    trusted = [False]
    deny_exact = frozenset(
        {
            "os.system",
            "os.exec",
            "os.posix_spawn",
            "os.spawn",
            "os.fork",
            "os.forkpty",
            "os.kill",
            "os.killpg",
            "subprocess.Popen",
            "pty.spawn",
            "sys.addaudithook",
            "sys.settrace",
            "sys.setprofile",
            "sys._current_frames",
            "gc.get_objects",
            "gc.get_referrers",
            "gc.get_referents",
            "code.__new__",
            "marshal.loads",
            "marshal.load",
            "resource.setrlimit",
            "resource.prlimit",
            "signal.pthread_kill",
            "_thread.start_new_thread",
            "mmap.__new__",
        }
    )
    deny_prefix = ("socket.", "ctypes.", "_ctypes.", "winreg.", "urllib.", "http.", "ftplib.")
    frame_attrs = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})

    def inside(path: Any) -> bool:
        try:
            real = realpath(os.fsdecode(fspath(path)))
        except (TypeError, ValueError):
            return False
        return real == wd or real.startswith(wd + "/")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if trusted[0]:
            return
        if event in deny_exact or event.startswith(deny_prefix):
            raise PermissionError(f"{event} is not allowed in the sandbox")
        if event == "import":
            raise ImportError(f"module {args[0]!r} is not available in the sandbox")
        if event == "sys._getframe":
            raise _FrameAccess("frame access is not allowed in the sandbox")
        if event == "object.__getattr__" and len(args) > 1 and args[1] in frame_attrs:
            raise PermissionError("frame access is not allowed in the sandbox")
        if event == "open" or event.startswith(("os.", "shutil.", "pathlib.", "tempfile.")):
            trusted[0] = True  # realpath below must not re-enter the hook
            try:
                allowed = paths_allowed(event, args)
            finally:
                trusted[0] = False
            if not allowed:
                raise PermissionError(
                    f"{event} outside the working directory (or of too many files) is not allowed"
                )

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    writes = [0]

    def paths_allowed(event: str, args: tuple[Any, ...]) -> bool:
        if event == "open":
            if isinstance(args[0], int) or not inside(args[0]):
                return False
            mode, flags = args[1], args[2]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and bool(flags & write_flags)
            )
            if writing:
                writes[0] += 1
                return bool(writes[0] <= max_files_written)
            return True
        for arg in args:
            if isinstance(arg, (str, bytes)) and not inside(arg):
                return False
        if event in ("os.listdir", "os.scandir", "os.chdir") and args and args[0] is None:
            return inside(".")
        return True

    # -- 6. run -------------------------------------------------------------------------
    emit(
        {
            "kind": "ready",
            "uid": dropped_uid,
            "euid": os.geteuid(),
            "audit": bool(cfg["audit"]),
        }
    )
    code = cfg["code"]
    function_name = cfg["function_name"]
    tests = [dumps(args) for args in cfg["tests"]]  # empty in hidden mode
    time_limit = cfg["time_limit_ms"] / 1000.0
    stdout_cap = cfg["stdout_cap"]
    result_cap = cfg["result_cap"]
    audit_flag = bool(cfg["audit"])
    del cfg
    armed = [False]

    def on_alarm(_signum: int, _frame: FrameType | None) -> None:
        if armed[0]:
            raise _TimeLimit

    signal.signal(signal.SIGALRM, on_alarm)
    real_stdout, real_stderr = sys.stdout, sys.stderr

    traceback_of = vars(BaseException)["__traceback__"].__get__  # not a subclass property
    exact_str = str.__str__  # a plain str, even from a str subclass

    def user_line(exc: BaseException) -> int | None:
        """Line of the innermost frame of the learner's code (never server paths).

        Runs with the audit hook relaxed (frame access), so it touches only C-level
        attributes of real traceback, frame and code objects: no learner code can run here.
        """
        trusted[0] = True
        try:
            line = None
            tb = traceback_of(exc, type(exc))
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == "<solution>":
                    line = tb.tb_lineno
                tb = tb.tb_next
            return line
        except BaseException:
            return None
        finally:
            trusted[0] = False

    def describe(exc: BaseException) -> tuple[str, str]:
        name = "Exception"
        text = ""
        armed[0] = True
        setitimer(signal.ITIMER_REAL, 0.2, 0.05)
        try:
            name = exact_str(str(type(exc).__name__))[:100]
            text = exact_str(str(exc))[:500]
        except BaseException:
            pass
        finally:
            armed[0] = False
            setitimer(signal.ITIMER_REAL, 0, 0)
        line = user_line(exc)
        where = f" (line {line})" if line is not None else ""
        return name, f"{name}: {text}{where}" if text else f"{name}{where}"

    def run_limited(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
        """(status, value) with status ok | timeout | memory | error."""
        try:
            try:
                armed[0] = True
                setitimer(signal.ITIMER_REAL, time_limit, 0.05)
                value = fn(*args)
                armed[0] = False
                return "ok", value
            finally:
                armed[0] = False
                setitimer(signal.ITIMER_REAL, 0, 0)
        except _TimeLimit:
            return "timeout", None
        except MemoryError:
            return "memory", None
        except BaseException as exc:
            return "error", exc

    if audit_flag:
        sys.addaudithook(hook)

        def no_threads(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("threads are not available in the sandbox")

        import _thread

        _thread.start_new_thread = _thread.start_new = no_threads

    # compile
    try:
        compiled = compile(code, "<solution>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        detail = f"{type(exc).__name__}: {exc.msg} (line {exc.lineno}, column {exc.offset})"
        emit({"kind": "compile_error", "error": detail})
        return
    except MemoryError:
        emit({"kind": "setup", "status": "memory", "error": "MemoryError"})
        return
    except (ValueError, RecursionError, OverflowError) as exc:
        emit({"kind": "compile_error", "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        return
    del code
    namespace: dict[str, Any] = {"__name__": "solution", "__builtins__": dict(vars(builtins))}
    setup_out = _CappedWriter(stdout_cap)
    sys.stdout = sys.stderr = setup_out
    start = perf()
    status, value = run_limited(exec, compiled, namespace)
    sys.stdout, sys.stderr = real_stdout, real_stderr
    setup_ms = int((perf() - start) * 1000)
    if status != "ok":
        record = {"kind": "setup", "status": status, "time_ms": setup_ms}
        if status == "error":
            record["error_type"], record["error"] = describe(value)
        emit(record)
        return
    fn = namespace.get(function_name)
    if not callable(fn):
        emit({"kind": "missing_function", "name": function_name})
        return
    if hidden_mode:
        emit({"kind": "loaded"})

    def next_args() -> Any:
        """Public: the next of the known tests. Hidden: ask the parent for the next one."""
        if not hidden_mode:
            return loads(tests[index]) if index < len(tests) else None
        line = read_line(control_fd)
        if not line.strip():
            return None
        request = loads(line)
        return request.get("args")

    index = 0
    while True:
        args = next_args()
        if args is None:
            break
        out = _CappedWriter(0 if hidden_mode else stdout_cap)
        sys.stdout = sys.stderr = out
        start = perf()
        status, value = run_limited(fn, *args)
        elapsed = int((perf() - start) * 1000)
        sys.stdout, sys.stderr = real_stdout, real_stderr
        args = None
        record = {"kind": "test", "index": index, "status": status}
        if not hidden_mode:
            record["time_ms"] = elapsed
        if status == "ok":
            enc_status, encoded = run_limited(dumps, value)
            if enc_status == "ok" and len(encoded) > result_cap:
                record["status"] = "too_large"
            elif enc_status == "ok":
                record["value"] = encoded
            elif enc_status == "error":
                record["status"] = "unserializable"
                if not hidden_mode:
                    kind = exact_str(type(value).__name__)[:100]
                    record["error"] = f"return value is not JSON data ({kind})"
            else:
                record["status"] = enc_status
        elif status == "error" and not hidden_mode:
            record["error_type"], record["error"] = describe(value)
        value = None
        if not hidden_mode:
            record["stdout"] = out.text()
        emit(record)
        index += 1
        if record["status"] in ("timeout", "memory"):
            return
    if not hidden_mode:
        emit({"kind": "done", "max_rss_kb": getrusage(resource.RUSAGE_SELF).ru_maxrss})


try:
    _main()
except MemoryError:
    os._exit(3)
except BaseException:
    os._exit(4)
os._exit(0)
