"""The compose deployment names and mounts the file provider's weights folder (LEAN_AIRFLOW_WEIGHTS_DIRS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.snapshots import WEIGHTS_DIRS_ENV, weights_dirs
from tests.test_docker_compose import AIRFLOW_SERVICES, COMPOSE, ENV_EXAMPLE, _mounts, interpolate, parse_env_file


def test_every_airflow_service_reads_weights_from_the_project_weights_folder_mounted_read_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml

    env = parse_env_file(ENV_EXAMPLE)
    compose = interpolate(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), env)
    folder = f"{env['LEAN_AIRFLOW_PROJECT_DIR']}/weights"
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert service["environment"][WEIGHTS_DIRS_ENV] == folder, name
        # The same path inside and outside, read-only: the form takes the path a user sees on the host.
        assert _mounts(service)[folder] == (folder, True), name
        monkeypatch.setenv(WEIGHTS_DIRS_ENV, service["environment"][WEIGHTS_DIRS_ENV])
        assert weights_dirs() == (Path(folder),)
