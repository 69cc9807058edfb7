"""``comfyvn-gui serve``: the API on uvicorn, one process, sharing the home with the GUI and
the command line (the registry lock, the keyring, the job queue and the check results are
all multi-process safe)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, TextIO

from comfyvn_gui.core.errors import ComfyVNError
from comfyvn_gui.core.redaction import RedactingFilter
from comfyvn_gui.service import Service

from .guard import is_loopback_bind

if TYPE_CHECKING:
    import uvicorn

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def build(
    service: Service,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    monitor: bool = True,
    log_level: str = "warning",
    request_read_timeout_s: float | None = None,
) -> uvicorn.Server:
    """A ready ``uvicorn.Server`` (not started) for ``service``'s home. Each connection must
    deliver its request within ``request_read_timeout_s`` (default
    :data:`~comfyvn_gui.api.connections.REQUEST_READ_TIMEOUT_S`), and an idle keep-alive
    connection is closed after ``IDLE_KEEP_ALIVE_S``."""
    import uvicorn

    from .app import create_app
    from .connections import IDLE_KEEP_ALIVE_S, REQUEST_READ_TIMEOUT_S, bounded_protocol

    app = create_app(service, token=service.home.api_token(), bind_host=host, monitor=monitor)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,  # the client's address decides the secret-export rule: never a header
        server_header=False,
        timeout_graceful_shutdown=10,
        http=bounded_protocol(request_read_timeout_s or REQUEST_READ_TIMEOUT_S),
        timeout_keep_alive=IDLE_KEEP_ALIVE_S,
        h11_max_incomplete_event_size=64 * 1024,  # headers larger than this: 400
        ws="none",
        lifespan="on",
    )
    return uvicorn.Server(config)


def serve(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    monitor: bool = True,
    stderr: TextIO | None = None,
) -> int:
    """Run until Ctrl+C. Exit code 0 after a clean stop, 1 when the server cannot start."""
    err = stderr or sys.stderr
    for name in ("uvicorn", "uvicorn.error", "comfyvn_gui"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
    service = Service()
    try:
        server = build(service, host=host, port=port, monitor=monitor)
    except ComfyVNError as exc:
        print(f"comfyvn-gui: {exc.message}", file=err)
        return 1
    shown = f"[{host}]" if ":" in host else host
    print(
        f"comfyvn-gui API on http://{shown}:{port} for the home in "
        f"{service.home.config_dir.parent}",
        file=err,
    )
    print(
        f"Every request needs `Authorization: Bearer TOKEN`; the token is in "
        f"{service.home.api_token_file}",
        file=err,
    )
    if not is_loopback_bind(host):
        print(
            f"comfyvn-gui: warning: {host} is not a loopback address: the API is reachable from "
            "the network (anyone with the token can change providers and use their "
            "credentials). Use --host 127.0.0.1 unless you need this.",
            file=err,
        )
    err.flush()
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind
        pass
    except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl+C, then raises it again
        print("comfyvn-gui: the API server stopped", file=err)
        return 0 if server.started else 130
    if not server.started:
        print(
            f"comfyvn-gui: the API could not start on {host}:{port} (is the port in use? "
            "choose another with --port)",
            file=err,
        )
        return 1
    return 0
