"""Run folders on an artifact store (``include.artifact_store``): the embedded default in place, a ``file://``
store staged into scratch folders, incremental uploads, removals, confinement, and the whole chain with
consecutive steps on different scratch roots (as two Celery workers run them)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from include.artifact_store import (
    ARTIFACT_STORE_ENV,
    ArtifactStore,
    parse_store_uri,
    run_uris,
    staged_new_run,
    staged_run,
    time_staging,
)
from include.errors import ArtifactPathError, ArtifactStoreError, RunFolderError
from include.pipeline import (
    resolve_run,
    task_check,
    task_ingest,
    task_run_lean,
    task_snapshot,
    task_write_intent,
    task_write_params,
)
from include.run_folder import ARTIFACT_ROOT_ENV, DEFAULT_DATA_FOLDER, RunFolder, RunRef

REF = RunRef("lean_backtest_range", "20210201_20210212")
OPTIONS = {"top_n": 2, "lookback_days": 10}


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A ``file://`` store and two scratch roots (scratch A is the current one), a SQLite audit DB."""
    paths = {"store": tmp_path / "store", "a": tmp_path / "scratch-a", "b": tmp_path / "scratch-b"}
    monkeypatch.setenv(ARTIFACT_STORE_ENV, paths["store"].as_uri())
    monkeypatch.setenv(ARTIFACT_ROOT_ENV, str(paths["a"]))
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("LEAN_AIRFLOW_RUNTIME", "local")
    return paths


def _use_scratch(monkeypatch: pytest.MonkeyPatch, paths: dict[str, Path], name: str) -> ArtifactStore:
    """Switch to scratch ``name`` and delete the other one: the next step finds nothing a previous step left."""
    other = "b" if name == "a" else "a"
    shutil.rmtree(paths[other], ignore_errors=True)
    monkeypatch.setenv(ARTIFACT_ROOT_ENV, str(paths[name]))
    return ArtifactStore.from_env()


# ---------------------------------------------------------------------------- the setting


def test_unset_store_is_the_artifact_root_in_place(chain_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ARTIFACT_STORE_ENV, raising=False)
    store = ArtifactStore.from_env()
    assert store.in_place and store.scratch_root == chain_env.resolve()
    assert store.run_uri(REF) == f"{chain_env.resolve().as_uri()}/lean_backtest_range/20210201_20210212"
    assert store.ref_of(store.run_uri(REF)) == REF
    assert store.ref_of(str(chain_env / "lean_backtest_range" / "20210201_20210212")) == REF
    # The same folder named as a file:// store is still the embedded default.
    monkeypatch.setenv(ARTIFACT_STORE_ENV, chain_env.resolve().as_uri())
    assert ArtifactStore.from_env().in_place


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("bucket/prefix", "no protocol"),
        ("nosuchproto://bucket/p", "unknown protocol 'nosuchproto'"),
        ("file://relative/path", "a file store needs an absolute path"),
        ("s3://", "no bucket or container"),
    ],
)
def test_a_bad_store_uri_is_a_named_error(value: str, problem: str) -> None:
    with pytest.raises(ArtifactStoreError, match=f"{ARTIFACT_STORE_ENV}=.*{problem}.*expected"):
        parse_store_uri(value)


def test_a_bad_store_setting_fails_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ARTIFACT_ROOT_ENV, str(tmp_path / "scratch"))
    monkeypatch.setenv(ARTIFACT_STORE_ENV, "artifacts/store")
    with pytest.raises(ArtifactStoreError, match="LEAN_AIRFLOW_ARTIFACT_STORE='artifacts/store': no protocol"):
        ArtifactStore.from_env()
    monkeypatch.setenv(ARTIFACT_STORE_ENV, (tmp_path / "scratch" / "inner").as_uri())
    with pytest.raises(ArtifactStoreError, match="contain one another"):
        ArtifactStore.from_env()


def test_uris_outside_the_store_are_refused(store_env: dict[str, Path]) -> None:
    store = ArtifactStore.from_env()
    assert store.ref_of(store.run_uri(REF)) == REF
    for outside in (
        "s3://other-bucket/lean_backtest_range/20210201_20210212",
        (store_env["store"].parent / "elsewhere" / "d" / "k").as_uri(),
        f"{store.uri}/lean_backtest_range/20210201_20210212/results",
        f"{store.uri}/../store2/lean_backtest_range/x",
        "/etc/passwd",
        "relative/dag/key",
    ):
        with pytest.raises(ArtifactPathError):
            store.ref_of(outside)
    with pytest.raises(ArtifactPathError):
        store.read_bytes((store_env["store"].parent / "secret.txt").as_uri())


