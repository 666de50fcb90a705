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

Per-model credentials (`MONITOR_MODEL_TOKENS_FILE`, monitor/api/model_tokens.py): a
predictor or labels token that names its model. A request is admitted by the header alone
(the `Caller` says role and model); the route then checks, after parsing and before any write,
that every model the body names is the caller's (`refuse_foreign`): a per-model credential
writes only its model, and a global predictor/labels token writes no model that has its own
credentials. The operator token stays all-models. A refusal is a 403 naming the model.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.api.http import ApiError
from monitor.api.model_tokens import ModelTokens, digest
from monitor.core.settings import ConfigError, MonitorSettings
from monitor.metrics import process as metrics

Role = Literal["predictor", "labels", "operator", "reader"]
ROLES: tuple[Role, ...] = ("predictor", "labels", "operator", "reader")
PER_MODEL: tuple[Role, ...] = ("predictor", "labels")
ENV = {role: f"MONITOR_{role.upper()}_TOKEN" for role in ROLES}

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="roleToken",
    description="The bearer token of the role the route needs (MONITOR_<ROLE>_TOKEN), or the"
    " model's own predictor/labels token (MONITOR_MODEL_TOKENS_FILE)",
)


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a role, and the model its credential names (None: all models,
    a global role token)."""

    role: Role
    model: str | None = None


class Guard:
    """The configured tokens, and dependencies that admit a request for some roles."""

    def __init__(self, settings: MonitorSettings) -> None:
        self._tokens: dict[Role, bytes] = {}
        for role in ROLES:
            token = settings.tokens.of(role)
            if token:
                self._tokens[role] = digest(token)
        if len(set(self._tokens.values())) < len(self._tokens):
            raise ConfigError(
                "MONITOR_<ROLE>_TOKEN: two roles share one token: give each role its own"
            )
        self.model_tokens = ModelTokens(
            settings.tokens.model_tokens_file, frozenset(self._tokens.values())
        )

    def configured(self, role: Role) -> bool:
        if role in self._tokens:
            return True
        return role in PER_MODEL and any(r == role for _, r in self.model_tokens.current())

    def caller_of(self, given: str) -> Caller | None:
        """Whose token `given` is: compared with every token (sha256 digests, constant time,
        no early exit)."""
        raw = digest(given)
        found: Caller | None = None
        for role, token in self._tokens.items():
            if hmac.compare_digest(raw, token):
                found = Caller(role)
        for (model, model_role), token in self.model_tokens.current().items():
            if hmac.compare_digest(raw, token):
                found = Caller("predictor" if model_role == "predictor" else "labels", model)
        return found

    def refuse_foreign(self, caller: Caller, named: Sequence[str], where: str) -> None:
        """403 unless `caller` may write every model in `named` (the body's models, in order;
        `where` names the field, `{i}` the index): nothing is stored on a refusal."""
        if caller.role == "operator":
            return
        owned = self.model_tokens.closed_to_global() if caller.model is None else frozenset()
        for i, model in enumerate(named):
            if caller.model is not None and model != caller.model:
                message = (
                    f"model {caller.model!r}'s {caller.role} credential may not write model"
                    f" {model!r}: a per-model credential writes only its own model"
                )
            elif caller.model is None and model in owned:
                message = (
                    f"model {model!r} has its own credentials (MONITOR_MODEL_TOKENS_FILE): the"
                    f" global {caller.role} token may not write it; use the model's own"
                )
            else:
                continue
            metrics.auth_refused(caller.role, 403)
            raise ApiError(403, message + "; nothing was stored", where.format(i=i))

    def require(self, *roles: Role) -> Callable[..., Caller]:
        """A dependency admitting a token of one of `roles`; it answers 503 when none of
        them has a token configured, 401 without a known token, 403 with another role's
        token."""
        need = " or ".join(roles)

        def dependency(
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        ) -> Caller:
            if not any(self.configured(r) for r in roles):
                names = " / ".join(ENV[r] for r in roles)
                raise ApiError(503, f"this endpoint is disabled: {names} unset")
            caller = self.caller_of(credentials.credentials) if credentials else None
            if caller is None:
                metrics.auth_refused(roles[0], 401)
                raise ApiError(
                    401,
                    f"missing or unknown bearer token (this endpoint needs the {need} token)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if caller.role not in roles:
                metrics.auth_refused(roles[0], 403)
                raise ApiError(
                    403, f"the {caller.role} token may not do this: it needs the {need} token"
                )
            return caller

        return dependency
