"""Child-side harness of the Python sandbox (standalone: run as ``python -I -S -c <this>``).

It must not import anything from the project. The parent passes one JSON document on
stdin: the learner's code, the function name, each test's *arguments only* (expected values
never enter this process), the limits, the sandbox options, a per-run nonce and the number
of the inherited pipe on which results are written. Results are JSON lines prefixed with
the nonce, written to that pipe (moved to a random high descriptor first); stdout and
stderr of the process are never parsed by the parent.

Order of operations (everything before step 6 happens before any learner code runs):

1. preload the allowed standard-library modules (later imports are refused);
2. read the configuration from stdin, then point fd 0 at /dev/null;
3. as root, if asked: ``unshare`` network, mount, IPC and UTS namespaces, hide paths
   under empty read-only tmpfs mounts and give the run a fresh size-limited tmpfs as its
   temporary directory, set ``no_new_privs`` and drop to an unprivileged uid/gid;
4. set the resource limits (CPU, address space, processes, file size, open files, core);
5. install an audit hook that refuses processes, signals to others, sockets, ctypes,
   frame/gc introspection, new imports, and file-system access outside the work dir;
6. compile and execute the code, then call the function once per test under a per-test
   wall-clock alarm, capturing ``print`` output per test.
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

    raw = sys.stdin.buffer.read()
    cfg: dict[str, Any] = loads(raw)
    del raw
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = io.StringIO("")

    nonce = cfg["nonce"].encode()
    inherited_fd = cfg["result_fd"]
    # Move the result pipe to an unpredictable descriptor and close the original.
    out_fd = 1000 + int.from_bytes(os.urandom(2), "big") % 15000
    os.dup2(inherited_fd, out_fd, inheritable=False)
    os.close(inherited_fd)

    def emit(record: dict[str, Any]) -> None:
        data = nonce + dumps(record, allow_nan=True).encode() + b"\n"
        view = memoryview(data)
        while view:
            n = write(out_fd, view)
            view = view[n:]

    workdir = cfg["workdir"]
    notes: list[str] = []
    namespaces = False
    hidden: list[str] = []
    dropped_uid: int | None = None
    try:
        baseline = os.sysconf("SC_PAGE_SIZE") * int(open("/proc/self/statm").read().split()[0])
    except Exception:
        baseline = 64 * 1024 * 1024

    # -- 3. namespaces, mounts, privileges (root only) ------------------------------
    if os.geteuid() == 0 and cfg["namespaces"]:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        clone_newns, clone_newnet = 0x00020000, 0x40000000
        clone_newipc, clone_newuts = 0x08000000, 0x04000000
        ms_rdonly, ms_nosuid, ms_nodev, ms_noexec = 1, 2, 4, 8
        ms_rec, ms_private, ms_bind = 0x4000, 1 << 18, 0x1000

        def mount(
            src: bytes | None, target: str, fstype: bytes | None, flags: int, data: bytes | None
        ) -> None:
            rc = libc.mount(src, target.encode(), fstype, flags, data)
            if rc != 0:
                raise OSError(ctypes.get_errno(), f"mount {target}")

        if libc.unshare(clone_newns | clone_newnet | clone_newipc | clone_newuts) == 0:
            namespaces = True
            try:
                mount(None, "/", None, ms_rec | ms_private, None)
                scratch = cfg["scratch_root"]
                for path in cfg["hide_paths"]:
                    if os.path.islink(path) or not os.path.exists(path):
                        continue
                    try:
                        if os.path.isdir(path):
                            mount(
                                b"tmpfs",
                                path,
                                b"tmpfs",
                                ms_rdonly | ms_nosuid | ms_nodev | ms_noexec,
                                b"size=16k,nr_inodes=16,mode=555",
                            )
                        else:
                            mount(b"/dev/null", path, None, ms_bind, None)
                        hidden.append(path)
                    except OSError as exc:
                        notes.append(f"could not hide {path}: {exc}")
                if scratch:
                    size = cfg["scratch_bytes"]
                    mount(
                        b"tmpfs",
                        scratch,
                        b"tmpfs",
                        ms_nosuid | ms_nodev | ms_noexec,
                        f"size={size},nr_inodes=256,mode=755".encode(),
                    )
                    hidden.append(scratch)
                    os.makedirs(workdir, mode=0o700, exist_ok=True)
            except OSError as exc:
                notes.append(f"mount setup failed: {exc}")
        else:
            notes.append(f"unshare failed: errno {ctypes.get_errno()}")
        pr_set_no_new_privs = 38
        libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0)
        del libc, mount
        for mod in [
            m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))
        ]:
            del sys.modules[mod]
        del ctypes
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
            "namespaces": namespaces,
            "hidden": hidden,
            "uid": dropped_uid,
            "audit": bool(cfg["audit"]),
            "notes": notes,
        }
    )
    code = cfg["code"]
    function_name = cfg["function_name"]
    tests = [dumps(args) for args in cfg["tests"]]
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
    for index, args_json in enumerate(tests):
        args = loads(args_json)
        out = _CappedWriter(stdout_cap)
        sys.stdout = sys.stderr = out
        start = perf()
        status, value = run_limited(fn, *args)
        elapsed = int((perf() - start) * 1000)
        sys.stdout, sys.stderr = real_stdout, real_stderr
        record = {"kind": "test", "index": index, "status": status, "time_ms": elapsed}
        if status == "ok":
            enc_status, encoded = run_limited(dumps, value)
            if enc_status == "ok" and len(encoded) > result_cap:
                record["status"] = "too_large"
            elif enc_status == "ok":
                record["value"] = encoded
            elif enc_status == "error":
                record["status"] = "unserializable"
                record["error"] = f"return value is not JSON data ({type(value).__name__[:100]})"
            else:
                record["status"] = enc_status
        elif status == "error":
            record["error_type"], record["error"] = describe(value)
        value = None
        record["stdout"] = out.text()
        emit(record)
        if record["status"] in ("timeout", "memory"):
            return
    emit({"kind": "done", "max_rss_kb": getrusage(resource.RUSAGE_SELF).ru_maxrss})


try:
    _main()
except MemoryError:
    os._exit(3)
except BaseException:
    os._exit(4)
os._exit(0)
