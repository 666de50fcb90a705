"""schemathesis hooks (`SCHEMATHESIS_HOOKS=tests.support.schemathesis_hooks`): each request
carries the monitor's token of the role its route needs. The tokens come from the
environment as JSON (`MODELGUARD_TEST_TOKENS`: role -> token); unset, nothing is added."""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

from tests.support.monitor import role_for

TOKENS: dict[str, str] = json.loads(os.environ.get("MODELGUARD_TEST_TOKENS", "{}"))


@schemathesis.auth()
class RoleTokens:
    def get(self, case: Any, ctx: Any) -> str | None:
        return TOKENS.get(role_for(case.operation.method.upper(), case.operation.path))

    def set(self, case: Any, data: str | None, ctx: Any) -> None:
        if data:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
