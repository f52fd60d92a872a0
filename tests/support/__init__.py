"""Helpers shared by the tests: one package, so no test imports helpers from another test
module. The light ones are re-exported here (``from tests.support import ...``); those that
bring the app, the database or a browser along are imported from their module:
``browser`` (headless Chromium), ``edge`` (apps and clients of their own), ``hostile``
(hostile submissions), ``sessions`` (starting a SessionWorkflow), ``submissions``
(submitting and waiting for a verdict), ``time_skipping`` (the test server) and ``tutor``
(the tutor's track, sessions and an SSE reader)."""

from __future__ import annotations

from tests.support.histories import HISTORY_DIR, record_history
from tests.support.polling import eventually
from tests.support.servers import RedisServer, TcpProxy, free_port, free_ports
from tests.support.upstream import FaultyProxy

__all__ = [
    "HISTORY_DIR",
    "FaultyProxy",
    "RedisServer",
    "TcpProxy",
    "eventually",
    "free_port",
    "free_ports",
    "record_history",
]
