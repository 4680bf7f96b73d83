"""Application-layer access: anonymous requests refused, tenants kept apart.

Collect: the requests the inventory lists (``applications[].protected`` and
``tenants``), sent without following redirects; credentials come from the
environment variables the inventory names and never reach evidence.  Judge: pure
functions over the answers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.transports.app_http import HttpAnswer, fetch

LOGIN_PATTERN = r"(?i)(log-?in|sign-?in|auth|sso|oauth|saml|openid)"


@dataclass(frozen=True)
class TenantAnswers:
    tenant: str
    own: Sequence[HttpAnswer]
    foreign: Sequence[HttpAnswer]


def _is_login_redirect(a: HttpAnswer, pattern: str) -> bool:
    return 300 <= a.status < 400 and bool(a.location) and re.search(pattern, a.location) is not None


def judge_anonymous(app: str, answers: Sequence[HttpAnswer], refused: Sequence[int],
                    login_pattern: str) -> Outcome:
    """Fail on any 2xx to an anonymous request; error on answers that are neither."""
    open_, unclear, ok = [], [], []
    for a in answers:
        if 200 <= a.status < 300:
            open_.append(f"{a.method} {a.url} -> {a.status} ({a.body_length} bytes)")
        elif a.status in refused or _is_login_redirect(a, login_pattern):
            ok.append(a)
        else:
            where = f" to {a.location}" if a.location else ""
            unclear.append(f"{a.method} {a.url} -> {a.status}{where}")
    if open_:
        return Outcome.failed(f"{app}: anonymous requests get content: {'; '.join(open_)}. "
                              "Require authentication on these routes",
                              anonymous_open=open_)
    if unclear:
        return Outcome.error(f"{app}: cannot tell whether these anonymous requests were "
                             f"refused: {'; '.join(unclear)}; expected {list(refused)} or a "
                             "redirect to login (adjust refused_statuses/login_url_pattern)")
    return Outcome.passed(f"{app}: all {len(ok)} protected endpoint(s) refuse anonymous "
                          "requests")


def judge_tenants(app: str, tenants: Sequence[TenantAnswers], refused: Sequence[int]) -> Outcome:
    """Fail when a tenant reads a foreign resource; error when its own do not answer
    (then a refusal may only mean the credentials are wrong)."""
    leaks, unclear, bad_creds = [], [], []
    for t in tenants:
        if not t.own:
            # Without one answered own request, wrong or revoked credentials (401 on
            # everything) would read as "foreign refused".
            bad_creds.append(f"{t.tenant}: no 'own' path listed, so nothing shows its "
                             "credentials work")
        for a in t.own:
            if not 200 <= a.status < 300:
                bad_creds.append(f"{t.tenant}: own {a.method} {a.url} -> {a.status}")
        for a in t.foreign:
            if 200 <= a.status < 300:
                leaks.append(f"{t.tenant} read {a.method} {a.url} -> {a.status} "
                             f"({a.body_length} bytes)")
            elif a.status not in refused:
                unclear.append(f"{t.tenant}: {a.method} {a.url} -> {a.status}")
    if leaks:
        return Outcome.failed(f"{app}: tenant isolation broken: {'; '.join(leaks)}. Check "
                              "ownership on every route, not only at login", leaks=leaks)
    if bad_creds:
        return Outcome.error(f"{app}: a tenant's own resources do not answer, so refusals "
                             f"prove nothing: {'; '.join(bad_creds)}; fix the credentials or "
                             "the 'own' paths")
    if unclear:
        return Outcome.error(f"{app}: unexpected answers to foreign requests: "
                             f"{'; '.join(unclear)} (refused means {list(refused)})")
    n = sum(len(t.foreign) for t in tenants)
    return Outcome.passed(f"{app}: {len(tenants)} tenant(s) refused on all {n} foreign "
                          "request(s) and read their own")


# --------------------------------------------------------------------------- collect


def _request(item: str | Mapping[str, Any]) -> tuple[str, str]:
    if isinstance(item, str):
        return "GET", item
    return str(item.get("method", "GET")), str(item["path"])


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def _send(ctx: CheckContext, item: str | Mapping[str, Any], *, label: str,
          headers: Mapping[str, str] | None = None,
          basic: tuple[str, str] | None = None) -> HttpAnswer:
    spec = ctx.target.spec
    method, path = _request(item)
    ca = str(ctx.inventory.resolve(spec["ca_file"])) if spec.get("ca_file") else None
    answer = fetch(method, _url(spec["base_url"], path), headers=headers, basic=basic,
                   ca_file=ca, timeout=float(spec.get("timeout", ctx.timeout)))
    ctx.note(f"{label}: {method} {path}", answer.summary(), kind="http",
             meta={"status": answer.status})
    return answer


def _credentials(auth: Mapping[str, Any]) -> tuple[dict[str, str], tuple[str, str] | None, str]:
    """(headers, basic auth, problem) from environment variables named in the inventory."""
    if "token_env" in auth:
        token = os.environ.get(auth["token_env"], "")
        if not token:
            return {}, None, f"environment variable {auth['token_env']} is not set"
        scheme = auth.get("scheme", "Bearer")
        value = f"{scheme} {token}" if scheme else token
        return {auth.get("header", "Authorization"): value}, None, ""
    password = os.environ.get(auth["password_env"], "")
    if not password:
        return {}, None, f"environment variable {auth['password_env']} is not set"
    return {}, (auth["user"], password), ""


def check_anonymous_refused(ctx: CheckContext) -> Outcome:
    spec = ctx.target.spec
    if not spec.get("protected"):
        return Outcome.manual(f"{ctx.target.name}: no 'protected:' endpoints listed; list the "
                              "paths that need login to check they refuse anonymous requests")
    answers = [_send(ctx, item, label="anonymous") for item in spec["protected"]]
    pattern = spec.get("login_url_pattern") or ctx.params["login_url_pattern"]
    return judge_anonymous(ctx.target.name, answers, ctx.params["refused_statuses"], pattern)


def check_tenant_isolation(ctx: CheckContext) -> Outcome:
    spec = ctx.target.spec
    if not spec.get("tenants"):
        return Outcome.manual(f"{ctx.target.name}: no 'tenants:' listed; give two customers' "
                              "credentials (environment variables) and each one's own and "
                              "foreign paths to check isolation")
    collected = []
    for tenant in spec["tenants"]:
        headers, basic, problem = _credentials(tenant["auth"])
        if problem:
            return Outcome.error(f"{ctx.target.name}: tenant {tenant['name']}: {problem}")
        label = f"as tenant {tenant['name']}"
        own = [_send(ctx, i, label=label, headers=headers, basic=basic)
               for i in tenant.get("own", [])]
        foreign = [_send(ctx, i, label=label, headers=headers, basic=basic)
                   for i in tenant["foreign"]]
        collected.append(TenantAnswers(tenant["name"], own, foreign))
    return judge_tenants(ctx.target.name, collected, ctx.params["foreign_refused_statuses"])


_STATUSES = {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}}

CHECKS = (
    CheckSpec("app.access.anonymous-refused", TargetKind.APPLICATION, check_anonymous_refused,
              "an endpoint that needs login answers an anonymous request with content",
              {"refused_statuses": {**_STATUSES, "default": [401, 403]},
               "login_url_pattern": {"type": "string", "default": LOGIN_PATTERN,
                                     "description": "a redirect whose Location matches counts "
                                                    "as refused"}}),
    CheckSpec("app.access.tenant-isolation", TargetKind.APPLICATION, check_tenant_isolation,
              "one customer's credentials read another customer's resource",
              {"foreign_refused_statuses": {**_STATUSES, "default": [401, 403, 404]}}),
)
