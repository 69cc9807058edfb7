"""A pod's port on this computer's loopback through the Kubernetes API server's port-forward.

What is sent, for every TCP connection made to the local listener (one WebSocket each, as the
protocol has no multiplexing of connections):

``GET {cluster}/api/v1/namespaces/{ns}/pods/{pod}/portforward?ports={port}`` upgraded to a
WebSocket (wss:// for an https cluster) with ``Authorization: Bearer TOKEN`` and the
subprotocol ``v4.channel.k8s.io`` (the only one offered). The API server proxies it to the
kubelet, which speaks the channel protocol: every binary message starts with its channel byte
(0: the port's data, 1: its error text); the server's first message on each channel is 3 bytes,
the channel and the port number as 2 bytes little-endian; after that channel-0 messages carry
the pod's bytes and the client sends ``b"\\x00" + bytes``; a message on channel 1 is the
kubelet's error ("connection refused" when nothing listens on the port) and ends the
connection. Facts from the kubernetes-client Python package's ``stream/ws_client.py``
(``PortForward``: the 3-byte initial frames, ``port = data[1] + data[2] * 256``, the error
channel closing the socket) and KEP-4006 (``v4.channel.k8s.io`` stays the WebSocket
port-forward protocol besides the newer ``v2.portforward.k8s.io`` SPDY tunnel).

Why the ``websockets`` library and not ``kubernetes.stream.portforward``: the latter is built on
``websocket-client`` with a proxy thread per forward and blocking sockets, and exposes one
socket-like object per port rather than a listener; here each local connection is relayed on
the event loop with back-pressure (``drain``), nothing blocks a thread, and cancellation closes
everything at once. ``websockets`` is already a dependency and asyncio-native.

TLS is verified as the REST calls' client does (coreweave.py): against the app's CA bundle
(network settings) when one is set, else the certifi bundle the kubernetes client uses; no
proxy (the kubernetes client does not use one either). The token goes only into the
Authorization header of the upgrade request; the WebSocket library's logger is one of ours
kept above DEBUG, so its handshake dump (which prints request headers) never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .comfyui import ComfyUIError
from .http_client import USER_AGENT

if TYPE_CHECKING:
    import websockets.asyncio.client as ws_client
    import websockets.exceptions as ws_exceptions
else:
    from .lazy import LazyImport

    ws_client = LazyImport("websockets.asyncio.client")
    ws_exceptions = LazyImport("websockets.exceptions")

__all__ = ["PROTOCOL", "port_forward"]

log = logging.getLogger(__name__)
#: The WebSocket library's own logger: never at DEBUG (it would print the request headers).
_ws_log = logging.getLogger(__name__ + ".websocket")
_ws_log.setLevel(logging.INFO)

PROTOCOL = "v4.channel.k8s.io"
#: The most one WebSocket upgrade (TCP, TLS, HTTP) may take (seconds).
OPEN_TIMEOUT_S = 20.0
CLOSE_TIMEOUT_S = 2.0
_CHUNK = 64 * 1024
_MAX_MESSAGE = 16 * 1024 * 1024


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The TLS settings of the REST client: the app's CA bundle, else certifi's."""
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _status_text(body: bytes | bytearray | None) -> str:
    try:
        doc = json.loads(body or b"")
    except (TypeError, ValueError):
        return ""
    msg = doc.get("message") if isinstance(doc, dict) else None
    if not isinstance(msg, str):
        return ""
    return msg if len(msg) <= 200 else msg[:200] + "…"


