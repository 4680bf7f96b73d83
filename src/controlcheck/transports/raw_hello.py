"""A ClientHello built byte by byte, and a parser for what the server answers.

Why: OpenSSL 3 can no longer *offer* SSLv3, RC4, 3DES, NULL or EXPORT suites, so a
client built on it cannot see that a server still accepts them.  A ServerHello that
names a version and a suite is proof enough of acceptance; we never finish the
handshake.  Layout references: RFC 5246 §7.4.1 (TLS 1.2), RFC 8446 §4.1 (TLS 1.3),
RFC 6101 (SSLv3).

``build_client_hello`` and ``parse_answer`` are pure and unit-tested on server
answers captured from nginx/OpenSSL 3 and tlslite-ng (``tests/data/tls/``);
``exchange`` is the only function doing I/O.  Errors::

    TransportError
    └── ConnectError        connect refused / unreachable / timeout before connect
    HelloError (TransportError)
    ├── HelloTimeout        no complete answer before the deadline (server hangs)
    └── HelloGarbage        the bytes received are not TLS
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlcheck.transports.base import ConnectError, TransportError

SSL3, TLS10, TLS11, TLS12, TLS13 = 0x0300, 0x0301, 0x0302, 0x0303, 0x0304
VERSION_NAMES = {SSL3: "SSLv3", TLS10: "TLSv1", TLS11: "TLSv1.1", TLS12: "TLSv1.2",
                 TLS13: "TLSv1.3"}

# Groups we offer (RFC 8422/7919/8446 and the hybrid X25519MLKEM768 code point 0x11EC).
GROUPS = {0x11EC: "X25519MLKEM768", 0x001D: "x25519", 0x0017: "secp256r1",
          0x0018: "secp384r1", 0x0019: "secp521r1", 0x001E: "x448", 0x0100: "ffdhe2048",
          0x0101: "ffdhe3072", 0x0102: "ffdhe4096", 0x0015: "secp224r1", 0x0013: "secp192r1"}
# Broad on purpose (incl. SHA-1) so that a weak server is not refused for our sake.
SIGALGS = (0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080A,
           0x080B, 0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602,
           0x0203, 0x0201, 0x0202)
ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
          40: "handshake_failure", 42: "bad_certificate", 47: "illegal_parameter",
          50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
          71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
          90: "user_canceled", 109: "missing_extension", 110: "unsupported_extension",
          112: "unrecognized_name", 120: "no_application_protocol"}
# RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

EXT_SERVER_NAME, EXT_STATUS_REQUEST, EXT_GROUPS, EXT_POINT_FORMATS = 0, 5, 10, 11
EXT_SIGALGS, EXT_SCT, EXT_EMS, EXT_TICKET = 13, 18, 23, 35
EXT_SUPPORTED_VERSIONS, EXT_PSK_MODES, EXT_KEY_SHARE, EXT_RENEGOTIATION = 43, 45, 51, 0xFF01
MAX_READ = 256 * 1024  # an answer bigger than this is not a ServerHello flight we want


class HelloError(TransportError):
    pass


class HelloTimeout(HelloError):
    pass


class HelloGarbage(HelloError):
    pass


@dataclass(frozen=True)
class ClientHelloSpec:
    """What one probe offers.  ``version`` is the highest version offered."""

    version: int
    ciphers: tuple[int, ...]
    servername: str | None = None
    status_request: bool = False  # ask for a stapled OCSP response (and SCTs)

    @property
    def label(self) -> str:
        return f"{VERSION_NAMES.get(self.version, hex(self.version))} × {len(self.ciphers)} suites"


@dataclass(frozen=True)
class Answer:
    """What the server said to one ClientHello.

    ``kind``: ``hello`` (ServerHello), ``retry`` (TLS 1.3 HelloRetryRequest: a version
    and suite were still chosen), ``alert`` or ``closed`` (EOF/reset, nothing said).
    """

    kind: str
    version: int | None = None
    cipher: int | None = None
    alert: int | None = None
    group: int | None = None  # TLS 1.3 key_share, or the TLS 1.2 ECDHE curve
    extensions: tuple[int, ...] = ()
    ocsp_stapled: bool = False  # a CertificateStatus message followed (TLS <= 1.2)
    messages: tuple[int, ...] = field(default=())  # handshake message types seen

    @property
    def accepted(self) -> bool:
        return self.kind in ("hello", "retry")

    @property
    def alert_name(self) -> str:
        return ALERTS.get(self.alert or 0, f"alert {self.alert}")

    def describe(self) -> str:
        from controlcheck.transports.tls_suites import suite_name

        if self.accepted:
            extra = f", group {GROUPS.get(self.group, self.group)}" if self.group else ""
            return (f"{'HelloRetryRequest' if self.kind == 'retry' else 'ServerHello'} "
                    f"{VERSION_NAMES.get(self.version or 0, self.version)} "
                    f"{suite_name(self.cipher or 0)}{extra}")
        if self.kind == "alert":
            return f"alert {self.alert_name} ({self.alert})"
        return "connection closed without an answer"


def _u8(data: bytes) -> bytes:
    return struct.pack("!B", len(data)) + data


def _u16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!H", kind) + _u16(body)


def _codes(codes: Sequence[int]) -> bytes:
    return b"".join(struct.pack("!H", c) for c in codes)


def build_client_hello(spec: ClientHelloSpec, *, random: bytes | None = None) -> bytes:
    """One TLS record holding a ClientHello for ``spec`` (pure but for the random)."""
    rnd = random if random is not None else os.urandom(32)
    tls13 = spec.version >= TLS13
    legacy = min(spec.version, TLS12)
    ciphers = list(spec.ciphers)
    if not tls13:
        ciphers.append(0x00FF)  # secure renegotiation SCSV: some servers insist on it
    exts = b""
    if spec.version > SSL3:  # SSLv3-era servers may choke on extensions
        if spec.servername and not is_ip_literal(spec.servername):
            # RFC 6066 §3: no IP literals in SNI (OpenSSL omits them too, and some
            # servers answer one with a fatal unrecognized_name).
            name = spec.servername.encode("idna")
            exts += _ext(EXT_SERVER_NAME, _u16(b"\x00" + _u16(name)))
        exts += _ext(EXT_GROUPS, _u16(_codes(list(GROUPS))))
        exts += _ext(EXT_POINT_FORMATS, _u8(b"\x00"))
        if spec.version >= TLS12:
            exts += _ext(EXT_SIGALGS, _u16(_codes(SIGALGS)))
        if spec.status_request:
            exts += _ext(EXT_STATUS_REQUEST, b"\x01\x00\x00\x00\x00")
            exts += _ext(EXT_SCT, b"")
        exts += _ext(EXT_EMS, b"") + _ext(EXT_TICKET, b"")
        if tls13:
            exts += _ext(EXT_SUPPORTED_VERSIONS, _u8(_codes([TLS13])))
            exts += _ext(EXT_PSK_MODES, _u8(b"\x01"))
            # Any 32 bytes are a valid X25519 share; we never derive the secret.
            exts += _ext(EXT_KEY_SHARE, _u16(struct.pack("!H", 0x001D) + _u16(os.urandom(32))))
    body = (struct.pack("!H", legacy) + rnd + _u8(os.urandom(32)) + _u16(_codes(ciphers))
            + _u8(b"\x00"))
    if exts:
        body += _u16(exts)
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    record_version = SSL3 if spec.version == SSL3 else TLS10
    return b"\x16" + struct.pack("!HH", record_version, len(handshake)) + handshake


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def parse_answer(data: bytes, *, want_flight: bool = False) -> Answer | None:
    """The server's answer from the bytes read so far; ``None`` means "read more".

    With ``want_flight`` a TLS <= 1.2 answer is complete only at ServerHelloDone, so the
    OCSP status and the ECDHE curve can be read.  Raises ``HelloGarbage`` for bytes that
    are not TLS (an HTTP server, SSH, random noise).
    """
    hs = bytearray()
    pos = 0
    first: Answer | None = None
    while pos + 5 <= len(data):
        ctype, major, _minor, length = data[pos], data[pos + 1], data[pos + 2], \
            struct.unpack("!H", data[pos + 3:pos + 5])[0]
        if ctype not in (20, 21, 22, 23) or major != 3 or length > 18432:
            raise HelloGarbage(f"not a TLS record (first bytes {data[pos:pos + 8].hex()})")
        if pos + 5 + length > len(data):
            break
        payload = data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if ctype == 21:
            if first is not None:
                return first  # an alert after the ServerHello: acceptance already shown
            if len(payload) < 2:
                raise HelloGarbage("truncated alert")
            return Answer("alert", alert=payload[1])
        if ctype == 22:
            hs += payload
        elif first is None and ctype != 20:
            raise HelloGarbage(f"record type {ctype} before any ServerHello")
        first = _walk(bytes(hs), want_flight, first)
        if first is not None and (not want_flight or first.kind == "retry"
                                  or (first.version or 0) >= TLS13 or 14 in first.messages):
            return first
    if len(data) >= 5 and pos == 0 and data[0] not in (20, 21, 22, 23):
        raise HelloGarbage(f"not a TLS record (first bytes {data[:8].hex()})")
    return None


def _walk(hs: bytes, want_flight: bool, first: Answer | None) -> Answer | None:
    """Parse the handshake messages complete so far."""
    pos = 0
    answer = first
    types: list[int] = []
    while pos + 4 <= len(hs):
        mtype = hs[pos]
        mlen = struct.unpack("!I", b"\x00" + hs[pos + 1:pos + 4])[0]
        if pos + 4 + mlen > len(hs):
            break
        body = hs[pos + 4:pos + 4 + mlen]
        pos += 4 + mlen
        types.append(mtype)
        if len(types) == 1:
            if mtype != 2:
                raise HelloGarbage(f"first handshake message is type {mtype}, not ServerHello")
            answer = _server_hello(body)
        elif answer is not None:
            if mtype == 22:
                answer = _replace(answer, ocsp_stapled=True)
            elif mtype == 12 and len(body) >= 3 and body[0] == 3:
                answer = _replace(answer, group=struct.unpack("!H", body[1:3])[0])
    if answer is not None:
        answer = _replace(answer, messages=tuple(types))
    return answer


def _replace(a: Answer, **changes: object) -> Answer:
    from dataclasses import replace

    return replace(a, **changes)  # type: ignore[arg-type]


def _server_hello(body: bytes) -> Answer:
    try:
        version = struct.unpack("!H", body[0:2])[0]
        rnd = body[2:34]
        sid_len = body[34]
        p = 35 + sid_len
        cipher = struct.unpack("!H", body[p:p + 2])[0]
        p += 3  # cipher + compression method
        exts: list[int] = []
        group = None
        if p + 2 <= len(body):
            end = p + 2 + struct.unpack("!H", body[p:p + 2])[0]
            p += 2
            while p + 4 <= end:
                etype, elen = struct.unpack("!HH", body[p:p + 4])
                edata = body[p + 4:p + 4 + elen]
                p += 4 + elen
                exts.append(etype)
                if etype == EXT_SUPPORTED_VERSIONS and elen == 2:
                    version = struct.unpack("!H", edata)[0]
                elif etype == EXT_KEY_SHARE and elen >= 2:
                    group = struct.unpack("!H", edata[:2])[0]
    except (struct.error, IndexError) as exc:
        raise HelloGarbage(f"malformed ServerHello ({exc})") from exc
    if (version >> 8) != 3:
        raise HelloGarbage(f"ServerHello with impossible version 0x{version:04x}")
    kind = "retry" if rnd == HRR_RANDOM else "hello"
    return Answer(kind, version=version, cipher=cipher, group=group, extensions=tuple(exts))


def exchange(address: str, port: int, spec: ClientHelloSpec, *, timeout: float,
             want_flight: bool = False) -> tuple[Answer, bytes]:
    """Send one ClientHello, return the parsed answer and the raw bytes read.

    ``timeout`` bounds the whole exchange (connect + all reads), and reads stop at
    ``MAX_READ`` bytes, so a server that trickles or hangs costs at most ``timeout``.
    """
    deadline = time.monotonic() + timeout
    hello = build_client_hello(spec)
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise ConnectError(f"{address}:{port}: cannot connect: {_reason(exc)}") from exc
    data = b""
    try:
        sock.sendall(hello)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HelloTimeout(f"{address}:{port}: no complete answer to a "
                                   f"{spec.label} ClientHello within {timeout:g} s "
                                   f"({len(data)} bytes received)")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(16384)
            except TimeoutError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                answer = parse_answer(data, want_flight=False) if data else None
                return (answer or Answer("closed")), data
            data += chunk
            answer = parse_answer(data, want_flight=want_flight)
            if answer is not None:
                return answer, data
            if len(data) > MAX_READ:
                answer = parse_answer(data, want_flight=False)
                if answer is not None:
                    return answer, data[:MAX_READ]
                raise HelloGarbage(f"{address}:{port}: {len(data)} bytes without a ServerHello")
    except HelloGarbage as exc:
        raise HelloGarbage(f"{address}:{port}: answer is not TLS: {exc}") from None
    except OSError as exc:
        raise HelloError(f"{address}:{port}: {_reason(exc)}") from exc
    finally:
        sock.close()


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__
