"""The independent GraphQL-over-HTTP conformance audit: graphql-http's ``auditServer``, run with
Node against a live server. Every audit must be "ok": MUST failures, SHOULD warnings and MAY
notices all fail this test. The audit's packages are pinned in tests/conformance/package-lock.json
and installed by scripts/bootstrap."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).parent / "conformance"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: run scripts/bootstrap (it installs Node.js)")
    if not (CONFORMANCE / "node_modules" / "graphql-http").is_dir():
        pytest.fail("tests/conformance/node_modules is missing: run scripts/bootstrap")
    return node


def test_graphql_http_audit_reports_only_ok(live_server: str) -> None:
    completed = subprocess.run(
        [_node(), str(CONFORMANCE / "audit.mjs"), f"{live_server}/graphql"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    results = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    assert results, completed.stderr
    not_ok = [r for r in results if r["status"] != "ok"]
    assert not_ok == [], json.dumps(not_ok, ensure_ascii=False, indent=2)
    assert completed.returncode == 0, completed.stderr
    # The audit covers media types, methods, parameters and status codes; a sanity check
    # that it ran in full rather than stopping early:
    assert len(results) >= 60
    assert {"22EB", "9C48", "86EE", "556A", "D586", "5E5B"} <= {r["id"] for r in results}
