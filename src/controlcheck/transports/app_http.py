"""One HTTP request to an application, as the access checks need it.

Redirects are never followed (a redirect *is* the answer: to the login page or
not), certificates are verified (system store or the inventory's ``ca_file``),
and what comes back is reduced to facts that hold no secret and no customer
data: status, a few headers with credentials redacted, body length and digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests

from controlcheck.transports.base import ConnectError, TransportError

_SENSITIVE = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
_KEEP = ("content-type", "content-length", "location", "www-authenticate", "cache-control")


@dataclass(frozen=True)
class HttpAnswer:
    method: str
    url: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # selected, redacted
    body_length: int = 0
    body_sha256: str = ""

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    def summary(self) -> str:
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return (f"{self.method} {self.url}\n-> {self.status}\n{head}\n"
                f"# body: {self.body_length} bytes, sha256 {self.body_sha256 or '-'} "
                "(not stored: may hold customer data)\n")


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: ("[REDACTED]" if k.lower() in _SENSITIVE else v) for k, v in headers.items()}


def fetch(method: str, url: str, *, headers: Mapping[str, str] | None = None,
          basic: tuple[str, str] | None = None, ca_file: str | None = None,
          timeout: float = 10.0, max_body: int = 1024 * 1024) -> HttpAnswer:
    """Send one request; raise ``TransportError`` when there is no HTTP answer."""
    try:
        with requests.request(method, url, headers=dict(headers or {}), auth=basic,
                              allow_redirects=False, verify=ca_file or True,
                              timeout=timeout, stream=True) as resp:
            body = b""
            for chunk in resp.iter_content(65536):
                body += chunk
                if len(body) >= max_body:
                    break
            kept = {k: resp.headers[k] for k in _KEEP if k in resp.headers}
            return HttpAnswer(method, url, resp.status_code, redact_headers(kept), len(body),
                              hashlib.sha256(body).hexdigest() if body else "")
    except requests.exceptions.SSLError as exc:
        raise TransportError(f"{url}: TLS verification failed ({_short(exc)}); set ca_file "
                             "for a private CA") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise ConnectError(f"{url}: no answer ({_short(exc)})") from None
    except requests.exceptions.RequestException as exc:
        raise TransportError(f"{url}: request failed ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"
