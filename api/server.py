"""How the API is served (``iatro serve``): the HTTP protocol class uvicorn runs.

Why a subclass: asyncio sets TCP_NODELAY only on sockets whose ``proto`` is TCP. With
``--workers > 1`` uvicorn binds the listening socket itself, with ``proto`` 0, so the accepted
connections kept Nagle's algorithm; a response written as headers then body then waited for the
client's delayed ACK: about 40 ms on every keep-alive request (measured on this machine: ``/health``
at 44 ms with two workers against 0.8 ms with one). Setting the option on each connection makes both
modes behave the same.
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import suppress

from uvicorn.protocols.http.h11_impl import H11Protocol

# What ``uvicorn.run(http=...)`` is given: an import string, so that spawned workers import it too.
HTTP_PROTOCOL = "api.server:NoDelayH11Protocol"


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with suppress(OSError):  # a transport that refuses the option is served as before
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
