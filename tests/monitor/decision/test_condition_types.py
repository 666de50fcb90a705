"""The conditions the operator writes are the ones the CRD admits.

Why: the CRD's `status.conditions[].type` is an enum; one type missing there makes a real API
server refuse every status update that carries it (the emulator the tests use does not
validate, so nothing else would notice).
"""

from __future__ import annotations

import re

import yaml

from monitor.decision.types import STATUS_CONDITION_TYPES
from tests.support.paths import REPO


def crd_condition_types() -> list[str]:
    crd = yaml.safe_load((REPO / "helm/modelguard/crds/modelmonitor.yaml").read_text())
    [version] = [v for v in crd["spec"]["versions"] if v.get("storage")]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return list(status["properties"]["conditions"]["items"]["properties"]["type"]["enum"])


def test_the_crd_admits_exactly_the_condition_types_the_operator_writes() -> None:
    assert sorted(crd_condition_types()) == sorted(STATUS_CONDITION_TYPES)


def test_every_condition_the_code_builds_is_a_known_type() -> None:
    """Conditions are built from string literals across the decision and operator code."""
    built: set[str] = set()
    for path in (REPO / "monitor").rglob("*.py"):
        text = path.read_text()
        built |= set(re.findall(r'Condition\(\s*"([A-Za-z]+)"', text))
        built |= set(re.findall(r'^\s*\("([A-Z][A-Za-z]+)", [a-z_]+\),$', text, re.M))
    assert built, "no condition found: the pattern no longer matches the code"
    assert built <= set(STATUS_CONDITION_TYPES), sorted(built - set(STATUS_CONDITION_TYPES))
