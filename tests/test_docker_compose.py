"""docker-compose.yaml against the Compose Specification's JSON Schema, and against what the code needs.

The schema is ``schema/compose-spec.json`` of github.com/compose-spec/compose-spec at commit
170098ba07d9f53c383a41bfd4c5166b0a4529a6 (2026-06-23), stored unchanged as
``tests/data/compose-spec.schema.json``. Compose validates a file after interpolating ``${VAR}``
from ``.env``; these tests interpolate from ``.env.example`` the same way. There is no Docker
engine here, so the stack itself is not started; these tests check its shape.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema.validators import validator_for

from tests.celery_stack import services_unreachable
from tests.conftest import REPO_ROOT
from tests.lean_data_factory import write_lean_databases

COMPOSE = REPO_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
README = REPO_ROOT / "README.md"
SCHEMA = Path(__file__).with_name("data") / "compose-spec.schema.json"
SCHEMA_SHA256 = "1f91e091f16b2dd50ab8860e02bb391d22df553d91c145eacedb1b6eff9c3f0e"
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
LONG_RUNNING = tuple(name for name in AIRFLOW_SERVICES if name != "airflow-init")
CELERY_PROFILE = "celery"
# The services `--profile celery` adds to the default stack.
CELERY_SERVICES = ("redis", "airflow-worker")
DOCKER_SOCKET = "/var/run/docker.sock"
SECRET_WORDS = ("PASSWORD", "SECRET", "FERNET", "TOKEN")


def is_secret_var(name: str) -> bool:
    """A variable holding a secret value; ``*_SECRET_NAME`` names a Kubernetes Secret object, not a secret."""
    return any(word in name for word in SECRET_WORDS) and not name.endswith("_SECRET_NAME")


LEAN_DIGEST = "quantconnect/lean@sha256:" + "ab" * 32
# Read by include/ or plugins/, yet not the deployment's to set: LeanRunOperator gives them to the
# Lean container (the secret through Docker's private_environment, the output's owner in the clear).
# Set by the project inside Lean's container or pod, never by a deployment.
NOT_DEPLOYMENT_VARS = {"LEAN_SECRET_CONFIG", "LEAN_OWNER", "LEAN_EXIT_MARKER", "LEAN_AIRFLOW_LAUNCHER_CONFIG"}
# airflow-init's last command: Airflow's entrypoint (migrations, admin user), then `airflow pools set`.
INIT_ENTRYPOINT = (
    'exec /entrypoint airflow pools set "${LEAN_AIRFLOW_POOL}" "${LEAN_AIRFLOW_POOL_SLOTS}" "Lean runs at once"'
)


# --- Compose interpolation (compose-spec, interpolation.md) -------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


class MissingVariableError(Exception):
    """A ``${VAR:?message}`` / ``${VAR?message}`` whose variable is missing: compose refuses the file."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}")


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unclosed '${{' in {text!r}")


def _expand(body: str, env: Mapping[str, str]) -> str:
    match = _BRACED.fullmatch(body)
    if match is None:
        raise ValueError(f"invalid interpolation '${{{body}}}'")
    name, op, arg = match["name"], match["op"], match["arg"]
    is_set, value = name in env, env.get(name, "")
    non_empty = is_set and value != ""
    if op is None:
        return value
    if op in (":-", "-"):
        return value if (non_empty if op == ":-" else is_set) else interpolate_text(arg, env)
    if op in (":?", "?"):
        if not (non_empty if op == ":?" else is_set):
            raise MissingVariableError(name, interpolate_text(arg, env))
        return value
    return interpolate_text(arg, env) if (non_empty if op == ":+" else is_set) else ""


def interpolate_text(text: str, env: Mapping[str, str]) -> str:
    """One string as ``docker compose config`` resolves it: ``$VAR``, ``${VAR}``, ``${VAR:-d}``,
    ``${VAR-d}``, ``${VAR:?e}``, ``${VAR?e}``, ``${VAR:+r}``, ``${VAR+r}`` (nestable), ``$$``.

    An unset variable without a default becomes "" (compose warns); anything else after ``$`` is
    an error, as in compose.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            out.append(_expand(text[i + 2 : end], env))
            i = end + 1
        elif (name := _NAME.match(text, i + 1)) is not None:
            out.append(env.get(name[0], ""))
            i = name.end()
        else:
            raise ValueError(f"invalid '$' at {i} in {text!r} (write '$$' for a literal '$')")
    return "".join(out)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string value of a parsed compose file (keys are left alone, as compose does)."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return interpolate_text(value, env) if isinstance(value, str) else value


def referenced_variables(text: str) -> set[str]:
    """Names of the variables a compose text interpolates (``$$`` escapes excluded), defaults included."""
    found: set[str] = set()
    for match in re.finditer(r"\$(\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))", text):
        if match[1] != "$":
            found.add(match["braced"] or match["bare"])
    return found


# --- Loading -------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, but a repeated mapping key is an error (compose rejects those; PyYAML keeps the last)."""


