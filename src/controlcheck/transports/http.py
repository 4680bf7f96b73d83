"""Plain-HTTP GET of one URL: status and headers only, no redirect following.

Used for the plain-HTTP twin of an endpoint (``http.https-redirect``).  A tiny client
over a socket rather than ``requests`` so the connect address can differ from the
Host header (inventory ``address``), the whole exchange has one deadline and reads
are capped.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from controlcheck.transports.base import ConnectError, TransportError
from controlcheck.transports.tls_handshake import HttpAnswer, read_http_head


def get_head(url: str, *, address: str | None = None, timeout: float) -> HttpAnswer:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url}: not an http:// URL")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = parts.netloc.rsplit("@", 1)[-1]
    deadline = time.monotonic() + timeout
    target = address or parts.hostname
    try:
        sock = socket.create_connection((target, port), timeout=timeout)
    except OSError as exc:
        raise ConnectError(f"{target}:{port}: cannot connect: "
                           f"{'timed out' if isinstance(exc, TimeoutError) else exc.strerror or exc}"
                           ) from exc
    try:
        request = (f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: controlcheck\r\n"
                   "Accept: */*\r\nConnection: close\r\n\r\n")
        sock.sendall(request.encode("ascii"))
        return read_http_head(sock, deadline)
    except (OSError, ValueError) as exc:
        raise TransportError(f"{url}: no usable HTTP answer: "
                             f"{'timed out' if isinstance(exc, TimeoutError) else exc}") from exc
    finally:
        sock.close()
