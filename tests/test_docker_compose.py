"""docker-compose.yaml against the Compose Specification's JSON Schema, and against what the code needs.

The schema is ``schema/compose-spec.json`` of github.com/compose-spec/compose-spec at commit
170098ba07d9f53c383a41bfd4c5166b0a4529a6 (2026-06-23), stored in ``tests/data``. There is no
Docker engine here, so the stack itself is not started; these tests check its shape.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
SCHEMA = Path(__file__).with_name("data") / "compose-spec.schema.json"
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``, as ``docker compose config`` does."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name, "")
        if op in (":-", "-"):
            return current or arg if op == ":-" else env.get(name, arg)
        if op in (":?", "?") and not current:
            raise AssertionError(f"{name} is required: {arg}")
        return current

    return _VAR.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def _compose_vars(text: str) -> set[str]:
    return {m["name"] for m in _VAR.finditer(text.replace("$$", ""))}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    resolved = _interpolate(raw, _env_example())
    assert isinstance(resolved, dict)
    return resolved


def test_valid_against_the_pinned_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_the_validator_would_catch_a_broken_file(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = {**compose, "services": {**compose["services"], "airflow-apiserver": {"ports": "8080", "typo": 1}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_services_executor_ports_and_shared_jwt_secret(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(AIRFLOW_SERVICES) | {"postgres", "audit-db"} == set(services)
    assert "8080:8080" in services["airflow-apiserver"]["ports"]
    secrets = set()
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
        assert env["LEAN_AIRFLOW_DB_URL"].startswith("postgresql+psycopg://lean:")
        assert env["LEAN_AIRFLOW_DB_URL"].endswith("@audit-db/lean_audit")
        secrets.add(env["AIRFLOW__API_AUTH__JWT_SECRET"])
        assert services[name]["image"] == services["airflow-apiserver"]["image"]
    assert len(secrets) == 1 and secrets != {""}
    for name in set(AIRFLOW_SERVICES) - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_docker_socket_and_same_path_mounts(compose: dict[str, Any]) -> None:
    env = _env_example()
    scheduler = compose["services"]["airflow-scheduler"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in scheduler["volumes"]
    assert scheduler["group_add"] == [env["DOCKER_GID"]]
    for name in AIRFLOW_SERVICES:
        volumes = compose["services"][name].get("volumes", [])
        root, data = env["LEAN_AIRFLOW_ARTIFACT_ROOT"], env["LEAN_AIRFLOW_DATA_FOLDER"]
        assert f"{root}:{root}" in volumes, name
        assert f"{data}:{data}:ro" in volumes, name
        service_env = compose["services"][name]["environment"]
        assert service_env["LEAN_AIRFLOW_ARTIFACT_ROOT"] == root
        assert service_env["LEAN_AIRFLOW_DATA_FOLDER"] == data
        # dags/ and plugins/ are mounted where Airflow looks; include/ and algorithms/ under the
        # project dir on PYTHONPATH, whose host path the operator's path map points the daemon at.
        mounts = {v.split(":")[1]: v.split(":")[0] for v in volumes if v.startswith("./")}
        assert mounts[service_env["AIRFLOW__CORE__DAGS_FOLDER"]] == "./dags"
        assert mounts[service_env["AIRFLOW__CORE__PLUGINS_FOLDER"]] == "./plugins"
        project = service_env["PYTHONPATH"].split(":")[0]
        assert mounts[f"{project}/include"] == "./include" and mounts[f"{project}/algorithms"] == "./algorithms"
        path_map = json.loads(service_env["LEAN_AIRFLOW_HOST_PATH_MAP"])
        assert path_map == {f"{project}/algorithms": f"{env['LEAN_AIRFLOW_PROJECT_DIR']}/algorithms"}


def test_lean_image_is_set_once_and_pinned_by_digest(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    from include.lean_runtime import IMAGE_DIGEST_RE

    assert len(re.findall(r"^\s+LEAN_IMAGE:", COMPOSE.read_text(encoding="utf-8"), re.M)) == 1
    for name in AIRFLOW_SERVICES:
        assert IMAGE_DIGEST_RE.match(compose["services"][name]["environment"]["LEAN_IMAGE"])


def test_airflow_image_matches_the_pinned_version(raw: dict[str, Any]) -> None:
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO_ROOT / "requirements.txt").read_text(), re.M)
    assert pinned is not None
    dockerfile = raw["x-airflow-common"]["build"]["dockerfile_inline"]
    assert f"FROM apache/airflow:{pinned[1]}-python3.11" in dockerfile
    assert "-r /tmp/requirements.txt -c /tmp/constraints.txt" in dockerfile


def _code_env_vars() -> set[str]:
    found: set[str] = set()
    for folder in ("include", "plugins"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r'"((?:LEAN_AIRFLOW_|LEAN_)[A-Z_]+)"', path.read_text(encoding="utf-8")))
    # Read by the test suite or the container entry script only, not by a deployed service.
    return found - {"LEAN_AIRFLOW_TEST_PG_URL", "LEAN_AIRFLOW_SKIP_POSTGRES", "LEAN_SECRET_CONFIG", "LEAN_REPO_DIR"}


def test_every_variable_the_code_reads_is_set_and_every_compose_variable_documented(
    compose: dict[str, Any],
) -> None:
    needed = _code_env_vars()
    assert {"LEAN_IMAGE", "LEAN_AIRFLOW_ARTIFACT_ROOT", "LEAN_AIRFLOW_HOST_PATH_MAP"} <= needed
    for name in AIRFLOW_SERVICES:
        assert needed <= set(compose["services"][name]["environment"]), needed - set(
            compose["services"][name]["environment"]
        )
    used = _compose_vars(COMPOSE.read_text(encoding="utf-8"))
    documented = set(_env_example())
    assert used <= documented, used - documented
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in documented:  # each variable has a comment line right above it
        lines = text.splitlines()
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}="))
        assert lines[index - 1].startswith("#"), name


def test_no_secret_is_committed(raw: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for key in ("POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        for value in re.findall(rf"{key}: (.*)", text):
            assert value.startswith("${") and ":?" in value, (key, value)
    assert "_AIRFLOW_WWW_USER_PASSWORD: ${AIRFLOW_ADMIN_PASSWORD:?" in text
    for name, value in _env_example().items():
        if any(word in name for word in ("PASSWORD", "SECRET", "FERNET")):
            assert value.startswith("change-me"), name
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert tracked.stdout.strip() == ""


def test_a_missing_secret_is_refused_with_its_name(raw: dict[str, Any]) -> None:
    env = {k: v for k, v in _env_example().items() if k != "AIRFLOW_JWT_SECRET"}
    with pytest.raises(AssertionError, match="AIRFLOW_JWT_SECRET is required"):
        _interpolate(raw, env)