def _no_duplicate_keys(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    # "<<" merge keys are left to construct_mapping, which lets explicit keys override merged ones.
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"]
    repeated = {key for key in keys if keys.count(key) > 1}
    if repeated:
        raise yaml.constructor.ConstructorError(None, None, f"repeated keys {sorted(repeated)}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def parse_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a compose ``.env`` file; ``#`` lines are comments, quotes are stripped."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and _NAME.fullmatch(name.strip()), f"not KEY=VALUE: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    loaded = yaml.load(COMPOSE.read_text(encoding="utf-8"), Loader=_StrictLoader)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    resolved = interpolate(raw, env_example)
    assert isinstance(resolved, dict)
    return resolved


def enabled_services(compose: Mapping[str, Any], *profiles: str) -> dict[str, Any]:
    """The services ``docker compose [--profile P ...] up`` starts: those without ``profiles`` and
    those with one of ``profiles`` (compose-spec, profiles.md)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }


def _mounts(service: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only) of a service's volumes, short or long syntax."""
    mounts: dict[str, tuple[str, bool]] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, target, read_only = volume["source"], volume["target"], bool(volume.get("read_only"))
        else:
            source, target, *mode = volume.split(":")
            read_only = mode == ["ro"]
        assert target not in mounts, f"{target} mounted twice"
        mounts[target] = (source, read_only)
    return mounts


# --- The interpolation helper itself ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A/x", "a/x"),
        ("${UNSET}", ""),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${A:-d}", "a"),
        ("${UNSET:-${A}/x}", "a/x"),
        ("${A:+r}", "r"),
        ("${EMPTY:+r}", ""),
        ("${EMPTY+r}", "r"),
        ("${EMPTY?e}", ""),
        ("$${HOSTNAME} costs $$5", "${HOSTNAME} costs $5"),
        ('{"k": "${A:?need A}/algorithms"}', '{"k": "a/algorithms"}'),
    ],
)
def test_interpolation_follows_compose(text: str, expected: str) -> None:
    assert interpolate_text(text, {"A": "a", "EMPTY": ""}) == expected


@pytest.mark.parametrize(
    ("text", "name"), [("${EMPTY:?e}", "EMPTY"), ("${UNSET?e}", "UNSET"), ("x${UNSET:?e}", "UNSET")]
)
def test_interpolation_refuses_a_missing_required_variable(text: str, name: str) -> None:
    with pytest.raises(MissingVariableError) as caught:
        interpolate_text(text, {"EMPTY": ""})
    assert caught.value.name == name


@pytest.mark.parametrize("text", ["${A", "${1A}", "${A:x}", "cost $5"])
def test_interpolation_refuses_what_compose_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        interpolate_text(text, {"A": "a"})


# --- Schema ----------------------------------------------------------------------------------


def _schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    declared = schema["$schema"]
    # The spec writes "https://json-schema.org/draft-07/schema"; jsonschema registers the
    # meta-schemas under their canonical "http://json-schema.org/draft-07/schema#".
    canonical = declared.replace("https://", "http://", 1).rstrip("#") + "#"
    cls = validator_for({"$schema": canonical}, default=None)
    assert cls is not None, f"jsonschema has no validator for the declared {declared!r}"
    assert cls.META_SCHEMA["$schema"].rstrip("#") == canonical.rstrip("#")
    cls.check_schema(schema)
    return cls(schema)


def test_the_stored_schema_is_the_pinned_one() -> None:
    import hashlib

    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256
    assert json.loads(SCHEMA.read_text(encoding="utf-8"))["title"] == "Compose Specification"


def test_valid_against_the_pinned_compose_spec(compose: dict[str, Any]) -> None:
    validator = _schema_validator()
    assert type(validator) is jsonschema.Draft7Validator  # what schema/compose-spec.json declares
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_the_validator_would_catch_a_broken_file(compose: dict[str, Any]) -> None:
    validator = _schema_validator()
    broken = {**compose, "services": {**compose["services"], "airflow-apiserver": {"ports": "8080", "typo": 1}}}
    messages = [error.message for error in validator.iter_errors(broken)]
    assert any("'typo' does not match any of the regexes" in message for message in messages), messages
    assert any("is not of type 'array'" in message for message in messages), messages


def test_a_repeated_key_is_refused() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="repeated keys"):
        yaml.load("services:\n  a: {image: x}\n  a: {image: y}\n", Loader=_StrictLoader)


def test_a_missing_secret_is_refused_with_its_name(raw: dict[str, Any], env_example: dict[str, str]) -> None:
    env = {k: v for k, v in env_example.items() if k != "AIRFLOW_JWT_SECRET"}
    with pytest.raises(MissingVariableError, match=r"set AIRFLOW_JWT_SECRET in \.env") as caught:
        interpolate(raw, env)
    assert caught.value.name == "AIRFLOW_JWT_SECRET"


# --- Services ----------------------------------------------------------------------------------


