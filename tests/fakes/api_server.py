"""The real API server (uvicorn, the app of ``comfyvn_gui.api``) on a free port, in a thread.

Not a fake: it is the product's own server, started the way ``comfyvn-gui serve`` starts it
(``comfyvn_gui.api.server.build``), so the tests talk HTTP to exactly what users run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from comfyvn_gui.api.server import build
from comfyvn_gui.service import Service


class ApiServer:
    def __init__(
        self,
        service: Service,
        *,
        host: str = "127.0.0.1",
        monitor: bool = False,
        request_read_timeout_s: float | None = None,
    ):
        self.service = service
        self.host = host
        self.server = build(
            service,
            host=host,
            port=0,
            monitor=monitor,
            request_read_timeout_s=request_read_timeout_s,
        )
        self.thread = threading.Thread(target=self.server.run, name="api-server", daemon=True)
        self.port = 0

    @property
    def token(self) -> str:
        return self.service.home.api_token()

    def url_for(self, host: str | None = None) -> str:
        host = host or ("127.0.0.1" if self.host in ("0.0.0.0", "") else self.host)
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return self.url_for()

    def start(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(
        self, *, token: str | None = None, host: str | None = None, **kw: Any
    ) -> httpx.Client:
        """An httpx client with the bearer token (``token=""`` sends none)."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        return httpx.Client(
            base_url=self.url_for(host), headers=headers, timeout=kw.pop("timeout", 60), **kw
        )


@contextmanager
def api_server(service: Service | None = None, **kw: Any) -> Iterator[ApiServer]:
    srv = ApiServer(service or Service(), **kw).start()
    try:
        yield srv
    finally:
        srv.stop()
