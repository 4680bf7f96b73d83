"""Application access checks against a real tenant API served in a lab namespace,
with an isolation bug on one route and an unauthenticated debug route."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

if os.geteuid() != 0:
    pytest.skip("the lab needs root", allow_module_level=True)

from fleet_fixtures import NetnsServer, http_server, write_inventory  # noqa: E402
from lab import Lab  # noqa: E402

from controlcheck.catalogue import load_catalogue  # noqa: E402
from controlcheck.engine import Engine  # noqa: E402
from controlcheck.inventory import load_inventory  # noqa: E402
from controlcheck.model import CheckResult, Status  # noqa: E402
from controlcheck.probes.app import TenantAnswers, judge_anonymous, judge_tenants  # noqa: E402
from controlcheck.secrets import secret_values  # noqa: E402
from controlcheck.transports.app_http import HttpAnswer  # noqa: E402
from controlcheck.transports.factory import open_transport  # noqa: E402

pytestmark = pytest.mark.lab
TOKENS = {"tok-acme-5e1f0c2a": "acme", "tok-globex-77b3d910": "globex"}


class TenantAPI(BaseHTTPRequestHandler):
    """/api/tenants/<t>/invoices checks ownership; /api/v2/tenants/<t>/reports only
    checks that *some* token is valid (the bug); /admin redirects to /login; /debug
    is open to anyone."""

    def do_GET(self) -> None:  # noqa: N802
        parts = self.path.strip("/").split("/")
        auth = self.headers.get("Authorization", "")
        who = TOKENS.get(auth.removeprefix("Bearer "))
        if self.path == "/admin" and not who:
            return self._send(302, b"", {"Location": "/login?next=/admin"})
        if self.path == "/debug":
            return self._send(200, b"debug: all tenants' config\n")
        if len(parts) >= 4 and parts[-3] == "tenants":
            if not who:
                return self._send(401, b"login required\n", {"WWW-Authenticate": "Bearer"})
            owner = parts[-2]
            if parts[1] != "v2" and owner != who:
                return self._send(403, b"not yours\n")
            return self._send(200, json.dumps({"tenant": owner, "rows": [1, 2]}).encode())
        return self._send(404, b"no such route\n")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


def _tenant(name: str, own: str, foreign: list[str]) -> dict[str, object]:
    return {"name": name, "auth": {"token_env": f"CC_TEST_TOKEN_{name.upper()}"},
            "own": [own], "foreign": foreign}


@pytest.fixture(scope="module")
def run_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    lab = Lab()
    server = None
    old_env = dict(os.environ)
    try:
        zone = lab.add_zone_netns("app")
        bound = threading.Event()
        server = NetnsServer(zone.netns, http_server(zone.address, 8000, TenantAPI, bound)).start()
        assert bound.wait(5)
        os.environ["CC_TEST_TOKEN_ACME"] = "tok-acme-5e1f0c2a"
        os.environ["CC_TEST_TOKEN_GLOBEX"] = "tok-globex-77b3d910"
        os.environ["CC_TEST_TOKEN_STALE"] = "tok-acme-revoked-0000"
        base = f"http://{zone.address}:8000"
        tmp = tmp_path_factory.mktemp("app")
        inv_path = write_inventory(tmp / "inventory.yaml", {"applications": [
            {"name": "portal", "base_url": base,
             "protected": ["/api/tenants/acme/invoices", "/admin"],
             "tenants": [_tenant("acme", "/api/tenants/acme/invoices",
                                 ["/api/tenants/globex/invoices"]),
                         _tenant("globex", "/api/tenants/globex/invoices",
                                 ["/api/tenants/acme/invoices", "/api/tenants/initech/invoices"])]},
            {"name": "portal-v2", "base_url": base,
             "protected": ["/api/v2/tenants/acme/reports", "/debug"],
             "tenants": [_tenant("acme", "/api/v2/tenants/acme/reports",
                                 ["/api/v2/tenants/globex/reports"])]},
            # A stale token and no 'own' path: every foreign request gets 401 even on
            # the leaking v2 route, which proves nothing about isolation.
            {"name": "portal-v2-stale", "base_url": base,
             "tenants": [{"name": "acme", "auth": {"token_env": "CC_TEST_TOKEN_STALE"},
                          "foreign": ["/api/v2/tenants/globex/reports"]}]},
            {"name": "portal-nokeys", "base_url": base,
             "tenants": [{"name": "x", "auth": {"token_env": "CC_TEST_UNSET_VAR"},
                          "own": ["/api/tenants/x/invoices"], "foreign": ["/api/tenants/y/invoices"]}]},
        ]})
        inventory = load_inventory(inv_path)
        catalogue = load_catalogue().select(["ACCESS-03"])
        run = Engine(catalogue, inventory, transport_factory=open_transport,
                     secrets=secret_values(inventory)).run()
        yield {"results": {(r.target, r.check): r for r in run.results},
               "evidence": b"".join(e.content for e in run.evidence.all())}
    finally:
        os.environ.clear()
        os.environ.update(old_env)
        if server:
            server.stop()
        lab.teardown()


def _r(run_results: dict[str, object], target: str, check: str) -> CheckResult:
    results = run_results["results"]
    assert isinstance(results, dict)
    return results[(target, check)]


def test_good_routes_pass(run_results: dict[str, object]) -> None:
    anon = _r(run_results, "portal", "app.access.anonymous-refused")
    assert anon.status == Status.PASS, anon.message
    iso = _r(run_results, "portal", "app.access.tenant-isolation")
    assert iso.status == Status.PASS, iso.message


def test_buggy_routes_fail(run_results: dict[str, object]) -> None:
    anon = _r(run_results, "portal-v2", "app.access.anonymous-refused")
    assert anon.status == Status.FAIL and "/debug -> 200" in anon.message
    iso = _r(run_results, "portal-v2", "app.access.tenant-isolation")
    assert iso.status == Status.FAIL
    assert "acme read GET" in iso.message and "/api/v2/tenants/globex/reports -> 200" in iso.message


def test_missing_credentials_error_and_no_protected_is_manual(run_results: dict[str, object]) -> None:
    iso = _r(run_results, "portal-nokeys", "app.access.tenant-isolation")
    assert iso.status == Status.ERROR and "CC_TEST_UNSET_VAR is not set" in iso.message
    assert _r(run_results, "portal-nokeys", "app.access.anonymous-refused").status == Status.MANUAL


def test_tenant_without_own_path_is_not_a_pass(run_results: dict[str, object]) -> None:
    iso = _r(run_results, "portal-v2-stale", "app.access.tenant-isolation")
    assert iso.status == Status.ERROR, iso.message
    assert "own" in iso.message


def test_tokens_never_in_evidence(run_results: dict[str, object]) -> None:
    evidence = run_results["evidence"]
    assert isinstance(evidence, bytes) and b"Authorization" not in evidence
    assert b"tok-acme" not in evidence and b"tok-globex" not in evidence
    assert b"rows" not in evidence  # response bodies (customer data) are not stored


def test_judges_on_edge_answers() -> None:
    pat = r"(?i)login"
    redirect_elsewhere = HttpAnswer("GET", "http://a/x", 302, {"location": "/home"})
    assert judge_anonymous("a", [redirect_elsewhere], [401], pat).status == Status.ERROR
    assert judge_anonymous("a", [HttpAnswer("GET", "http://a/x", 204)], [401], pat).status \
        == Status.FAIL
    wrong_creds = [HttpAnswer("GET", "http://a/own", 401)]
    refused = [HttpAnswer("GET", "http://a/theirs", 403)]
    assert judge_tenants("a", [TenantAnswers("t", wrong_creds, refused)], [403]).status \
        == Status.ERROR