# ---------------------------------------------------------------------------- staging


def test_staging_uploads_changes_only_and_propagates_removals(
    store_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore.from_env()
    with staged_new_run(REF, store=store) as folder:
        assert folder.path == store_env["a"].resolve() / REF.dag_id / REF.run_key
        (folder.path / "a.txt").write_text("one")
        (folder.path / "results").mkdir()
        (folder.path / "results" / "r.json").write_text("{}")
    stored = store_env["store"] / REF.dag_id / REF.run_key
    assert (stored / "a.txt").read_text() == "one" and (stored / "results" / "r.json").read_text() == "{}"
    assert not list(stored.rglob("*lean-airflow-upload*"))  # no temp key left behind

    store_b = _use_scratch(monkeypatch, store_env, "b")
    with staged_run(store.run_uri(REF), store=store_b) as folder:
        assert folder.path.is_relative_to(store_env["b"].resolve())
        assert (folder.path / "a.txt").read_text() == "one"
        (folder.path / "results" / "r.json").unlink()
        (folder.path / "b.txt").write_text("two")
        written = store_b.upload_run(folder)
        assert written == [f"{store.run_uri(REF)}/b.txt"]  # a.txt is unchanged: not sent again
        assert store_b.upload_run(folder) == []
    assert not (stored / "results" / "r.json").exists() and (stored / "b.txt").read_text() == "two"

    # A stale scratch copy is brought back in line with the store (a file the store lost is removed).
    (stored / "b.txt").unlink()
    with staged_run(store.run_uri(REF), store=store_b) as folder:
        assert not (folder.path / "b.txt").exists()
    assert set(time_staging(store.run_uri(REF), store=store_b)) == {"download_s", "upload_s"}


def test_a_step_that_raises_still_uploads(store_env: dict[str, Path]) -> None:
    store = ArtifactStore.from_env()
    with pytest.raises(RuntimeError), staged_new_run(REF, store=store) as folder:
        (folder.path / "log.txt").write_text("what went wrong")
        raise RuntimeError("the step failed")
    assert (store_env["store"] / REF.dag_id / REF.run_key / "log.txt").read_text() == "what went wrong"


def test_staging_a_run_the_store_lacks_is_a_run_folder_error(store_env: dict[str, Path]) -> None:
    store = ArtifactStore.from_env()
    with pytest.raises(RunFolderError, match="no run folder in the artifact store"), staged_run(store.run_uri(REF)):
        pass


def test_run_uris_are_store_uris(store_env: dict[str, Path]) -> None:
    store = ArtifactStore.from_env()
    folder = store.download_run(REF)
    uris = run_uris(store, folder, intent=folder.intent_path)
    assert uris == {"run_dir": store.run_uri(REF), "intent": f"{store.run_uri(REF)}/{folder.intent_path.name}"}
    assert all(uri.startswith(store_env["store"].as_uri()) for uri in uris.values())


def test_run_folder_open_takes_a_file_uri(chain_env: Path) -> None:
    folder = RunFolder.create(REF, root=chain_env)
    assert RunFolder.open(folder.path.as_uri(), root=chain_env) == folder
    with pytest.raises(ArtifactPathError, match="staged first"):
        RunFolder.open("s3://bucket/lean_backtest_range/20210201_20210212")


# ---------------------------------------------------------------------------- the chain across scratch roots


def _assert_store_uris(uris: dict[str, str], store: ArtifactStore) -> None:
    assert uris["run_dir"] == store.run_uri(REF)
    assert all(value.startswith(store.uri + "/") for value in uris.values()), uris


@pytest.mark.slow
def test_chain_with_each_step_on_another_scratch_root(
    store_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, dates = resolve_run(
        dag_id=REF.dag_id,
        kind="range",
        run_type="manual",
        interval_session=None,
        params={"start_date": "2021-02-01", "end_date": "2021-02-12"},
    )
    assert ref == REF
    store = _use_scratch(monkeypatch, store_env, "a")
    out = task_snapshot(ref, dates, provider="trend_rotation", options=OPTIONS, data_folder=DEFAULT_DATA_FOLDER)
    _assert_store_uris(out, store)
    store = _use_scratch(monkeypatch, store_env, "b")
    out = task_write_intent(out["run_dir"])
    _assert_store_uris(out, store)
    store = _use_scratch(monkeypatch, store_env, "a")
    out = task_write_params(out["run_dir"], None, mode="backtest", continuous=False)
    _assert_store_uris(out, store)
    store = _use_scratch(monkeypatch, store_env, "b")
    results = task_run_lean(
        out["run_dir"], mode="backtest", parameters={"starting-cash": 100_000.0}, data_folder=DEFAULT_DATA_FOLDER
    )
    assert results == f"{store.run_uri(REF)}/results"
    store = _use_scratch(monkeypatch, store_env, "a")
    out, summary = task_ingest(out["run_dir"])
    _assert_store_uris(out, store)
    assert summary["inserted"] > 0
    store = _use_scratch(monkeypatch, store_env, "b")
    out, checked = task_check(out["run_dir"])
    _assert_store_uris(out, store)
    assert checked["verdict"] == "pass", checked

    stored = store_env["store"] / REF.dag_id / REF.run_key
    for name in ("manifest.json", "report.json", "report.html", "config.json", "engine.json"):
        assert (stored / name).is_file(), name
    assert (stored / "results" / f"{REF.run_key}-order-events.json").is_file()
    assert json.loads((stored / "report.json").read_text())["verdict"] == "pass"
    manifest = json.loads((stored / "manifest.json").read_text())
    assert set(manifest["files"]) >= {"snapshot", "intent", "params", "config"}
    for role, digest in manifest["files"].items():
        if role == "algorithm":
            continue
        data = store.read_bytes(f"{store.run_uri(REF)}/{digest['path']}")
        assert (
            hashlib.sha256(data).hexdigest()
            == digest["sha256"]
            == store.sha256(f"{store.run_uri(REF)}/{digest['path']}")
        ), role
        assert digest["size"] == len(data)


@pytest.mark.slow
def test_continued_account_reads_the_previous_run_from_the_store(
    store_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Daily runs: the previous session's final state comes from the store, not from this worker's scratch."""
    dag_id = "lean_backtest_daily"
    days = [dt.date(2021, 2, 1), dt.date(2021, 2, 2)]
    uris: list[str] = []
    for index, day in enumerate(days):
        store = _use_scratch(monkeypatch, store_env, "ab"[index % 2])
        ref = RunRef.for_date(dag_id, day)
        out = task_snapshot(ref, [day], provider="trend_rotation", options=OPTIONS, data_folder=DEFAULT_DATA_FOLDER)
        out = task_write_intent(out["run_dir"])
        out = task_write_params(out["run_dir"], None, mode="backtest", continuous=True)
        task_run_lean(
            out["run_dir"], mode="backtest", parameters={"starting-cash": 100_000.0}, data_folder=DEFAULT_DATA_FOLDER
        )
        uris.append(out["run_dir"])
    stored = store_env["store"] / dag_id
    assert not (stored / "20210201" / "initial_state.json").exists()
    carried = json.loads((stored / "20210202" / "initial_state.json").read_text())
    final = json.loads((stored / "20210201" / "results" / "final-state.json").read_text())
    assert carried["holdings"].keys() == final["holdings"].keys()
    assert uris[1] == store.run_uri(RunRef(dag_id, "20210202"))


def test_staging_through_an_object_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same staging on a store with no local path (fsspec's in-memory store stands in for s3/gs/abfs):
    one put per object, listings by prefix, the run's folders as directories of the store."""
    import uuid

    import upath

    monkeypatch.setenv(ARTIFACT_ROOT_ENV, str(tmp_path / "scratch-a"))
    bucket = f"memory://lean-{uuid.uuid4().hex}/artifacts"
    store = ArtifactStore.from_env(upath.UPath(bucket))
    assert not store.in_place and store.uri == bucket
    with staged_new_run(REF, store=store) as folder:
        (folder.path / "results").mkdir()
        (folder.path / "results" / "r.json").write_text("{}")
        (folder.path / "config.json").write_text("{}")
    assert store.list_dirs() == [REF.dag_id] and store.list_dirs(REF.dag_id) == [REF.run_key]
    assert store.read_bytes(f"{store.run_uri(REF)}/results/r.json") == b"{}"
    assert store.sha256(f"{store.run_uri(REF)}/config.json") == hashlib.sha256(b"{}").hexdigest()

    monkeypatch.setenv(ARTIFACT_ROOT_ENV, str(tmp_path / "scratch-b"))
    store_b = ArtifactStore.from_env(upath.UPath(bucket))
    with staged_run(store.run_uri(REF), store=store_b) as folder:
        assert (folder.path / "results" / "r.json").read_text() == "{}"
        (folder.path / "config.json").unlink()
        (folder.path / "report.json").write_text('{"verdict": "pass"}')
    assert sorted(store.list_files(str(REF))) == ["report.json", "results/r.json"]
    with pytest.raises(ArtifactPathError):
        store.ref_of(f"memory://other/artifacts/{REF}")

    cache = tmp_path / "ui-cache"
    assert store.cache_run_summaries(cache) == [REF]
    assert sorted(p.name for p in (cache / REF.dag_id / REF.run_key).iterdir()) == ["report.json"]
    cached = store.cache_run(REF, cache)
    assert cached is not None and (cached.path / "results" / "r.json").is_file()


def test_a_live_deployments_object_store_is_staged_down_and_back(
    store_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``<dag>/_deployments/<account>/storage`` persists across runs: each run stages it beside its run folder."""
    live = RunRef("lean_live_rebalance", "20210301")
    store = ArtifactStore.from_env()
    with staged_new_run(live, store=store) as folder, store.staged_deployment_storage(folder, "paper") as storage:
        assert storage == folder.deployment_storage_dir("paper")
        (storage / "state.json").write_text('{"day": 1}')
    stored = store_env["store"] / live.dag_id / "_deployments" / "paper" / "storage" / "state.json"
    assert stored.read_text() == '{"day": 1}'

    store_b = _use_scratch(monkeypatch, store_env, "b")
    nxt = RunRef("lean_live_rebalance", "20210302")
    with staged_new_run(nxt, store=store_b) as folder, store_b.staged_deployment_storage(folder, "paper") as storage:
        assert (storage / "state.json").read_text() == '{"day": 1}'
        (storage / "state.json").write_text('{"day": 2}')
        (storage / "more.bin").write_bytes(b"\0")
    assert stored.read_text() == '{"day": 2}' and (stored.parent / "more.bin").exists()
    # The deployment is not a run: the store's run listing leaves it out.
    assert "_deployments" in store.list_dirs(live.dag_id)
    assert [ref.run_key for ref in store.cache_run_summaries(store_env["a"] / ".ui-cache")] == []


def test_manifest_digests_are_the_stores_bytes(store_env: dict[str, Path]) -> None:
    from include.audit.manifest import _run_file_digest

    store = ArtifactStore.from_env()
    with staged_new_run(REF, store=store) as folder:
        folder.intent_path.write_text('{"x": 1}')
    with staged_run(store.run_uri(REF), store=store) as folder:
        digest = _run_file_digest(folder, folder.intent_path)
        assert (digest.path, digest.sha256, digest.size) == (
            folder.intent_path.name,
            hashlib.sha256(b'{"x": 1}').hexdigest(),
            8,
        )
        folder.intent_path.write_text('{"x": 2}')  # changed here, not (yet) in the store
        with pytest.raises(RunFolderError, match="differs from the artifact store"):
            _run_file_digest(folder, folder.intent_path)
        folder.params_path.write_text("{}")
        with pytest.raises(RunFolderError, match="never uploaded"):
            _run_file_digest(folder, folder.params_path)


def test_a_folder_that_is_not_a_run_is_staged_too(store_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from include.artifact_store import staged_dir

    with staged_dir("lean_backtest_sweep/_sweeps/abcd1234") as local:
        (local / "comparison.json").write_text("[]")
    stored = store_env["store"] / "lean_backtest_sweep" / "_sweeps" / "abcd1234" / "comparison.json"
    assert stored.read_text() == "[]"
    _use_scratch(monkeypatch, store_env, "b")
    with staged_dir("lean_backtest_sweep/_sweeps/abcd1234", upload=False) as local:
        assert (local / "comparison.json").read_text() == "[]"
    with pytest.raises(ArtifactPathError), staged_dir("../outside"):
        pass
