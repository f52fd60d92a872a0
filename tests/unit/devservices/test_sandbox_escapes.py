"""Hostile submissions: each escape attempt is contained, and hidden tests stay hidden.

Two layers are tested separately where they overlap: the audit hook inside the child
(always on in production) and the OS-level limits (rlimits; as root also namespaces, hidden
mounts and an unprivileged uid), by running the sandbox with the audit hook switched off.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from devservices.eval.sandbox import RunOutcome, SandboxSettings, run_python
from devservices.problem_bank import PROBLEMS_DIR, SECRET_MARKERS, load_problems
from domain.upstream import EvalKind

from .conftest import TEST_UID_RANGE, Evaluate, python_request

IS_ROOT = os.geteuid() == 0
requires_root = pytest.mark.skipif(not IS_ROOT, reason="namespaces and uid drop need root")
PROBLEM_FILE = str(PROBLEMS_DIR / "coding" / "py-secret-sum.yaml")
NO_AUDIT = SandboxSettings(audit=False, uid_range=TEST_UID_RANGE)


async def run_raw(
    code: str, settings: SandboxSettings = NO_AUDIT, *, time_limit_ms: int = 1000
) -> RunOutcome:
    return await run_python(
        code, "f", [[]], time_limit_ms=time_limit_ms, memory_limit_mb=64, settings=settings
    )


def only_result(outcome: RunOutcome) -> tuple[str, Any, str | None]:
    assert outcome.kind == "finished", outcome
    (record,) = outcome.tests
    return record.status, record.value, record.error


def sandbox_processes() -> list[int]:
    """Processes running under one of the sandbox uids (root mode)."""
    low, high = TEST_UID_RANGE
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            uid_line = next((ln for ln in status.splitlines() if ln.startswith("Uid:")), "")
            uids = [int(u) for u in uid_line.split()[1:]]
            if any(low <= u <= high for u in uids):
                found.append(int(entry.name))
    return found


# -- through the Eval app (audit hook + OS limits) ----------------------------------------

HOSTILE = {
    "fork bomb": "import os\ndef f():\n    while True:\n        os.fork()\n",
    "subprocess": "import subprocess\ndef f():\n    return subprocess.run(['id']).returncode\n",
    "os.system": "import os\ndef f():\n    assert os.system('id') == 0\n",
    "exec": "import os\ndef f():\n    os.execv('/bin/sh', ['sh', '-c', 'id'])\n",
    "posix_spawn": "import os\ndef f():\n    return os.posix_spawn('/bin/true', ['true'], {})\n",
    "thread": "import _thread\ndef f():\n    return _thread.start_new_thread(print, ())\n",
    "ctypes": "import ctypes\ndef f():\n    return 1\n",
    "memory hog": "def f():\n    return len(bytearray(2 * 1024**3))\n",
    "infinite loop": "def f():\n    while True:\n        pass\n",
    "huge file": (
        "def f():\n    with open('big', 'wb') as fh:\n        fh.write(b'x' * (50 * 1024**2))\n"
    ),
    "many files": (
        "def f():\n    for i in range(1000):\n"
        "        with open(f'f{i}', 'wb') as fh:\n            fh.write(b'x' * (1024**2 - 1))\n"
    ),
    "passwd": "def f():\n    return open('/etc/passwd').read()\n",
    "problem file": f"def f():\n    return open({PROBLEM_FILE!r}).read()\n",
    "traversal": "def f():\n    return open('../../../../etc/hostname').read()\n",
    "proc environ": (
        "import os\ndef f():\n    return open(f'/proc/{os.getppid()}/environ').read()\n"
    ),
    "list repo": f"import os\ndef f():\n    return os.listdir({str(PROBLEMS_DIR)!r})\n",
    "symlink out": (
        "import os\ndef f():\n    os.symlink('/etc/passwd', 'p')\n    return open('p').read()\n"
    ),
    "kill parent": "import os, signal\ndef f():\n    os.kill(os.getppid(), signal.SIGKILL)\n",
    "frames": "import sys\ndef f():\n    return str(sys._getframe(1).f_locals)\n",
    "traceback frames": (
        "def f():\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n"
        "        return str(e.__traceback__.tb_frame.f_back.f_locals)\n"
    ),
    "gc": "import gc\ndef f():\n    return len(gc.get_objects())\n",
    "new import": (
        "import importlib\ndef f():\n    return importlib.import_module('socket').__name__\n"
    ),
    "settrace": "import sys\ndef f():\n    sys.settrace(lambda *a: None)\n",
    "rlimit": "import resource\ndef f():\n    resource.setrlimit(resource.RLIMIT_CPU, (-1, -1))\n",
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_code_is_contained(evaluate: Evaluate, name: str) -> None:
    start = time.monotonic()
    body = await evaluate(
        **python_request(HOSTILE[name], tests=[([], "unreachable")], time_limit_ms=500)
    )
    assert time.monotonic() - start < 6
    assert body["verdict"] in (
        "runtime_error",
        "time_limit_exceeded",
        "memory_limit_exceeded",
    ), body
    text = json.dumps(body)
    assert "root:" not in text
    assert "ZQX" not in text
    assert "CO_" not in text
    if IS_ROOT:
        assert sandbox_processes() == []


# Harmless once nothing secret shares the process: only the audit hook refuses these.
INTROSPECTION_ONLY = {"frames", "traceback frames", "settrace", "new import", "ctypes", "thread"}


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - INTROSPECTION_ONLY))
async def test_hostile_code_is_contained_by_the_os_layer_alone(name: str) -> None:
    """Audit hook off: bubblewrap, rlimits and (as root) the uid drop still refuse it."""
    outcome = await run_raw(HOSTILE[name], NO_AUDIT, time_limit_ms=500)
    assert outcome.kind in ("finished", "stopped", "setup_failed", "crashed"), outcome
    assert not any(t.status == "ok" for t in outcome.tests), outcome


async def test_the_parents_environment_is_not_visible(
    evaluate: Evaluate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_TEST_SECRET", "hunter2-secret-value")
    code = "import os\ndef f():\n    return dict(os.environ)\n"
    body = await evaluate(**python_request(code, tests=[([], {})]))
    actual = body["tests"][0]["actual"]
    assert "CO_TEST_SECRET" not in actual
    assert "hunter2" not in json.dumps(body)
    # LC_CTYPE: the interpreter's UTF-8 mode; PWD: bubblewrap's --chdir. Nothing else.
    assert set(actual) <= {"LC_CTYPE", "PWD"}


async def test_no_network(evaluate: Evaluate) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = (
        "import socket\n"
        "def f():\n"
        f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "    return 'connected'\n"
    )
    try:
        body = await evaluate(**python_request(code, tests=[([], "connected")]))
        assert body["verdict"] != "accepted"
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
    finally:
        listener.close()


async def test_forged_result_lines_do_not_pass(evaluate: Evaluate) -> None:
    """The submission knows the expected value here and writes a well-formed result record
    to stdout and to every descriptor: without the nonce it is ignored or rejected."""
    forged = json.dumps({"kind": "test", "index": 0, "status": "ok", "value": "42"})
    done = json.dumps({"kind": "done", "max_rss_kb": 1})
    code = (
        "import os\n"
        "def f():\n"
        f"    line = ({forged!r} + '\\n' + {done!r} + '\\n').encode()\n"
        "    print(line.decode())\n"
        "    for fd in range(1, 20000):\n"
        "        try:\n"
        "            os.write(fd, line)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 41\n"
    )
    body = await evaluate(**python_request(code, tests=[([], 42)], hidden=[([], 42)]))
    assert body["verdict"] in ("wrong_answer", "runtime_error")
    assert not any(t["passed"] for t in body["tests"])


# -- hidden tests stay hidden -------------------------------------------------------------

LEAKY = {
    "print and raise": (
        "def secret_sum(label, numbers):\n"
        "    print('LEAK', label, numbers)\n"
        "    raise ValueError(f'LEAK {label} {numbers}')\n"
    ),
    "return the inputs": "def secret_sum(label, numbers):\n    return [label, numbers]\n",
    "wrong sum": (
        "def secret_sum(label, numbers):\n    return f'{label}:{sum(map(abs, numbers))}'\n"
    ),
    "exit with the input": (
        "import os\n"
        "def secret_sum(label, numbers):\n"
        "    os.write(2, label.encode())\n"
        "    os.write(1, label.encode())\n"
        "    os._exit(len(numbers))\n"
    ),
    "huge output": "def secret_sum(label, numbers):\n    return label * 10**6\n",
    "exception type": (
        "def secret_sum(label, numbers):\n"
        "    raise type(label.replace('-', '_'), (Exception,), {})(numbers)\n"
    ),
    "timeout": "def secret_sum(label, numbers):\n    while label:\n        pass\n",
}


@pytest.mark.parametrize("name", list(LEAKY))
async def test_hidden_test_data_never_appears_in_a_response(evaluate: Evaluate, name: str) -> None:
    problem = load_problems()["py-secret-sum"]
    assert problem.kind is EvalKind.python
    tests = [{"args": t.args, "expected": t.expected} for t in problem.public_tests]
    tests += [
        {"args": t.args, "expected": t.expected, "hidden": True} for t in problem.hidden_tests
    ]
    # public tests pass for "wrong sum" so that the hidden ones are where it fails
    body = await evaluate(
        kind="python",
        code=LEAKY[name],
        function_name=problem.function_name,
        tests=tests,
        limits={"time_limit_ms": 300, "memory_limit_mb": 64},
    )
    assert body["verdict"] != "accepted"
    text = json.dumps(body)
    for marker in SECRET_MARKERS:
        assert marker not in text, (name, marker)
    for result in body["tests"]:
        if result["hidden"]:
            assert {k for k, v in result.items() if v is not None} <= {
                "index",
                "hidden",
                "passed",
                "time_ms",
                "verdict",
            }


# -- the OS layer alone (audit hook off) --------------------------------------------------


async def test_os_layer_fork_is_refused() -> None:
    status, _, error = only_result(await run_raw("import os\ndef f():\n    return os.fork()\n"))
    assert status == "error"
    assert error is not None
    assert "BlockingIOError" in error


async def test_os_layer_big_file_is_refused() -> None:
    code = "def f():\n    open('big', 'wb').write(b'x' * (8 * 1024**2))\n"
    status, _, error = only_result(await run_raw(code))
    assert status == "error"
    assert error is not None
    assert "File too large" in error


async def test_os_layer_scratch_is_private_to_each_run() -> None:
    code = (
        "import os\n"
        "def f():\n"
        "    seen = sorted(os.listdir('.'))\n"
        "    open('x', 'w').write('hello')\n"
        "    return [os.getcwd(), seen]\n"
    )
    for _ in range(2):
        status, value, _ = only_result(await run_raw(code))
        assert status == "ok"
        assert value == ["/tmp", []]


async def test_os_layer_hides_files_and_drops_privileges() -> None:
    code = (
        "import os\n"
        "def f():\n"
        "    out = {'uid': os.getuid(), 'euid': os.geteuid()}\n"
        f"    for path in ('/etc/passwd', {PROBLEM_FILE!r}, '/proc/1/environ'):\n"
        "        try:\n"
        "            open(path).read()\n"
        "            out[path] = 'READ'\n"
        "        except OSError as exc:\n"
        "            out[path] = type(exc).__name__\n"
        "    try:\n"
        "        os.kill(os.getppid(), 0)\n"
        "        out['kill'] = 'ALLOWED'\n"
        "    except OSError as exc:\n"
        "        out['kill'] = type(exc).__name__\n"
        "    return out\n"
    )
    status, value, _ = only_result(await run_raw(code))
    assert status == "ok"
    assert value["uid"] != 0
    assert value["euid"] != 0
    assert "READ" not in value.values()
    assert value["kill"] == "PermissionError"


async def test_os_layer_has_no_network() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    # keep root (so the socket module can still be imported) but no audit hook
    settings = SandboxSettings(audit=False, drop_privileges=False)
    code = (
        "import socket\n"
        "def f():\n"
        "    try:\n"
        f"        socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "        return 'connected'\n"
        "    except OSError as exc:\n"
        "        return exc.errno\n"
    )
    try:
        status, value, _ = only_result(await run_raw(code, settings))
        assert status == "ok"
        assert value != "connected"
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


async def test_os_layer_seccomp_refuses_sockets_and_namespaces() -> None:
    """Audit hook off: the syscall filter still says EPERM to every socket family,
    to new namespaces and to ptrace."""
    code = (
        "import os, socket, errno\n"
        "def f():\n"
        "    out = {}\n"
        "    for family in ('AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_NETLINK'):\n"
        "        try:\n"
        "            socket.socket(getattr(socket, family), socket.SOCK_STREAM if family != "
        "'AF_NETLINK' else socket.SOCK_RAW).close()\n"
        "            out[family] = 'OPENED'\n"
        "        except OSError as exc:\n"
        "            out[family] = errno.errorcode.get(exc.errno, str(exc.errno))\n"
        "    try:\n"
        "        os.unshare(os.CLONE_NEWUSER)\n"
        "        out['unshare'] = 'ALLOWED'\n"
        "    except (OSError, AttributeError) as exc:\n"
        "        out['unshare'] = type(exc).__name__\n"
        "    return out\n"
    )
    # keep the uid (so the socket module can still be imported) but no audit hook
    settings = SandboxSettings(audit=False, drop_privileges=False)
    status, value, error = only_result(await run_raw(code, settings))
    assert status == "ok", error
    assert value == {
        "AF_INET": "EPERM",
        "AF_INET6": "EPERM",
        "AF_UNIX": "EPERM",
        "AF_NETLINK": "EPERM",
        "unshare": value["unshare"],
    }
    assert value["unshare"] != "ALLOWED"


async def test_without_seccomp_the_network_namespace_still_reaches_nothing() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    settings = SandboxSettings(audit=False, seccomp=False, drop_privileges=False)
    code = (
        "import socket\n"
        "def f():\n"
        f"    return socket.socket().connect_ex(('127.0.0.1', {port}))\n"
    )
    try:
        status, value, _ = only_result(await run_raw(code, settings))
        assert status == "ok"
        assert value != 0
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
