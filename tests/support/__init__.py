"""Helpers shared by the tests (``from tests.support import ...``): one package, so no
test imports helpers from another test module."""

from __future__ import annotations

from tests.support.histories import HISTORY_DIR, record_history
from tests.support.polling import eventually
from tests.support.servers import RedisServer, TcpProxy, free_port
from tests.support.upstream import FaultyProxy

__all__ = [
    "HISTORY_DIR",
    "FaultyProxy",
    "RedisServer",
    "TcpProxy",
    "eventually",
    "free_port",
    "record_history",
]
