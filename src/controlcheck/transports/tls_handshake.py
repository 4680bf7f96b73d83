"""A real TLS handshake through Python's ``ssl`` (OpenSSL), optionally followed by a GET.

This is the "what does a normal client get" half of a scan: the negotiated version and
suite, the certificate chain as served, whether that chain verifies, and (on the same
connection, to save a handshake) the HTTP status and headers.  Legacy versions and
suites OpenSSL 3 cannot offer are probed by ``raw_hello`` instead.

Verification deliberately ignores certificate *time* (``X509_V_FLAG_NO_CHECK_TIME``) and
key strength (``@SECLEVEL=0``): expiry and key size are separate checks, and folding
them into trust would report one fault three times.
"""

from __future__ import annotations

import socket
import ssl
import time
import warnings
from dataclasses import dataclass, field

from controlcheck.transports.base import ConnectError, TransportError

_NO_CHECK_TIME = 0x200000  # X509_V_FLAG_NO_CHECK_TIME (OpenSSL >= 1.1.0)
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    raw_head: str

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass(frozen=True)
class Handshake:
    """One completed handshake.  ``verify_error`` is None when the chain verified."""

    protocol: str
    cipher: str
    cipher_bits: int
    chain_der: tuple[bytes, ...]  # as served, leaf first
    verified: bool
    verify_error: str | None = None
    verified_chain_der: tuple[bytes, ...] = ()  # leaf .. trust anchor, when verified
    http: HttpAnswer | None = None
    http_error: str | None = None
    notes: tuple[str, ...] = field(default=())


class HandshakeFailed(TransportError):
    """The server refused every version/suite this client offers (an alert)."""


def _context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # hostname is its own check, judged from the SANs
    with warnings.catch_warnings():  # offering TLS 1.0 is the point here, not an accident
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        # Plain ints: IntFlag's ~ would silently drop the bit the enum does not know.
        flags = (int(ctx.verify_flags) & ~int(ssl.VERIFY_X509_STRICT)) | _NO_CHECK_TIME
        ctx.verify_flags = flags  # type: ignore[assignment]
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        else:
            ctx.load_default_certs()
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def handshake(address: str, port: int, servername: str | None, *, ca_file: str | None,
              timeout: float, http_path: str | None = None, http_host: str | None = None,
              verify: bool = True) -> Handshake:
    """Connect, handshake (verifying unless told not to), optionally GET ``http_path``.

    A verification failure is not an exception: it comes back as ``verified=False`` with
    OpenSSL's reason, after a second, non-verifying handshake that fetches the chain.
    """
    deadline = time.monotonic() + timeout
    try:
        return _attempt(address, port, servername, ca_file, deadline, timeout, http_path,
                        http_host, verify=verify)
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or str(exc)
        result = _attempt(address, port, servername, ca_file, deadline, timeout, http_path,
                          http_host, verify=False)
        return Handshake(result.protocol, result.cipher, result.cipher_bits, result.chain_der,
                         False, reason, (), result.http, result.http_error,
                         ("verifying handshake refused the chain; chain fetched without "
                          "verification",))


def _attempt(address: str, port: int, servername: str | None, ca_file: str | None,
             deadline: float, timeout: float, http_path: str | None, http_host: str | None,
             *, verify: bool) -> Handshake:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TransportError(f"{address}:{port}: no time left for a handshake ({timeout:g} s)")
    ctx = _context(verify, ca_file)
    try:
        raw = socket.create_connection((address, port), timeout=remaining)
    except OSError as exc:
        raise ConnectError(f"{address}:{port}: cannot connect: {_reason(exc)}") from exc
    try:
        raw.settimeout(max(0.01, deadline - time.monotonic()))
        sni = servername if servername and not _is_ip(servername) else None
        try:
            tls = ctx.wrap_socket(raw, server_hostname=sni)
        except ssl.SSLCertVerificationError:
            raise
        except ssl.SSLError as exc:
            raise HandshakeFailed(f"{address}:{port}: TLS handshake refused: "
                                  f"{exc.reason or exc}") from exc
        except TimeoutError as exc:
            raise TransportError(f"{address}:{port}: TLS handshake did not finish within "
                                 f"{timeout:g} s") from exc
        except (ConnectionError, OSError) as exc:
            raise TransportError(f"{address}:{port}: TLS handshake failed: "
                                 f"{_reason(exc)}") from exc
        with tls:
            cipher = tls.cipher() or ("?", "?", 0)
            sslobj = tls._sslobj  # type: ignore[attr-defined]
            chain = tuple(c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                          for c in (sslobj.get_unverified_chain() or []))
            verified_chain: tuple[bytes, ...] = ()
            if verify:
                verified_chain = tuple(
                    c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                    for c in (sslobj.get_verified_chain() or []))
            http, http_error = None, None
            if http_path is not None:
                try:
                    http = _get(tls, http_host or servername or address, http_path, deadline)
                except (OSError, ValueError, ssl.SSLError) as exc:
                    http_error = f"HTTP GET {http_path} failed: {_reason(exc)}"
            return Handshake(tls.version() or "?", cipher[0], int(cipher[2] or 0), chain,
                             verify, None, verified_chain, http, http_error)
    finally:
        raw.close()


def _get(sock: socket.socket, host: str, path: str, deadline: float) -> HttpAnswer:
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: controlcheck\r\n"
               "Accept: */*\r\nConnection: close\r\n\r\n")
    sock.sendall(request.encode("ascii", errors="strict"))
    return read_http_head(sock, deadline)


def read_http_head(sock: socket.socket, deadline: float) -> HttpAnswer:
    """Read a response's status line and headers (capped, within ``deadline``)."""
    data = b""
    while b"\r\n\r\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out reading the HTTP response")
        sock.settimeout(remaining)
        chunk = sock.recv(8192)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_HEADER_BYTES:
            raise ValueError("HTTP response head larger than 64 KiB")
    return parse_http_head(data.split(b"\r\n\r\n", 1)[0].decode("iso-8859-1"))


def parse_http_head(head: str) -> HttpAnswer:
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {lines[0][:60]!r}")
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return HttpAnswer(int(parts[1]), parts[2] if len(parts) > 2 else "", tuple(headers), head)


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
