"""The public GraphQL-over-HTTP conformance audit (graphql-http's ``auditServer``)."""

from __future__ import annotations

import json

import pytest

from .harness import NodeRunner, RunningApp

pytestmark = pytest.mark.e2e


def test_graphql_over_http_audit_reports_no_errors_and_no_warnings(
    app: RunningApp, node: NodeRunner
) -> None:
    summary = node("audit.mjs", app.graphql_url)

    assert summary["total"] > 0, summary
    failed = [f for f in summary["failures"] if f["status"] in {"error", "warn"}]
    counts = summary["counts"]
    assert (counts["error"], counts["warn"]) == (0, 0), (
        f"{len(failed)} audit failures:\n{json.dumps(failed, indent=2)}"
    )
