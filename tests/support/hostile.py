"""Hostile submissions to the ``py-secret-sum`` problem, shared by the Eval-level and the
end-to-end suites. Each says which verdicts it may end with; none may be accepted."""

from __future__ import annotations

from dataclasses import dataclass

from devservices.problem_bank import SECRET_MARKERS

RE, TLE, MLE, WA = "runtime_error", "time_limit_exceeded", "memory_limit_exceeded", "wrong_answer"
CE = "compile_error"


@dataclass(frozen=True)
class Hostile:
    code: str
    verdicts: frozenset[str]


def _h(code: str, *verdicts: str) -> Hostile:
    return Hostile(code, frozenset(verdicts))


# Correct on the public tests, so that the hidden ones run (and must stay mute).
_CORRECT = "    if label in ('total', 'x'):\n        return f'{label}:{sum(numbers)}'\n"
_DEF = "def secret_sum(label, numbers):\n" + _CORRECT

# Walk every frame and everything reachable from it; print it, raise it, return it.
_INTROSPECT = (
    "import sys\n"
    "def dig():\n"
    "    seen = []\n"
    "    try:\n"
    "        frame = sys._getframe(0)\n"
    "    except Exception:\n"
    "        return 'no frames'\n"
    "    while frame is not None:\n"
    "        seen.append(repr(frame.f_locals)[:20000])\n"
    "        seen.append(repr(frame.f_globals)[:20000])\n"
    "        frame = frame.f_back\n"
    "    return '|'.join(seen)\n"
    "def secret_sum(label, numbers):\n"
    "    found = dig()\n"
    "    print(found)\n"
    "    if label not in ('total', 'x'):\n"
    "        raise ValueError(found[:400])\n"
    "    return found\n"
)

HOSTILE: dict[str, Hostile] = {
    "introspect frames and print": _h(_INTROSPECT, WA, RE),
    "print the hidden arguments": _h(
        _DEF + "    print('LEAK', label, numbers)\n    return 0\n", WA
    ),
    "raise with the hidden arguments": _h(_DEF + "    raise ValueError(f'{label}{numbers}')\n", RE),
    "exception type named after the input": _h(
        _DEF + "    raise type(label.replace('-', '_'), (Exception,), {})(numbers)\n", RE
    ),
    "return the arguments": _h(_DEF + "    return [label, numbers]\n", WA),
    "write the input to every descriptor": _h(
        "import os\n" + _DEF + "    for fd in range(0, 2000):\n"
        "        try:\n            os.write(fd, f'{label}{numbers}\\n'.encode())\n"
        "        except OSError:\n            pass\n    return 0\n",
        WA,
        RE,
    ),
    "exit code carries the input": _h("import os\n" + _DEF + "    os._exit(len(label))\n", RE),
    "os._exit(0) mid-test": _h("import os\n" + _DEF + "    os._exit(0)\n", RE),
    "timing carries the input": _h(
        "import time\n" + _DEF + "    time.sleep(len(label) / 1000)\n    return 0\n", WA
    ),
    "scratch file for a later run": _h(
        "import os\n" + _DEF + "    open('leak.txt', 'a').write(label)\n"
        "    return os.listdir('.')\n",
        WA,
        RE,
    ),
    "deep return value": _h(
        "import sys\nsys.setrecursionlimit(100000)\n" + _DEF + "    v = []\n"
        "    for _ in range(20000):\n        v = [v]\n    return v\n",
        WA,
    ),
    "cyclic return value": _h(_DEF + "    v = []\n    v.append(v)\n    return v\n", WA),
    "huge return value": _h(_DEF + "    return label * 10**6\n", WA),
    "unserialisable return value": _h(_DEF + "    return object()\n", WA),
    "str subclass equal to everything": _h(
        "class S(str):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = str.__hash__\n" + _DEF + "    return S('nope')\n",
        WA,
    ),
    "output flood": _h(
        "import os\n" + _DEF + "    for _ in range(2000):\n        print('x' * 10000)\n"
        "        try:\n            os.write(1, b'y' * 10000)\n        except OSError:\n"
        "            pass\n    return 0\n",
        WA,
        TLE,
    ),
    "ignore the alarm signal": _h(
        "import signal\n" + _DEF + "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "    while True:\n        try:\n            pass\n        except BaseException:\n"
        "            pass\n",
        TLE,
        RE,
    ),
    "switch the timer off": _h(
        "import signal\n" + _DEF + "    signal.setitimer(signal.ITIMER_REAL, 0)\n"
        "    while True:\n        pass\n",
        TLE,
        RE,
    ),
    "unbounded recursion with a raised limit": _h(
        "import sys\nsys.setrecursionlimit(10**6)\n"
        + _DEF
        + "    return secret_sum(label, numbers)\n",
        RE,
        MLE,
        TLE,
    ),
    "forged result records": _h(
        "import os, json\n"
        + _DEF
        + "    line = ('X' * 32 + json.dumps({'kind': 'test', 'index': 0,"
        " 'status': 'ok', 'value': json.dumps(label)}) + '\\n').encode()\n"
        "    for fd in range(1, 20000):\n        try:\n            os.write(fd, line)\n"
        "        except OSError:\n            pass\n    return 0\n",
        WA,
        RE,
    ),
    "fork bomb": _h("import os\n" + _DEF + "    while True:\n        os.fork()\n", RE, TLE),
    "socket to loopback services": _h(
        "import socket\n" + _DEF + "    for port in (5432, 6379, 7233, 8000):\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=0.2).close()\n"
        "    return 'connected'\n",
        RE,
    ),
    "read the parent's environment": _h(
        _DEF + "    return open('/proc/1/environ').read() + open('/proc/self/environ').read()\n",
        RE,
        WA,
    ),
    "read the repository and keys": _h(
        "import os\n"
        + _DEF
        + "    for p in ('/work', '/root', '/etc/passwd', '.dev/jwt_private.pem'):\n"
        "        open(p).read()\n    return 0\n",
        RE,
    ),
    "memory hog": _h(_DEF + "    return len(bytearray(4 * 1024**3))\n", MLE, RE),
    "infinite loop": _h(_DEF + "    while True:\n        pass\n", TLE),
    "kill the sandbox's own init": _h(
        "import os, signal\n" + _DEF + "    os.kill(1, signal.SIGKILL)\n    return 0\n", RE, WA
    ),
    "exception whose str never ends": _h(
        "class E(Exception):\n    def __str__(self):\n        while True:\n            pass\n"
        + _DEF
        + "    raise E()\n",
        RE,
        TLE,
    ),
    "module body reads hidden data too early": _h(
        "import sys\nDATA = repr(sys.argv) + repr(sys.stdin.read() if sys.stdin else '')\n"
        + _DEF
        + "    return DATA\n",
        WA,
        RE,
    ),
    "syntax error": _h("def secret_sum(label, numbers)\n    return 1\n", CE),
}


def leaked(text: str) -> list[str]:
    """The hidden markers (arguments and expected values) found in ``text``."""
    return [marker for marker in SECRET_MARKERS if marker in text]
