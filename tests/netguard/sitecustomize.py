"""The tests' no-network guard, for child Python processes too.

The autouse `_no_network` fixture (tests/conftest.py) puts this folder first on PYTHONPATH, so
every Python the tests start (the `qabot` console script, `python -c …`) imports this module at
start-up and refuses, as the test process does, any socket connection beyond loopback.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

MESSAGE = "test tried to reach the network"


def allowed(address: object) -> bool:
    """True for loopback addresses (and 'localhost')."""
    host = address[0] if isinstance(address, tuple) else str(address)
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def guard(real: Any) -> Any:
    """socket.connect (or connect_ex) refusing any non-loopback AF_INET/AF_INET6 address; the
    refusal is also written to stderr, so it shows even where the caller catches the error."""

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not allowed(address):
            print(f"{MESSAGE}: {address}", file=sys.stderr, flush=True)
            raise RuntimeError(f"{MESSAGE}: {address}")
        return real(self, address)

    return guarded


def install() -> None:
    socket.socket.connect = guard(socket.socket.connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = guard(socket.socket.connect_ex)  # type: ignore[method-assign]


if __name__ == "sitecustomize":  # imported at start-up by a child process, not by conftest
    install()