def test_services_executor_port_and_healthchecks(compose: dict[str, Any]) -> None:
    # `docker compose up` without a profile: the embedded default, LocalExecutor and no Celery.
    services = enabled_services(compose)
    assert set(services) == {*AIRFLOW_SERVICES, "postgres", "audit-db"}
    assert set(compose["services"]) - set(services) == set(CELERY_SERVICES)
    assert "8080:8080" in services["airflow-apiserver"]["ports"]
    assert "http://localhost:8080/api/v2/version" in services["airflow-apiserver"]["healthcheck"]["test"]
    assert compose["x-airflow-common"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
        assert env["LEAN_AIRFLOW_DB_URL"].startswith("postgresql+psycopg://lean:")
        assert env["LEAN_AIRFLOW_DB_URL"].endswith("@audit-db/lean_audit")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["audit-db"]["condition"] == "service_healthy"
        # Nothing in the default stack depends on the celery profile's redis (airflow-init waits for
        # the broker when the CeleryExecutor is chosen).
        assert "redis" not in services[name]["depends_on"]
    for name in LONG_RUNNING:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert services[name]["command"] == name.removeprefix("airflow-").replace("apiserver", "api-server")
        assert services[name]["healthcheck"]["test"], name
    # The scheduler runs the tasks, which report to the Task Execution API on the API server.
    assert services["airflow-scheduler"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    audit = services["audit-db"]["environment"]
    assert (audit["POSTGRES_USER"], audit["POSTGRES_DB"]) == ("lean", "lean_audit")


def test_airflow_services_share_the_common_anchor(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    common = compose["x-airflow-common"]
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in raw["x-airflow-common"]["environment"]
    for name in (*AIRFLOW_SERVICES, "airflow-worker"):
        service = compose["services"][name]
        assert service["image"] == common["image"] and service["build"] == common["build"], name
        for key, value in common["environment"].items():
            assert service["environment"].get(key) == value, (name, key)
        if name != "airflow-init":  # root, as in the official file, to create and chown folders
            assert service["user"] == common["user"]
    secrets = {compose["services"][name]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] for name in AIRFLOW_SERVICES}
    assert len(secrets) == 1 and secrets != {""}
    # Shared by reference: nothing else in the file sets the JWT secret.
    assert COMPOSE.read_text(encoding="utf-8").count("AIRFLOW__API_AUTH__JWT_SECRET:") == 1


def test_init_migrates_creates_the_admin_and_checks_folders(compose: dict[str, Any]) -> None:
    init = compose["services"]["airflow-init"]
    env, script = init["environment"], init["command"][-1]
    assert init["entrypoint"] == "/bin/bash" and init["user"] == "0:0"
    assert env["_AIRFLOW_DB_MIGRATE"] == env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_USERNAME"] and env["_AIRFLOW_WWW_USER_PASSWORD"]
    # Last: Airflow's entrypoint (migrations, admin user), then the pool that caps Lean runs.
    assert script.rstrip().endswith(INIT_ENTRYPOINT)
    assert env["LEAN_AIRFLOW_POOL"] == "lean" and int(env["LEAN_AIRFLOW_POOL_SLOTS"]) >= 1
    assert 'mkdir -p /opt/airflow/logs "${LEAN_AIRFLOW_ARTIFACT_ROOT}"' in script
    assert 'ls -A "${LEAN_AIRFLOW_DATA_FOLDER}"' in script
    assert "[[ -f /opt/airflow/project/algorithms/lean_trend_rotation.py ]]" in script
    # The data folder must hold what the Lean image reads at start (include/launch/data_folder.py).
    data_check = script.index('python -m include.launch.data_folder "${LEAN_AIRFLOW_DATA_FOLDER}"')
    # The audit DB is migrated once per deployment, after the checks and before Airflow starts.
    migrate = script.index("python -m include.cli db upgrade")
    assert data_check < migrate
    assert script.index("mkdir -p /opt/airflow/logs") < migrate < script.index(INIT_ENTRYPOINT)
    assert (REPO_ROOT / "algorithms" / "lean_trend_rotation.py").is_file()
    completed = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


def test_init_refuses_every_secret_placeholder(raw: dict[str, Any], env_example: dict[str, str]) -> None:
    """Each variable carrying a secret into Airflow is checked by airflow-init against "change-me"."""
    secret_vars = {name for name in env_example if is_secret_var(name)}
    init_env = raw["services"]["airflow-init"]["environment"]
    carriers = {key for key, value in init_env.items() if referenced_variables(str(value)) & secret_vars}
    script = raw["services"]["airflow-init"]["command"][-1]
    loop = re.search(r"for name in (.*?); do\s*\n\s*\[\[ \"\$\$\{!name\}\" != \*change-me\* \]\]", script, re.S)
    assert loop is not None
    assert set(loop[1].replace("\\", " ").split()) == carriers
    assert {"AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "LEAN_AIRFLOW_DB_URL"} <= carriers
    for name in secret_vars:
        assert env_example[name].startswith("change-me"), name


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({}, None),
        ({"AIRFLOW__API_AUTH__JWT_SECRET": "change-me-jwt-secret"}, "AIRFLOW__API_AUTH__JWT_SECRET still holds"),
        ({"LEAN_AIRFLOW_DB_URL": "postgresql+psycopg://lean:change-me@audit-db/x"}, "LEAN_AIRFLOW_DB_URL still holds"),
        ({"LEAN_AIRFLOW_ARTIFACT_ROOT": "relative/artifacts"}, "must be an absolute host path"),
        ({"LEAN_AIRFLOW_DATA_FOLDER": "{tmp}/missing"}, "is empty or missing on the host"),
        ({"remove": "market-hours/market-hours-database.json"}, "market-hours-database.json: missing"),
        ({"remove": "symbol-properties/symbol-properties-database.csv"}, "symbol-properties-database.csv: missing"),
        ({"algorithms": "{tmp}/empty"}, "LEAN_AIRFLOW_PROJECT_DIR does not point at this repo"),
        ({"LEAN_AIRFLOW_DB_URL": "postgresql+psycopg://lean:filled@127.0.0.1:9/x"}, "the audit DB migration failed"),
        # The CeleryExecutor needs the celery profile's broker (no service "redis" resolves here)...
        ({"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}, "AIRFLOW_EXECUTOR=CeleryExecutor needs the broker"),
        # ... and starts when it answers (this machine's Redis standing in for the service).
        ({"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "broker": "127.0.0.1"}, None),
    ],
)
def test_init_script_refuses_a_bad_env_before_migrating(
    compose: dict[str, Any], tmp_path: Path, change: dict[str, str], error: str | None
) -> None:
    """airflow-init's script, run by bash with its container paths moved under tmp_path. Its
    ``python`` is this interpreter (logged), so the audit DB migration runs for real, on SQLite."""
    import sys

    from include.audit.db import current_revision, head_revision

    init = compose["services"]["airflow-init"]
    calls = tmp_path / "python-calls.txt"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {sys.executable} "$@"\n')
    (tmp_path / "bin" / "python").chmod(0o755)
    # A data folder the Lean image starts on: its two databases (from the sample data) and the daily bars' folder.
    write_lean_databases(tmp_path / "data")
    (tmp_path / "data" / "equity" / "usa" / "daily").mkdir(parents=True)
    removed = change.get("remove")
    if removed is not None:
        (tmp_path / "data" / removed).unlink()
    (tmp_path / "algorithms").mkdir()
    (tmp_path / "algorithms" / "lean_trend_rotation.py").touch()
    (tmp_path / "empty").mkdir()
    change = {key: value.format(tmp=tmp_path) for key, value in change.items() if key != "remove"}
    broker = change.pop("broker", None)
    if broker is not None and services_unreachable() is not None:
        pytest.skip(f"needs this machine's Redis: {services_unreachable()}")
    script = (
        init["command"][-1]
        .replace("/dev/tcp/redis/6379", f"/dev/tcp/{broker or 'redis'}/6379")
        .replace("sleep 2", "sleep 0")  # the broker wait's pause
        .replace("/opt/airflow/project/algorithms", change.pop("algorithms", str(tmp_path / "algorithms")))
        .replace("/opt/airflow/logs", str(tmp_path / "logs"))
        .replace("chown -R", ": chown -R")
        .replace(INIT_ENTRYPOINT, "echo entrypoint reached")
    )
    env = {key: str(value) for key, value in init["environment"].items()}
    filled = "postgresql+psycopg2://airflow:filled@postgres/airflow"
    env |= {"AIRFLOW__API_AUTH__JWT_SECRET": "filled", "AIRFLOW__CORE__FERNET_KEY": "filled"}
    env |= {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": filled, "_AIRFLOW_WWW_USER_PASSWORD": "filled"}
    env |= {"AIRFLOW__CELERY__RESULT_BACKEND": f"db+{filled}"}
    audit_db = f"sqlite:///{tmp_path / 'audit.db'}"
    env |= {"LEAN_AIRFLOW_DB_URL": audit_db}
    env |= {
        "LEAN_AIRFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "LEAN_AIRFLOW_DATA_FOLDER": str(tmp_path / "data"),
    }
    # The image's PYTHONPATH names the project (mounted there); here it is this checkout.
    env |= {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)} | change
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=False, timeout=120)
    python_calls = calls.read_text().splitlines() if calls.exists() else []
    migrated = [call for call in python_calls if call.startswith("-m include.cli ")]
    if error is None:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("entrypoint reached")
        assert (tmp_path / "artifacts").is_dir() and (tmp_path / "logs").is_dir()
        assert python_calls == [f"-m include.launch.data_folder {tmp_path / 'data'}", "-m include.cli db upgrade"]
        assert current_revision(audit_db) == head_revision() is not None
    else:
        assert done.returncode == 1 and "entrypoint reached" not in done.stdout
        assert error in done.stderr, done.stderr
        if removed is not None:  # the data-folder check names the file and the variable
            assert "LEAN_AIRFLOW_DATA_FOLDER=" in done.stderr and "is not a Lean data folder" in done.stderr
        # A bad env is refused before anything is migrated; a failed migration stops the start.
        assert migrated == (["-m include.cli db upgrade"] if "migration failed" in error else [])


# --- The celery profile ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def celery(raw: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    """The file as `docker compose --profile celery up` with AIRFLOW_EXECUTOR=CeleryExecutor sees it."""
    resolved = interpolate(raw, {**env_example, "AIRFLOW_EXECUTOR": "CeleryExecutor"})
    assert isinstance(resolved, dict)
    return resolved


def test_the_celery_profile_adds_the_broker_and_the_workers(compose: dict[str, Any], celery: dict[str, Any]) -> None:
    services = enabled_services(celery, CELERY_PROFILE)
    assert set(services) == set(enabled_services(compose)) | set(CELERY_SERVICES)
    for name in CELERY_SERVICES:
        assert services[name]["profiles"] == [CELERY_PROFILE], name
    redis = services["redis"]
    # As in the official file: the BSD-licensed 7.2, on the compose network only (not published).
    assert redis["image"] == "redis:7.2-bookworm"
    assert "ports" not in redis and redis["expose"] == [6379]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in (*AIRFLOW_SERVICES, "airflow-worker"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
        # Celery's results go to Airflow's own metadata DB (same server, user, password, database).
        backend, metadata = env["AIRFLOW__CELERY__RESULT_BACKEND"], env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert backend.startswith("db+postgresql") and backend.removeprefix("db+") == metadata


def test_the_worker_scales_and_takes_the_lean_queue(celery: dict[str, Any], env_example: dict[str, str]) -> None:
    worker = celery["services"]["airflow-worker"]
    # `--scale airflow-worker=N` needs replicas that differ: no fixed name, hostname or host port.
    assert {"container_name", "hostname", "ports"}.isdisjoint(worker)
    bash, flag, script = worker["command"]
    assert (bash, flag) == ("bash", "-c")
    assert script.rstrip().endswith('exec airflow celery worker --queues "default,lean"')
    assert env_example["LEAN_AIRFLOW_LEAN_QUEUE"] == worker["environment"]["LEAN_AIRFLOW_LEAN_QUEUE"] == "lean"
    assert worker["environment"]["LEAN_AIRFLOW_POOL"] == "lean"
    # The official file's health check: the worker answers a Celery ping under its own node name.
    ping = worker["healthcheck"]["test"]
    assert ping[0] == "CMD-SHELL"
    assert ping[1] == (
        'celery --app airflow.providers.celery.executors.celery_executor.app inspect ping -d "celery@${HOSTNAME}"'
    )
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"  # a warm shutdown: SIGTERM to Celery alone
    assert worker["restart"] == "always"
    depends = worker["depends_on"]
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    assert depends["airflow-apiserver"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == depends["audit-db"]["condition"] == "service_healthy"
    # Tasks run here, Lean containers included: the scheduler's mounts, socket and docker group.
    scheduler = celery["services"]["airflow-scheduler"]
    assert _mounts(worker) == _mounts(scheduler) and DOCKER_SOCKET in _mounts(worker)
    assert worker["group_add"] == scheduler["group_add"] == [env_example["DOCKER_GID"]]


@pytest.mark.parametrize(
    ("env", "queues"),
    [
        ({}, "default,lean"),
        ({"LEAN_AIRFLOW_LEAN_QUEUE": "lean-big"}, "default,lean-big"),
        # A host without Docker or the Lean data takes everything but the Lean runs.
        ({"AIRFLOW_WORKER_QUEUES": "default"}, "default"),
    ],
)
def test_worker_queues_follow_the_lean_queue(
    raw: dict[str, Any], env_example: dict[str, str], env: dict[str, str], queues: str
) -> None:
    resolved = interpolate(raw, {**env_example, "AIRFLOW_EXECUTOR": "CeleryExecutor", **env})
    script = resolved["services"]["airflow-worker"]["command"][-1]
    assert script.rstrip().endswith(f'--queues "{queues}"')
    lean_queue = resolved["x-airflow-common"]["environment"]["LEAN_AIRFLOW_LEAN_QUEUE"]
    assert (lean_queue in queues.split(",")) == ("AIRFLOW_WORKER_QUEUES" not in env)


@pytest.mark.parametrize(("executor", "starts"), [("CeleryExecutor", True), ("LocalExecutor", False)])
def test_the_worker_refuses_to_start_without_the_celery_executor(
    compose: dict[str, Any], tmp_path: Path, executor: str, starts: bool
) -> None:
    """The worker's command, run by bash with ``airflow`` standing in: a worker beside a LocalExecutor
    scheduler would sit idle while the scheduler runs every task itself."""
    (tmp_path / "airflow").write_text('#!/bin/sh\necho "airflow $*"\n')
    (tmp_path / "airflow").chmod(0o755)
    script = compose["services"]["airflow-worker"]["command"][-1]
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "AIRFLOW__CORE__EXECUTOR": executor}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=False, timeout=30)
    if starts:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "airflow celery worker --queues default,lean"
    else:
        assert done.returncode == 1 and done.stdout == ""
        assert "airflow-worker needs AIRFLOW_EXECUTOR=CeleryExecutor" in done.stderr


@pytest.mark.parametrize("store", ["", "s3://lean-bucket/artifacts", "file:///shared/lean-artifacts"])
def test_the_artifact_store_reaches_every_airflow_service(
    raw: dict[str, Any], env_example: dict[str, str], store: str
) -> None:
    assert env_example["LEAN_AIRFLOW_ARTIFACT_STORE"] == ""  # the embedded default: the artifact root
    env = {**env_example, "AIRFLOW_EXECUTOR": "CeleryExecutor", "LEAN_AIRFLOW_ARTIFACT_STORE": store}
    env["LEAN_AIRFLOW_ARTIFACT_CONN_ID"] = "aws_default" if store.startswith("s3") else ""
    resolved = interpolate(raw, env)
    for name in (*AIRFLOW_SERVICES, "airflow-worker"):
        service_env = resolved["services"][name]["environment"]
        assert service_env["LEAN_AIRFLOW_ARTIFACT_STORE"] == store, name
        assert service_env["LEAN_AIRFLOW_ARTIFACT_CONN_ID"] == env["LEAN_AIRFLOW_ARTIFACT_CONN_ID"], name


def test_the_official_compose_layout_is_kept_for_celery(raw: dict[str, Any]) -> None:
    """Names of the official file (airflow-core/docs/howto/docker-compose/docker-compose.yaml):
    the services, the executor's settings in the common environment, the worker's command."""
    common = raw["x-airflow-common"]["environment"]
    assert {"AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"} <= set(common)
    assert "celery worker" in raw["services"]["airflow-worker"]["command"][-1]
    text = COMPOSE.read_text(encoding="utf-8")
    assert "docker compose --profile celery up -d --scale airflow-worker=" in text


# --- Mounts --------------------------------------------------------------------------------------


def test_docker_socket_and_same_path_mounts(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    scheduler = compose["services"]["airflow-scheduler"]
    assert _mounts(scheduler)[DOCKER_SOCKET] == (DOCKER_SOCKET, False)
    assert scheduler["group_add"] == [env_example["DOCKER_GID"]]
    root, data = env_example["LEAN_AIRFLOW_ARTIFACT_ROOT"], env_example["LEAN_AIRFLOW_DATA_FOLDER"]
    assert root.startswith("/") and data.startswith("/")
    common_mounts = _mounts(compose["x-airflow-common"])
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        mounts = _mounts(service)
        assert mounts[root] == (root, False), name
        assert mounts[data] == (data, True), name
        assert service["environment"]["LEAN_AIRFLOW_ARTIFACT_ROOT"] == root
        assert service["environment"]["LEAN_AIRFLOW_DATA_FOLDER"] == data
        # The scheduler repeats the common list and adds only the socket.
        assert {k: v for k, v in mounts.items() if k != DOCKER_SOCKET} == common_mounts, name
        assert (DOCKER_SOCKET in mounts) == (name == "airflow-scheduler")


def test_dags_plugins_and_project_are_where_airflow_and_python_look(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        mounts = _mounts(compose["services"][name])
        assert mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]][0] == "./dags"
        assert mounts[env["AIRFLOW__CORE__PLUGINS_FOLDER"]][0] == "./plugins"
        project, *rest = env["PYTHONPATH"].split(":")
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] in rest  # lean_airflow imports from the task runner
        assert mounts[f"{project}/include"][0] == "./include"
        assert mounts[f"{project}/algorithms"] == (f"{env_example['LEAN_AIRFLOW_PROJECT_DIR']}/algorithms", True)
        # include/run_folder.py derives REPO_ROOT (and so ALGORITHM_PATH) from its own location.
        assert Path(f"{project}/include/run_folder.py").parents[1] == Path(project)
        assert not any(source in ("./logs", "logs") for source, _ in mounts.values())  # no logs/ in the repo


def test_every_bind_source_the_operator_hands_the_daemon_is_a_host_path(
    compose: dict[str, Any], env_example: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real container_spec, fed the paths Airflow sees in the scheduler, gives the daemon host paths."""
    from include.launch.config import LeanJob
    from include.launch.docker import container_spec, host_path_map_from_env
    from include.run_folder import RunFolder, RunRef

    env = compose["services"]["airflow-scheduler"]["environment"]
    project = env["PYTHONPATH"].split(":")[0]
    monkeypatch.setenv("LEAN_AIRFLOW_HOST_PATH_MAP", env["LEAN_AIRFLOW_HOST_PATH_MAP"])
    # Every input a run can bind, the optional initial state included (it exists when an account continues).
    monkeypatch.setattr(
        RunFolder, "input_files", property(lambda f: (f.intent_path, f.params_path, f.initial_state_path))
    )
    folder = RunFolder.locate(RunRef("lean_backtest_daily", "20240105"), root=env["LEAN_AIRFLOW_ARTIFACT_ROOT"])
    assert folder.path == Path(env["LEAN_AIRFLOW_ARTIFACT_ROOT"]) / "lean_backtest_daily" / "20240105"
    job = LeanJob(
        folder=folder,
        mode="backtest",
        algorithm_path=Path(project) / "algorithms" / "lean_trend_rotation.py",
        data_folder=Path(env["LEAN_AIRFLOW_DATA_FOLDER"]),
    )
    spec = container_spec(job, image=LEAN_DIGEST, host_path_map=host_path_map_from_env())
    assert len(spec.mounts) == 8  # algorithms, data, results, storage, config, intent, params, initial state
    host_roots = {
        env_example["LEAN_AIRFLOW_ARTIFACT_ROOT"],
        env_example["LEAN_AIRFLOW_DATA_FOLDER"],
        f"{env_example['LEAN_AIRFLOW_PROJECT_DIR']}/algorithms",
    }
    sources = {mount["Target"]: mount["Source"] for mount in spec.mounts}
    for source in sources.values():
        assert any(source == root or source.startswith(root + "/") for root in host_roots), source
    algorithms_mount = _mounts(compose["services"]["airflow-scheduler"])[f"{project}/algorithms"][0]
    assert sources["/LeanCLI"] == algorithms_mount


# --- Variables -----------------------------------------------------------------------------------


def _code_env_vars() -> set[str]:
    """Every ``LEAN_*`` / ``LEAN_AIRFLOW_*`` string constant in include/, plugins/ and dags/."""
    found: set[str] = set()
    for folder in ("include", "plugins", "dags"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                value = node.value if isinstance(node, ast.Constant) else None
                if isinstance(value, str) and re.fullmatch(r"LEAN_[A-Z][A-Z0-9_]*", value):
                    found.add(value)
    return found


def test_every_variable_the_code_reads_is_set_for_airflow_and_documented(
    raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    found = _code_env_vars()
    assert found >= NOT_DEPLOYMENT_VARS  # the exception list does not outlive the code
    needed = found - NOT_DEPLOYMENT_VARS
    assert {
        "LEAN_IMAGE",
        "LEAN_AIRFLOW_ARTIFACT_ROOT",
        "LEAN_AIRFLOW_DATA_FOLDER",
        "LEAN_AIRFLOW_DB_URL",
        "LEAN_AIRFLOW_HOST_PATH_MAP",
        "LEAN_AIRFLOW_RUNTIME",
        "LEAN_AIRFLOW_BROKER_CONN_ID",
        "LEAN_AIRFLOW_REPORT_BASE_URL",
    } <= needed
    assert needed <= set(raw["x-airflow-common"]["environment"]), needed - set(raw["x-airflow-common"]["environment"])
    for name in AIRFLOW_SERVICES:
        assert needed <= set(compose["services"][name]["environment"]), name
    # Documented in .env.example: as a variable there, or (when compose derives it from others,
    # like LEAN_AIRFLOW_DB_URL) by name in the comment of the variable it is built from.
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in needed:
        assert re.search(rf"\b{name}\b", text), name
        if not re.search(rf"^{name}=", text, re.M):
            assert referenced_variables(str(raw["x-airflow-common"]["environment"][name])), name


def test_env_example_documents_exactly_the_compose_variables(env_example: dict[str, str]) -> None:
    used = referenced_variables(COMPOSE.read_text(encoding="utf-8"))
    assert used == set(env_example), {"undocumented": used - set(env_example), "unused": set(env_example) - used}
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for name in env_example:  # each with a comment right above it
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}="))
        assert lines[index - 1].startswith("# "), name


def test_readme_configuration_reference_lists_every_env_variable(env_example: dict[str, str]) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    first_cells = "\n".join(re.findall(r"^\|([^|\n]*)\|", section, re.M))
    rows = set(re.findall(r"`([A-Z_][A-Z0-9_]*)`", first_cells))
    assert set(env_example) <= rows, set(env_example) - rows


def test_lean_image_is_set_once_and_only_a_digest_is_accepted(
    raw: dict[str, Any], env_example: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from include.errors import LeanConfigError
    from include.launch.docker import IMAGE_DIGEST_RE, resolve_image

    assert len(re.findall(r"^\s+LEAN_IMAGE:", COMPOSE.read_text(encoding="utf-8"), re.M)) == 1
    assert "LEAN_IMAGE" in raw["x-airflow-common"]["environment"]
    example = env_example["LEAN_IMAGE"]
    assert example == "" or IMAGE_DIGEST_RE.fullmatch(example)  # no made-up digest to pull
    assert IMAGE_DIGEST_RE.fullmatch(LEAN_DIGEST) and not IMAGE_DIGEST_RE.fullmatch(LEAN_DIGEST + "\n")
    resolved = interpolate(raw, {**env_example, "LEAN_IMAGE": LEAN_DIGEST})
    for name in AIRFLOW_SERVICES:
        image = resolved["services"][name]["environment"]["LEAN_IMAGE"]
        assert image == LEAN_DIGEST
        monkeypatch.setenv("LEAN_IMAGE", image)
        assert resolve_image(None) == LEAN_DIGEST
    monkeypatch.setenv("LEAN_IMAGE", interpolate(raw, env_example)["x-airflow-common"]["environment"]["LEAN_IMAGE"])
    if not example:  # runtime="docker" without a digest fails, naming the variable
        with pytest.raises(LeanConfigError, match="LEAN_IMAGE"):
            resolve_image(None)
    assert env_example["LEAN_AIRFLOW_RUNTIME"] in ("local", "docker")


def _assert_runtime_requirements_cover_the_imports(requirements: set[str]) -> None:
    """Every third-party module the production code imports is installed by ``requirements``
    (directly or as a dependency); exchange_calendars only regenerates the stored calendar."""
    import importlib.metadata as metadata
    import sys

    from packaging.requirements import Requirement

    def key(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    installed: set[str] = set()
    todo = list(requirements)
    while todo:
        name = todo.pop()
        if key(name) in installed:
            continue
        installed.add(key(name))
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    ours = {"include", "algorithms", "lean_airflow", "AlgorithmImports", "execution_rules"}
    distributions = metadata.packages_distributions()
    for folder in ("include", "plugins", "dags", "algorithms"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for top in {m.split(".")[0] for m in modules} - ours - set(sys.stdlib_module_names):
                    where = f"{path.relative_to(REPO_ROOT)}:{node.lineno} imports {top}"
                    if top == "exchange_calendars":
                        function = parents.get(node)
                        while function is not None and not isinstance(function, ast.FunctionDef):
                            function = parents.get(function)
                        assert function is not None and function.name == "generate_calendar", where
                        continue
                    assert {key(d) for d in distributions.get(top, [])} & installed, where


def test_airflow_image_matches_the_pinned_version(raw: dict[str, Any]) -> None:
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO_ROOT / "requirements.txt").read_text(), re.M)
    assert pinned is not None
    build = raw["x-airflow-common"]["build"]
    assert build["context"] == "."
    dockerfile = REPO_ROOT / build["dockerfile"]
    text = dockerfile.read_text(encoding="utf-8")
    assert re.findall(r"^FROM (\S+)", text, re.M) == [f"apache/airflow:{pinned[1]}-python3.11"]
    copy = re.search(r"^COPY (.+) (\S+/)$", text, re.M)
    assert copy is not None
    sources, target = copy[1].split(), copy[2]
    assert sources == ["requirements.txt", ".ci/constraints.txt"]
    assert all((REPO_ROOT / source).is_file() for source in sources)
    # Only the run-time part of requirements.txt is installed: the lines above its tools marker.
    run = re.search(r"^RUN (sed '(/\^# -- test and quality tools/,\$d)' (\S+) > (\S+)) \\\n && (.+)$", text, re.M)
    assert run is not None, text
    assert (run[3], run[4]) == (f"{target}requirements.txt", f"{target}runtime.txt")
    assert run[5] == f"pip install --no-cache-dir -r {target}runtime.txt -c {target}constraints.txt"
    runtime = subprocess.run(
        ["sed", run[2], str(REPO_ROOT / "requirements.txt")], capture_output=True, text=True, check=True
    ).stdout
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)$", runtime, re.M))
    assert pins["apache-airflow"] == pinned[1] and "apache-airflow-providers-docker" in pins
    tools = {"pytest", "hypothesis", "ruff", "mypy", "quantconnect-stubs", "playwright", "exchange-calendars"}
    assert not tools & set(pins), tools & set(pins)
    _assert_runtime_requirements_cover_the_imports(set(pins))
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE.read_text(encoding="utf-8")
    # The Dockerfile's own ignore file keeps the context to what it copies (.venv/, .git/, .env out).
    ignore = Path(f"{dockerfile}.dockerignore").read_text(encoding="utf-8").split("\n")
    patterns = [line for line in ignore if line and not line.startswith("#")]
    assert patterns == ["*", *(f"!{source}" for source in sources)]


def test_no_secret_is_committed(raw: dict[str, Any], env_example: dict[str, str]) -> None:
    secret_var = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*):\?[^}]+\}$")
    envs = [raw["x-airflow-common"]["environment"]]
    envs += [service.get("environment", {}) for service in raw["services"].values()]
    checked = 0
    for env in envs:
        for key, value in env.items():
            if is_secret_var(key):
                match = secret_var.match(str(value))
                assert match and any(w in match["name"] for w in SECRET_WORDS), (key, value)
                checked += 1
            for password in re.findall(r"://[^:/@\s]+:(\$\{[^}]*\}|[^@\s]+)@", str(value)):  # user:password@ in URLs
                match = secret_var.match(password)
                assert match and "PASSWORD" in match["name"], (key, value)
                checked += 1
    assert checked >= 7  # 2 POSTGRES_PASSWORD, fernet, JWT, admin, 2 DB URLs
    for name, value in env_example.items():
        if is_secret_var(name):
            assert value.startswith("change-me"), name
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert tracked.returncode == 0 and tracked.stdout.strip() == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO_ROOT, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"
