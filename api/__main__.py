"""``python -m api``: serve the API with uvicorn (host/port from CO_API_HOST/CO_API_PORT)."""

from __future__ import annotations

import os
import sys

import uvicorn

from domain.logs import configure_logging
from domain.settings import SettingsError, load_settings


def main() -> int:
    try:
        settings = load_settings()
        from api.app import create_app

        app = create_app(settings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(
        app,
        host=os.environ.get("CO_API_HOST", "127.0.0.1"),
        port=int(os.environ.get("CO_API_PORT", "8000")),
        log_config=None,
        proxy_headers=True,
        # The request log line is CO's own (api.observability: with the request id and the
        # user); uvicorn's would repeat it, and builds its arguments on every request even
        # when its logger is silenced.
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
