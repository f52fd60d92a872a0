"""``python -m devservices``: serve every dev service (Problem Bank :8101, Eval :8102, ...).

Ports and the internal token come from ``CO_DEV_PROBLEM_BANK_PORT``, ``CO_DEV_EVAL_PORT``,
``CO_DEV_TUTOR_PORT``, ``CO_DEV_HOST`` and ``CO_INTERNAL_TOKEN``. All servers run in one
process and one event loop; SIGINT/SIGTERM stop them all gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn

from devservices.registry import service_specs
from devservices.settings import DevServicesSettings
from devservices.testing import QuietServer

log = logging.getLogger("devservices")


async def run(settings: DevServicesSettings | None = None) -> None:
    settings = settings or DevServicesSettings()
    servers: list[uvicorn.Server] = []
    for spec in service_specs():
        port = spec.port(settings)
        config = uvicorn.Config(
            spec.factory(settings),
            host=settings.dev_host,
            port=port,
            lifespan="on",
            log_level="info",
            timeout_graceful_shutdown=3,
        )
        servers.append(QuietServer(config))
        log.info("%s on http://%s:%d", spec.name, settings.dev_host, port)

    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            if server.should_exit:
                server.force_exit = True  # second signal: stop now
            server.should_exit = True

    async def serve(server: uvicorn.Server) -> bool:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind: stop the others too
            stop()
            return False
        return server.started

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        started = await asyncio.gather(*(serve(s) for s in servers))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if not all(started):
        raise SystemExit(1)  # a server could not start (port in use?): uvicorn logged why


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run())


if __name__ == "__main__":
    main()
