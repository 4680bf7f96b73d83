"""TLS test lab: a small PKI made with ``cryptography``, nginx server blocks (one per
case, via ``tests/lab/nginx.py``), tlslite-ng servers for what OpenSSL 3 can no longer
serve (3DES, RC4, SSLv3), and tiny misbehaving socket servers (hang, garbage).

Used by ``tests/test_tls_lab.py`` and ``bench/tls_vs_sslyze``.  Everything listens on
127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HSTS = 'add_header Strict-Transport-Security "max-age=31536000" always;'
# Mozilla 6.0 intermediate, so a case only differs where it means to.
MOZ_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
               "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
               "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
CHECK_IDS = ("tls.protocol-versions", "tls.cipher-suites", "tls.certificate-trust",
             "tls.certificate-hostname", "tls.certificate-expiry", "tls.certificate-key",
             "tls.certificate-signature", "http.hsts", "http.https-redirect")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Issued:
    cert: x509.Certificate
    key: object

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())


def _rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_ca(cn: str, issuer: Issued | None = None) -> Issued:
    key = _rsa()
    now = _now()
    b = (x509.CertificateBuilder().subject_name(_name(cn))
         .issuer_name(issuer.cert.subject if issuer else _name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(days=30))
         .not_valid_after(now + dt.timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                      False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False))
    if issuer:  # RFC 5280 webpki validators (sslyze, browsers) require the AKI
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), critical=False)  # type: ignore[attr-defined]
    signer = issuer.key if issuer else key
    return Issued(b.sign(signer, hashes.SHA256()), key)  # type: ignore[arg-type]


def make_leaf(issuer: Issued, names: list[str], *, key: object | None = None,
              not_before: dt.timedelta = dt.timedelta(days=-1),
              not_after: dt.timedelta = dt.timedelta(days=90), self_signed: bool = False) -> Issued:
    key = key or _rsa()
    now = _now()
    subject = _name(names[0])
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(subject if self_signed else issuer.cert.subject)
         .public_key(key.public_key())  # type: ignore[attr-defined]
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + not_before).not_valid_after(now + not_after)
         .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                        critical=False)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(
             key.public_key()), critical=False))  # type: ignore[attr-defined]
    signer = key if self_signed else issuer.key
    if not self_signed:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), critical=False)  # type: ignore[attr-defined]
    return Issued(b.sign(signer, hashes.SHA256()), key)  # type: ignore[arg-type]


def sign_sha1(issuer: Issued, names: list[str], workdir: Path) -> Issued:
    """A leaf signed with SHA-1: cryptography refuses, so ``openssl x509 -req -sha1``."""
    key = _rsa()
    csr = (x509.CertificateSigningRequestBuilder().subject_name(_name(names[0]))
           .sign(key, hashes.SHA256()))
    (workdir / "sha1.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    (workdir / "sha1-ca.pem").write_bytes(issuer.cert_pem())
    (workdir / "sha1-ca.key").write_bytes(issuer.key_pem())
    (workdir / "sha1.ext").write_text(
        "subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n"
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    subprocess.run(["openssl", "x509", "-req", "-sha1", "-days", "60", "-in", str(workdir / "sha1.csr"),
                    "-CA", str(workdir / "sha1-ca.pem"), "-CAkey", str(workdir / "sha1-ca.key"),
                    "-set_serial", "4242", "-extfile", str(workdir / "sha1.ext"),
                    "-out", str(workdir / "sha1.pem")], check=True, capture_output=True)
    cert = x509.load_pem_x509_certificate((workdir / "sha1.pem").read_bytes())
    return Issued(cert, key)


@dataclass
class Case:
    """One lab endpoint and the exact status every check must give."""

    name: str
    url: str
    servername: str
    expect: dict[str, str]
    notes: str = ""


@dataclass
class TlsLab:
    dir: Path
    ca_file: Path
    cases: list[Case] = field(default_factory=list)
    stoppers: list[object] = field(default_factory=list)

    def case(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)

    def stop(self) -> None:
        for s in reversed(self.stoppers):
            s()  # type: ignore[operator]


def expect(**fails: str) -> dict[str, str]:
    """All pass, redirect skipped (no twin), except what is named (``tls_cipher_suites='fail'``)."""
    out = {cid: "pass" for cid in CHECK_IDS}
    out["http.https-redirect"] = "skip"
    for k, v in fails.items():
        out[k.replace("tls_", "tls.").replace("http_", "http.").replace("_", "-")] = v
    return out


def _write(d: Path, name: str, issued: Issued, chain: list[Issued] = ()) -> tuple[Path, Path, Path | None]:  # type: ignore[assignment]
    cert = d / f"{name}.pem"
    key = d / f"{name}.key"
    cert.write_bytes(issued.cert_pem())
    key.write_bytes(issued.key_pem())
    key.chmod(0o600)
    chain_path = None
    if chain:
        chain_path = d / f"{name}-chain.pem"
        chain_path.write_bytes(b"".join(c.cert_pem() for c in chain))
    return cert, key, chain_path


def start_lab(workdir: Path) -> TlsLab:
    """Build the PKI, start nginx with every case, tlslite servers and bad servers."""
    from lab.nginx import NginxLab

    certs = workdir / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    root = make_ca("controlcheck lab root")
    inter = make_ca("controlcheck lab intermediate", root)
    other_root = make_ca("someone else's root")
    ca_file = certs / "root.pem"
    ca_file.write_bytes(root.cert_pem())
    lab = TlsLab(workdir, ca_file)
    nginx = NginxLab(workdir)
    lab.stoppers.append(nginx.stop)
    day = dt.timedelta(days=1)

    def leaf(n: str, **kw: object) -> Issued:
        return make_leaf(inter, [f"{n}.lab.test"], **kw)  # type: ignore[arg-type]

    specs: list[tuple[str, Issued, list[Issued], dict[str, object], dict[str, str]]] = [
        ("good", leaf("good"), [inter], {}, expect()),
        ("expired", leaf("expired", not_before=-60 * day, not_after=-2 * day), [inter], {},
         expect(tls_certificate_expiry="fail")),
        ("notyet", leaf("notyet", not_before=5 * day, not_after=90 * day), [inter], {},
         expect(tls_certificate_expiry="fail")),
        ("expiring", leaf("expiring", not_after=5 * day), [inter], {},
         expect(tls_certificate_expiry="fail")),
        ("selfsigned", make_leaf(inter, ["selfsigned.lab.test"], self_signed=True), [], {},
         expect(tls_certificate_trust="fail")),
        ("unknownroot", make_leaf(other_root, ["unknownroot.lab.test"]), [], {},
         expect(tls_certificate_trust="fail")),
        ("wronghost", make_leaf(inter, ["other.example.test"]), [inter], {},
         expect(tls_certificate_hostname="fail")),
        ("nointermediate", leaf("nointermediate"), [], {},
         expect(tls_certificate_trust="fail")),
        ("rsa1024", leaf("rsa1024", key=_rsa(1024)), [inter],
         {"ciphers": MOZ_CIPHERS + ":@SECLEVEL=0"}, expect(tls_certificate_key="fail")),
        ("sha1", sign_sha1(inter, ["sha1.lab.test"], certs), [inter],
         {"ciphers": MOZ_CIPHERS + ":@SECLEVEL=0"}, expect(tls_certificate_signature="fail")),
        ("tls10", leaf("tls10"), [inter],
         {"protocols": "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", "ciphers": "DEFAULT:@SECLEVEL=0"},
         expect(tls_protocol_versions="fail", tls_cipher_suites="fail")),
        ("staticrsa", leaf("staticrsa"), [inter],
         {"ciphers": "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA"},
         expect(tls_cipher_suites="fail")),
        ("nohsts", leaf("nohsts"), [inter], {"hsts": ""}, expect(http_hsts="fail")),
        ("shorthsts", leaf("shorthsts"), [inter],
         {"hsts": 'add_header Strict-Transport-Security "max-age=3600" always;'},
         expect(http_hsts="fail")),
        ("ecdsa", leaf("ecdsa", key=ec.generate_private_key(ec.SECP256R1())), [inter], {},
         expect()),
        ("tls13only", leaf("tls13only"), [inter], {"protocols": "TLSv1.3"}, expect()),
    ]
    for name, issued, chain, opts, exp in specs:
        cert, key, chain_path = _write(certs, name, issued, chain)
        port = nginx.add_server(
            name, cert, key, chain_path=chain_path,
            protocols=str(opts.get("protocols", "TLSv1.2 TLSv1.3")),
            ciphers=str(opts.get("ciphers", MOZ_CIPHERS)),
            extra=str(opts.get("hsts", HSTS)))
        lab.cases.append(Case(name, f"https://127.0.0.1:{port}/", f"{name}.lab.test", exp))
    https_good = lab.case("good").url
    plain = expect(**{c: "skip" for c in CHECK_IDS})
    p200 = nginx.add_plain_http("http200", "<html>plain content</html>")
    lab.cases.append(Case("http200", f"http://127.0.0.1:{p200}/", "http200.lab.test",
                          {**plain, "http.https-redirect": "fail"}))
    p301 = nginx.add_plain_http("http301", https_good)
    lab.cases.append(Case("http301", f"http://127.0.0.1:{p301}/", "http301.lab.test",
                          {**plain, "http.https-redirect": "pass"}))
    nginx.start()

    tl_leaf = leaf("legacy")
    for name, ciphers, min_version, exp in (
        ("tl-3des", ["aes128gcm", "3des"], (3, 3), expect(tls_cipher_suites="fail")),
        ("tl-rc4", ["aes128gcm", "rc4"], (3, 3), expect(tls_cipher_suites="fail")),
        ("tl-ssl3", ["aes128gcm", "aes128"], (3, 0),
         expect(tls_protocol_versions="fail", tls_cipher_suites="fail")),
    ):
        srv = TlsliteServer(tl_leaf, [inter], ciphers, min_version)
        lab.stoppers.append(srv.stop)
        lab.cases.append(Case(name, f"https://127.0.0.1:{srv.port}/", "legacy.lab.test",
                              {**exp}))
    return lab


class TlsliteServer:
    """A tlslite-ng server in a thread answering every connection with a 200 + HSTS."""

    def __init__(self, leaf: Issued, chain: list[Issued], ciphers: list[str],
                 min_version: tuple[int, int]) -> None:
        from tlslite import X509, HandshakeSettings, X509CertChain
        from tlslite.utils.keyfactory import parsePEMKey

        certs = []
        for c in [leaf, *chain]:
            x = X509()
            x.parse(c.cert_pem().decode())
            certs.append(x)
        self.chain = X509CertChain(certs)
        self.key = parsePEMKey(leaf.key_pem().decode(), private=True)
        s = HandshakeSettings()
        s.cipherNames = ciphers
        s.minVersion = min_version
        s.maxVersion = (3, 3)
        s.keyExchangeNames = ["ecdhe_rsa", "rsa"]
        self.settings = s
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        from tlslite import TLSConnection

        conn.settimeout(10)
        try:
            tls = TLSConnection(conn)
            tls.handshakeServer(certChain=self.chain, privateKey=self.key,
                                settings=self.settings)
            tls.read(max=65536)
            tls.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n"
                      b"Strict-Transport-Security: max-age=31536000\r\n\r\nok\n")
            tls.close()
        except Exception:  # a probe hello that we do not complete ends here, on purpose
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop = True
        self.sock.close()


class BadServer:
    """A TCP server on 127.0.0.1 that hangs after accepting, or answers garbage."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.mode == "garbage":
                try:
                    conn.recv(4096)
                    conn.sendall(b"HELLO I AM NOT TLS\r\n" * 20)
                except OSError:
                    pass
            # "hang": keep the connection open and say nothing

    def stop(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client_hello_fields(record: bytes) -> tuple[int, set[int]]:
    """(legacy_version, extension types) of one ClientHello record (RFC 8446 §4.1.2)."""
    import struct

    body = record[9:]
    version = struct.unpack("!H", body[0:2])[0]
    p = 34
    p += 1 + body[p]                                          # session id
    p += 2 + struct.unpack("!H", body[p:p + 2])[0]            # cipher suites
    p += 1 + body[p]                                          # compression methods
    exts: set[int] = set()
    if p + 2 <= len(body):
        end = p + 2 + struct.unpack("!H", body[p:p + 2])[0]
        p += 2
        while p + 4 <= end:
            etype, elen = struct.unpack("!HH", body[p:p + 4])
            exts.add(etype)
            p += 4 + elen
    return version, exts


class PickyProxy:
    """A TCP proxy on 127.0.0.1 in front of a real TLS server that closes the connection,
    without an alert, on every ClientHello ``admit`` refuses (as some servers and
    middleboxes do for hellos they dislike) and forwards the rest byte for byte.

    ``admit`` gets (legacy_version, extension types) of the ClientHello.  ``seen`` keeps
    those of every hello received, so a test can assert what was sent.
    """

    def __init__(self, backend_port: int, admit: object) -> None:
        self.backend = backend_port
        self.admit = admit
        self.seen: list[tuple[int, set[int]]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_record(conn: socket.socket) -> bytes:
        data = b""
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            record = self._read_record(conn)
            fields = _client_hello_fields(record)
            self.seen.append(fields)
            if not self.admit(*fields):  # type: ignore[operator]
                return
            back = socket.create_connection(("127.0.0.1", self.backend), timeout=10)
            back.sendall(record)
            threading.Thread(target=self._pump, args=(back, conn), daemon=True).start()
            self._pump(conn, back)
        except (OSError, IndexError, ValueError):
            pass
        finally:
            conn.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self.sock.close()


class ReplayServer:
    """A TCP server on 127.0.0.1 that answers every ClientHello with the same captured
    bytes (``tests/data/tls/*.bin``, real server answers) and closes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                PickyProxy._read_record(conn)
                conn.sendall(self.answer)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self) -> None:
        self.sock.close()
