"""Who may call what: one bearer token per role, checked before a request body is read.

Why a module of its own: the monitor patches Deployments, so every write that can change a
decision is an attack surface (docs/monitor.md#trust-boundary). Roles:

- predictor (`MONITOR_PREDICTOR_TOKEN`, or the older `MONITOR_REGISTRATION_TOKEN`): post
  records, register its own version (a digest-bound name);
- labels (`MONITOR_LABELS_TOKEN`): post labels;
- operator (`MONITOR_OPERATOR_TOKEN`): clear a rejection, declare a known-good, register a
  version under any name, read;
- reader (`MONITOR_READER_TOKEN`): read models, chunks, audit, decisions and reports (unset:
  those reads are open; `/metrics`, `/livez`, `/readyz` and `/openapi.json` always are).

`Guard.require(*roles)` is a FastAPI dependency. It reads only the `Authorization` header,
so it runs before the handler reads the body (the handlers parse the raw body themselves,
`parse_body(await request.body())`, after their dependencies): an unauthenticated client can
not make the monitor parse a large body. A token is compared with every configured token in
constant time (`hmac.compare_digest`, no early exit), is never logged, and a token of another
role is a 403 that names the roles the route needs, not the token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Literal

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.api.http import ApiError
from monitor.core.settings import MonitorSettings
from monitor.metrics import process as metrics

Role = Literal["predictor", "labels", "operator", "reader"]
ROLES: tuple[Role, ...] = ("predictor", "labels", "operator", "reader")
ENV = {role: f"MONITOR_{role.upper()}_TOKEN" for role in ROLES}

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="roleToken",
    description="The bearer token of the role the route needs (MONITOR_<ROLE>_TOKEN)",
)


class Guard:
    """The configured tokens, and dependencies that admit a request for some roles."""

    def __init__(self, settings: MonitorSettings) -> None:
        self._tokens: dict[Role, bytes] = {}
        for role in ROLES:
            token = settings.tokens.of(role)
            if token:
                self._tokens[role] = token.encode()
        if len(set(self._tokens.values())) < len(self._tokens):
            raise ValueError("two roles share one token: give each role its own")

    def configured(self, role: Role) -> bool:
        return role in self._tokens

    def role_of(self, given: str) -> Role | None:
        """The role whose token `given` is (compared with every token, constant time)."""
        raw = given.encode()
        found: Role | None = None
        for role, token in self._tokens.items():
            if hmac.compare_digest(raw, token):
                found = role
        return found

    def require(self, *roles: Role) -> Callable[..., Role | None]:
        """A dependency admitting a token of one of `roles`; it answers 503 when none of
        them has a token configured, 401 without a known token, 403 with another role's
        token."""
        need = " or ".join(roles)

        def dependency(
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        ) -> Role | None:
            if not any(self.configured(r) for r in roles):
                names = " / ".join(ENV[r] for r in roles)
                raise ApiError(503, f"this endpoint is disabled: {names} unset")
            role = self.role_of(credentials.credentials) if credentials else None
            if role is None:
                metrics.auth_refused(roles[0], 401)
                raise ApiError(
                    401,
                    f"missing or unknown bearer token (this endpoint needs the {need} token)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if role not in roles:
                metrics.auth_refused(roles[0], 403)
                raise ApiError(403, f"the {role} token may not do this: it needs the {need} token")
            return role

        return dependency