class _Forward:
    def __init__(
        self, name: str, cluster: str, ns: str, pod: str, port: int, token: str, tls: Any
    ) -> None:
        self.name, self.ns, self.pod, self.port = name, ns, pod, port
        base = cluster.rstrip("/")
        scheme = "wss" if base.lower().startswith("https://") else "ws"
        self.url = (
            f"{scheme}://{base.split('://', 1)[1]}/api/v1/namespaces/{quote(ns)}/pods/"
            f"{quote(pod)}/portforward?ports={port}"
        )
        self.token = token
        self.tls = tls
        self.where = f"pod {pod} in namespace {ns}"
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def _error(self, what: str) -> ComfyUIError:
        return ComfyUIError("unreachable", f"{self.name}: port-forward to {self.where}: {what}")

    async def connect(self) -> Any:
        """One port-forward WebSocket, past its two initial port frames."""
        exc_mod = ws_exceptions
        try:
            ws = await ws_client.connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                subprotocols=[PROTOCOL],  # type: ignore[list-item]
                user_agent_header=USER_AGENT,
                compression=None,
                proxy=None,
                ssl=self.tls,
                open_timeout=OPEN_TIMEOUT_S,
                close_timeout=CLOSE_TIMEOUT_S,
                max_size=_MAX_MESSAGE,
                logger=_ws_log,
            )
        except exc_mod.InvalidStatus as exc:
            code = exc.response.status_code
            said = _status_text(exc.response.body)
            said = f" ({said})" if said else ""
            if code == 401:
                raise self._error("the cluster rejected the API access token (401)") from None
            if code == 403:
                raise self._error(
                    "the API access token may not port-forward (403; RBAC: create on "
                    f"pods/portforward){said}"
                ) from None
            if code == 404:
                raise self._error(f"the pod does not exist (404){said}") from None
            raise self._error(f"the API server answered {code}{said}") from None
        except exc_mod.InvalidHandshake as exc:
            raise self._error(f"the WebSocket upgrade failed ({exc})") from None
        except ssl.SSLError as exc:
            raise self._error(
                f"the API server's TLS certificate was not verified ({exc})"
            ) from None
        except (OSError, TimeoutError) as exc:
            raise self._error(
                f"cannot connect to the API server ({exc or type(exc).__name__})"
            ) from None
        try:
            if ws.subprotocol != PROTOCOL:
                raise self._error(f"the API server did not accept the {PROTOCOL} protocol")
            for channel in (0, 1):
                try:
                    first = await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT_S)
                except exc_mod.ConnectionClosed:
                    raise self._error("the API server closed the connection") from None
                except TimeoutError:
                    raise self._error("no port frame from the kubelet") from None
                if (
                    not isinstance(first, bytes)
                    or len(first) != 3
                    or first[0] != channel
                    or int.from_bytes(first[1:], "little") != self.port
                ):
                    raise self._error(f"an unexpected first frame on channel {channel}")
        except BaseException:
            with contextlib.suppress(Exception):
                await ws.close()
            raise
        return ws

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self.closed:  # (accepted just before the listener closed)
            writer.close()
            return
        if task is not None:
            self.tasks.add(task)
        ws = None
        try:
            ws = await self.connect()
            await self._relay(reader, writer, ws)
        except ComfyUIError as exc:
            log.info("%s", exc.message)
        except (OSError, ws_exceptions.ConnectionClosed):
            pass
        finally:
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT_S)
            if task is not None:
                self.tasks.discard(task)

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: Any
    ) -> None:
        async def up() -> None:  # this computer -> the pod
            while data := await reader.read(_CHUNK):
                await ws.send(b"\x00" + data)

        async def down() -> None:  # the pod -> this computer
            async for message in ws:
                if not isinstance(message, bytes) or not message:
                    raise self._error("a frame that is not a binary channel frame")
                if message[0] == 0:
                    writer.write(message[1:])
                    await writer.drain()
                elif message[0] == 1:
                    text = message[1:].decode("utf-8", "replace").strip()
                    raise self._error(f"the kubelet said: {text[:300]}")
                else:
                    raise self._error(f"data on the unexpected channel {message[0]}")

        pumps = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        for p in done:
            exc = p.exception()
            if exc is not None:
                raise exc


@contextlib.asynccontextmanager
async def port_forward(
    name: str,
    cluster: str,
    ns: str,
    pod: str,
    port: int,
    *,
    token: str,
    ca_bundle: str | None,
) -> AsyncIterator[str]:
    """``http://127.0.0.1:<local port>``, every connection to it relayed to ``port`` of the
    pod (see the module's text). One port-forward is opened and checked first: a pod that does
    not exist, is not running, or may not be reached raises :class:`ComfyUIError`
    ``unreachable``. On exit the listener, every relayed connection and its WebSocket are
    closed and their tasks finished."""
    tls = ssl_context(ca_bundle) if cluster.lower().startswith("https://") else None
    fwd = _Forward(name, cluster, ns, pod, port, token, tls)
    probe = await fwd.connect()
    with contextlib.suppress(Exception):
        await probe.close()
    server = await asyncio.start_server(fwd.serve, "127.0.0.1", 0)
    try:
        local = server.sockets[0].getsockname()[1]
        log.info("%s: port-forward 127.0.0.1:%s -> %s port %s", name, local, fwd.where, port)
        yield f"http://127.0.0.1:{local}"
    finally:
        fwd.closed = True
        server.close()
        tasks = list(fwd.tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT_S)
