"""The Node tools API clients use take the served OpenAPI document: Spectral (``spectral:oas``)
and Redocly (``recommended``) find no error in it, and openapi-typescript's types accept the
bodies integrators write (``POST /v1/projects {name}``) and refuse wrong ones.

The tools are pinned in ``tools/package.json`` and its lock, installed by ``make test`` and
``.ci/run`` with ``npm ci``. Without them these tests skip, except under CI=true.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI

TOOLS = Path(__file__).resolve().parents[2] / "tools"
BIN = TOOLS / "node_modules" / ".bin"

# What the TypeScript a client author writes must type-check against the generated types.
TYPES_IN_USE = """\
import type { components, paths } from "./openapi";

type Schemas = components["schemas"];
type CreateProject =
  paths["/v1/projects"]["post"]["requestBody"]["content"]["application/json"];

export const project: CreateProject = { name: "Launch plan" };
export const task: Schemas["TaskCreate"] = { title: "Write the copy" };
export const key: Schemas["KeyCreate"] = { name: "CI/CD Pipeline" };
export const rotation: Schemas["KeyRotate"] = {};
export const custom: Schemas["CustomPermissions"] = { projects: "read" };

export function describe(calling: Schemas["CallingKey"], problem: Schemas["Problem"]): string {
  const scope: "full" | "read_only" | "custom" = calling.scope;
  const role: "owner" | "admin" | "member" = calling.role;
  return `${scope} ${role} ${calling.permissions.tasks} ${problem.code}`;
}

// @ts-expect-error: a project needs a name
export const nameless: CreateProject = { description: "No name" };
// @ts-expect-error: not a scope
export const wrongScope: Schemas["KeyCreate"] = { name: "x", scope: "admin" };
"""


@pytest.fixture(scope="module", autouse=True)
def node_tools() -> None:
    if not (BIN / "spectral").exists():
        reason = f"the Node tools are not installed in {TOOLS} (npm ci --prefix tools)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


def run(*command: str | Path, cwd: Path = TOOLS) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REDOCLY_TELEMETRY": "off",
        "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
        "NO_UPDATE_NOTIFIER": "1",
    }
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_spectral_finds_no_error(document_file: Path) -> None:
    result = run(
        BIN / "spectral", "lint", document_file, "--ruleset", TOOLS / "spectral.yaml",
        "--format", "json", "--fail-severity", "error",
    )  # fmt: skip
    findings = json.loads(result.stdout)
    errors = [finding for finding in findings if finding["severity"] == 0]
    assert errors == [], errors
    assert result.returncode == 0, result.stderr


def test_redocly_finds_no_error(document_file: Path) -> None:
    result = run(
        BIN / "redocly", "lint", document_file, "--config", TOOLS / "redocly.yaml",
        "--format", "json",
    )  # fmt: skip
    report = json.loads(result.stdout)
    errors = [problem for problem in report["problems"] if problem["severity"] == "error"]
    assert errors == [], errors
    assert report["totals"]["errors"] == 0
    assert result.returncode == 0, result.stderr


def test_typescript_types_accept_a_project_with_only_its_name(
    document_file: Path, tmp_path: Path
) -> None:
    generated = run(BIN / "openapi-typescript", document_file, "-o", tmp_path / "openapi.ts")
    assert generated.returncode == 0, generated.stderr
    (tmp_path / "use.ts").write_text(TYPES_IN_USE)

    checked = run(
        BIN / "tsc", "--noEmit", "--strict", "--target", "es2022", "--module", "es2022",
        "--moduleResolution", "bundler", tmp_path / "use.ts",
    )  # fmt: skip

    assert checked.returncode == 0, checked.stdout + checked.stderr
