"""Run folders on an object store: where every task of a run reads and writes, whichever worker runs it.

``$LEAN_AIRFLOW_ARTIFACT_STORE`` is the store's URI (``s3://bucket/lean``, ``gs://b/p``, ``abfs://c/p``,
``file:///shared/artifacts``). Unset or empty, the store *is* the local artifact root
(``$LEAN_AIRFLOW_ARTIFACT_ROOT``) and nothing is copied: the embedded default. With a store, the local
artifact root is the worker's scratch: a task downloads its run folder into
``<scratch>/<dag_id>/<run key>/``, works on the local files (Lean needs a real folder) and uploads what it
changed before it returns (:func:`staged_run`), so consecutive tasks may run on different hosts.

XCom carries store URIs only (``file:///...`` in the embedded default). A URI is confined to the store's
root (:meth:`ArtifactStore.ref_of`): a task never follows one elsewhere.

What was downloaded is recorded in ``<scratch>/.staging/<dag_id>/<run key>.json`` (sha256, size and
mtime of each file, the store's fingerprint of it): an upload sends only new or changed files and
removes from the store the files the step deleted; a download skips the files the scratch already holds.

Never imports Airflow: the plugins layer builds ``airflow.sdk.ObjectStoragePath(uri, conn_id=...)`` for
the store's credentials and passes it as ``root``; here a root is any UPath-like object (``.fs``,
``.path``, ``.protocol``, ``/``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from include.atomic_io import atomic_write_json
from include.errors import ArtifactPathError, ArtifactStoreError, RunFolderError
from include.run_folder import (
    ARTIFACT_ROOT_ENV,
    DEPLOYMENTS_DIR,
    RunFolder,
    RunRef,
    artifact_root,
    check_dag_id,
    check_run_key,
    confine,
)

log = logging.getLogger(__name__)

ARTIFACT_STORE_ENV = "LEAN_AIRFLOW_ARTIFACT_STORE"
ARTIFACT_CONN_ID_ENV = "LEAN_AIRFLOW_ARTIFACT_CONN_ID"
STAGING_DIR = ".staging"
# Marks a key being written (file:// stores write a temp key, then move it): never downloaded.
UPLOAD_TEMP_MARK = ".lean-airflow-upload-"
# What each protocol needs installed (fsspec names the package; Airflow's provider brings it).
PROTOCOL_PACKAGES = {
    "s3": "apache-airflow-providers-amazon (s3fs)",
    "s3a": "apache-airflow-providers-amazon (s3fs)",
    "gs": "apache-airflow-providers-google (gcsfs)",
    "gcs": "apache-airflow-providers-google (gcsfs)",
    "abfs": "apache-airflow-providers-microsoft-azure (adlfs)",
    "az": "apache-airflow-providers-microsoft-azure (adlfs)",
}
_LOCAL_PROTOCOLS = ("file", "local")
# Conclusions go up last, so a reader of the store never finds a report before the files it judges.
_CONCLUSIONS = ("manifest.json", "report.json", "report.html", "parity.json")
_CHUNK = 1 << 20
_URI_SHAPE = "a URI such as s3://bucket/prefix, gs://bucket/prefix, abfs://container/prefix or file:///absolute/path"


class StoreRoot(Protocol):
    """What a store root offers: a ``upath.UPath`` or an ``airflow.sdk.ObjectStoragePath``."""

    @property
    def fs(self) -> Any: ...

    @property
    def path(self) -> str: ...

    @property
    def protocol(self) -> str: ...

    def __truediv__(self, other: str) -> Any: ...


def _protocol(root: StoreRoot) -> str:
    protocol = root.protocol
    if isinstance(protocol, (tuple, list)):
        protocol = protocol[0] if protocol else "file"
    return str(protocol or "file")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(info: dict[str, Any]) -> str:
    """What identifies one version of a stored object, across protocols (size plus whichever of
    ETag, md5, mtime or creation time the store reports)."""
    parts = [str(info.get("size"))]
    for key in ("ETag", "etag", "md5Hash", "content_md5", "LastModified", "last_modified", "updated", "mtime"):
        if info.get(key) is not None:
            parts.append(f"{key}={info[key]}")
    if len(parts) == 1 and info.get("created") is not None:
        parts.append(f"created={info['created']}")
    return "|".join(parts)


def _check_relative(relative: str, where: str) -> str:
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ArtifactPathError(f"store key {relative!r} under {where} is not a plain relative path")
    return relative


def parse_store_uri(value: str, *, setting: str = ARTIFACT_STORE_ENV) -> str:
    """The store URI, checked: a known fsspec protocol, a ``file`` URI with an absolute path, the
    protocol's package installed. ``ArtifactStoreError`` names the setting and the shape expected."""
    from fsspec.registry import known_implementations, registry  # type: ignore[import-untyped]

    uri = value.strip()
    if "://" not in uri:
        raise ArtifactStoreError(setting, value, "no protocol", _URI_SHAPE)
    protocol, _, rest = uri.partition("://")
    protocol = protocol.lower()
    if protocol not in known_implementations and protocol not in registry:
        raise ArtifactStoreError(setting, value, f"unknown protocol {protocol!r}", _URI_SHAPE)
    if protocol in _LOCAL_PROTOCOLS:
        if not rest.startswith("/"):
            raise ArtifactStoreError(
                setting, value, "a file store needs an absolute path", "file:///absolute/path (three slashes)"
            )
    elif not rest.strip("/"):
        raise ArtifactStoreError(setting, value, "no bucket or container", _URI_SHAPE)
    try:
        from fsspec import get_filesystem_class  # type: ignore[import-untyped]

        get_filesystem_class(protocol)
    except ImportError as exc:
        package = PROTOCOL_PACKAGES.get(protocol, "the fsspec implementation of the protocol")
        raise ArtifactStoreError(
            setting, value, f"cannot open {protocol}:// here ({exc})", f"{package} installed"
        ) from None
    return uri.rstrip("/") if protocol not in _LOCAL_PROTOCOLS else uri.rstrip("/") or "file:///"


@dataclass(frozen=True)
class StagedFile:
    sha256: str
    size: int
    mtime_ns: int
    store: str  # the store's fingerprint of the object the local copy came from (or went to)


class ArtifactStore:
    """The shared home of the run folders; see the module docstring. Build it with :meth:`from_env`."""

    def __init__(self, root: StoreRoot, *, in_place: bool, scratch_root: Path) -> None:
        self.root = root
        self.in_place = in_place
        self.scratch_root = scratch_root
        self.protocol = _protocol(root)
        self.fs: Any = root.fs
        self._root_path = str(root.path).rstrip("/") or "/"
        # Canonical, without the connection id an ObjectStoragePath puts in its text (``s3://conn@bucket``):
        # what XCom carries names the object, not the credentials used to reach it.
        if self.protocol in _LOCAL_PROTOCOLS:
            self.uri = f"file://{self._root_path}".rstrip("/")
        else:
            self.uri = f"{self.protocol}://{self._root_path.lstrip('/')}"

    def __repr__(self) -> str:
        return f"ArtifactStore({self.uri!r}, in_place={self.in_place})"

    @classmethod
    def from_env(cls, root: StoreRoot | None = None) -> ArtifactStore:
        """The store of ``$LEAN_AIRFLOW_ARTIFACT_STORE`` (or ``root``, the plugins' ObjectStoragePath);
        unset or empty: the embedded default, the local artifact root itself (``in_place``)."""
        import upath

        scratch = artifact_root()
        if root is None:
            raw = (os.environ.get(ARTIFACT_STORE_ENV) or "").strip()
            if not raw:
                return cls(upath.UPath(scratch.as_uri()), in_place=True, scratch_root=scratch)
            root = upath.UPath(parse_store_uri(raw))
        in_place = False
        if _protocol(root) in _LOCAL_PROTOCOLS:
            local = Path(str(root.path)).resolve()
            in_place = local == scratch
            if not in_place and (scratch in local.parents or local in scratch.parents):
                raise ArtifactStoreError(
                    ARTIFACT_STORE_ENV,
                    str(root),
                    f"the store and the scratch root {ARTIFACT_ROOT_ENV}={scratch} contain one another",
                    "separate folders (or the same folder, for no staging)",
                )
        return cls(root, in_place=in_place, scratch_root=scratch)

    # -- names

    def _key(self, relative: str) -> str:
        return f"{self._root_path.rstrip('/')}/{relative}"

    def _uri_of(self, relative: str) -> str:
        return f"{self.uri}/{relative}"

    def run_uri(self, ref: RunRef) -> str:
        """The run folder's URI in the store (``s3://b/p/<dag_id>/<run key>``, ``file:///.../<dag_id>/<run key>``)."""
        return self._uri_of(f"{ref.dag_id}/{ref.run_key}")

    def file_uri(self, folder: RunFolder, path: str | os.PathLike[str]) -> str:
        """The store URI of a file of ``folder`` (a local path inside it, or a path relative to it)."""
        candidate = Path(path)
        relative = candidate.relative_to(folder.path) if candidate.is_absolute() else candidate
        return f"{self.run_uri(folder.ref)}/{_check_relative(relative.as_posix(), str(folder.ref))}"

    def ref_of(self, uri_or_path: str | os.PathLike[str]) -> RunRef:
        """The run a run-folder URI (or a local path under the artifact root) names; ``ArtifactPathError``
        for anything outside the store's root or not exactly ``<dag_id>/<run key>`` below it."""
        text = os.fspath(uri_or_path).rstrip("/")
        if "://" in text:
            protocol = text.partition("://")[0].lower()
            if protocol == self.protocol and protocol not in _LOCAL_PROTOCOLS:
                key = str(self.fs._strip_protocol(text)).rstrip("/")
                base = self._root_path.rstrip("/")
                if not key.startswith(base + "/"):
                    raise ArtifactPathError(f"{text!r} is outside the artifact store {self.uri}")
                return self._ref_from_relative(key[len(base) + 1 :], text)
            if protocol not in _LOCAL_PROTOCOLS:
                raise ArtifactPathError(f"{text!r} is outside the artifact store {self.uri}")
            import upath

            text = str(upath.UPath(text).path)
        local = Path(text)
        if not local.is_absolute():
            raise ArtifactPathError(f"run folder {text!r} is neither a store URI nor an absolute path")
        bases = [self.scratch_root]
        if self.protocol in _LOCAL_PROTOCOLS:
            bases.insert(0, Path(self._root_path).resolve())
        for local_base in bases:
            try:
                resolved = confine(local, local_base)
            except ArtifactPathError:
                continue
            return self._ref_from_relative(resolved.relative_to(local_base).as_posix(), text)
        raise ArtifactPathError(f"{text!r} is outside the artifact store {self.uri} (and the local artifact root)")

    @staticmethod
    def _ref_from_relative(relative: str, shown: str) -> RunRef:
        parts = relative.split("/")
        if len(parts) != 2:
            raise ArtifactPathError(f"{shown!r} is not a run folder (<store>/<dag_id>/<run key>)")
        return RunRef(parts[0], parts[1])

    # -- reading

    def _local_key(self, uri: str) -> str:
        """The fs key of a store URI, confined to the store's root."""
        text = uri.rstrip("/")
        if "://" in text and text.partition("://")[0].lower() != self.protocol:
            raise ArtifactPathError(f"{uri!r} is outside the artifact store {self.uri}")
        key = str(self.fs._strip_protocol(text)).rstrip("/")
        base = self._root_path.rstrip("/")
        if not key.startswith(base + "/"):
            raise ArtifactPathError(f"{uri!r} is outside the artifact store {self.uri}")
        _check_relative(key[len(base) + 1 :], self.uri)
        return key

    def read_bytes(self, uri: str) -> bytes:
        return bytes(self.fs.cat_file(self._local_key(uri)))

    def sha256(self, uri: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open(self._local_key(uri), "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def exists(self, uri: str) -> bool:
        return bool(self.fs.exists(self._local_key(uri)))

    def list_files(self, relative_dir: str) -> dict[str, dict[str, Any]]:
        """The files under ``<root>/<relative_dir>``, by path relative to it, with the store's info."""
        base = self._key(_check_relative(relative_dir, self.uri))
        try:
            found = self.fs.find(base, detail=True, withdirs=False)
        except FileNotFoundError:
            return {}
        files: dict[str, dict[str, Any]] = {}
        for name, info in found.items():
            key = str(self.fs._strip_protocol(name))
            if not key.startswith(base + "/") or info.get("type", "file") != "file":
                continue
            relative = key[len(base) + 1 :]
            if UPLOAD_TEMP_MARK in PurePosixPath(relative).name:
                continue
            files[_check_relative(relative, base)] = dict(info)
        return files

    def list_dirs(self, relative_dir: str = "") -> list[str]:
        """The names of the folders directly under ``<root>/<relative_dir>`` (the store's root by default)."""
        base = self._key(_check_relative(relative_dir, self.uri)) if relative_dir else self._root_path
        try:
            entries = self.fs.ls(base, detail=True)
        except FileNotFoundError:
            return []
        names = []
        for info in entries:
            if info.get("type") == "directory":
                name = PurePosixPath(str(self.fs._strip_protocol(info["name"])).rstrip("/")).name
                if name and name != STAGING_DIR:
                    names.append(name)
        return sorted(names)

    def run_exists(self, ref: RunRef) -> bool:
        return bool(self.list_files(f"{ref.dag_id}/{ref.run_key}"))

    # -- staging

    def _state_path(self, scratch_root: Path, relative_dir: str) -> Path:
        return scratch_root / STAGING_DIR / f"{relative_dir}.json"

    @staticmethod
    def _read_state(path: Path, uri: str) -> dict[str, StagedFile]:
        """What was staged from ``uri`` into this scratch (nothing, when the scratch last mirrored another store)."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("store_uri") != uri:
                return {}
            return {name: StagedFile(**entry) for name, entry in raw["files"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    @staticmethod
    def _write_state(path: Path, uri: str, state: dict[str, StagedFile]) -> None:
        atomic_write_json(
            path,
            {
                "store_uri": uri,
                "files": {name: entry.__dict__ for name, entry in sorted(state.items())},
            },
        )

    def download_tree(
        self,
        relative_dir: str,
        local_dir: Path,
        scratch_root: Path,
        *,
        include: Callable[[str], bool] | None = None,
        listing: dict[str, dict[str, Any]] | None = None,
    ) -> list[str]:
        """Mirror ``<store>/<relative_dir>`` into ``local_dir``: fetch what the scratch does not already hold,
        delete local files the store does not have. Returns the relative paths fetched.

        ``include``: mirror only the relative paths it accepts (others are left as they are);
        ``listing``: the store's files of ``relative_dir`` when the caller has listed them already."""
        state_path = self._state_path(scratch_root, relative_dir)
        previous = self._read_state(state_path, self._uri_of(relative_dir))
        stored = listing if listing is not None else self.list_files(relative_dir)
        if include is not None:
            stored = {relative: info for relative, info in stored.items() if include(relative)}
        # What the filter leaves out stays as it was recorded (a partial mirror does not forget a full one).
        state = {name: entry for name, entry in previous.items() if include is not None and not include(name)}
        fetched: list[str] = []
        base = self._key(relative_dir)
        for relative, info in sorted(stored.items()):
            local = local_dir / relative
            fingerprint = _fingerprint(info)
            known = previous.get(relative)
            if known is not None and known.store == fingerprint and local.is_file() and not local.is_symlink():
                stat = local.stat()
                if stat.st_size == known.size and stat.st_mtime_ns == known.mtime_ns:
                    state[relative] = known
                    continue
            local.parent.mkdir(parents=True, exist_ok=True)
            confine(local.parent, local_dir)
            temp = local.with_name(f".{local.name}{UPLOAD_TEMP_MARK}{uuid.uuid4().hex}")
            try:
                self.fs.get_file(f"{base}/{relative}", str(temp))
                os.replace(temp, local)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
            stat = local.stat()
            state[relative] = StagedFile(_sha256_file(local), stat.st_size, stat.st_mtime_ns, fingerprint)
            fetched.append(relative)
        if local_dir.is_dir():
            for local in sorted(local_dir.rglob("*"), reverse=True):
                relative = local.relative_to(local_dir).as_posix()
                if include is not None and not include(relative):
                    continue
                if (local.is_file() or local.is_symlink()) and relative not in stored:
                    local.unlink()
        self._write_state(state_path, self._uri_of(relative_dir), state)
        return fetched

    def upload_tree(self, local_dir: Path, relative_dir: str, scratch_root: Path) -> list[str]:
        """Send the files of ``local_dir`` that are new or changed since they were downloaded (or last
        uploaded), remove from the store the files deleted here; returns the URIs written."""
        state_path = self._state_path(scratch_root, relative_dir)
        previous = self._read_state(state_path, self._uri_of(relative_dir))
        state: dict[str, StagedFile] = {}
        changed: list[tuple[str, Path]] = []
        present: set[str] = set()
        if local_dir.is_dir():
            for local in sorted(local_dir.rglob("*")):
                if local.is_dir() and not local.is_symlink():
                    continue
                relative = local.relative_to(local_dir).as_posix()
                if UPLOAD_TEMP_MARK in local.name or (local.name.startswith(".") and local.name.endswith(".tmp")):
                    continue  # a temp file of an atomic write in progress (include.atomic_io)
                confine(local, local_dir)  # a symlink out of the folder is never uploaded
                present.add(relative)
                stat = local.stat()
                known = previous.get(relative)
                if known is not None and (stat.st_size, stat.st_mtime_ns) == (known.size, known.mtime_ns):
                    state[relative] = known
                    continue
                digest = _sha256_file(local)
                if known is not None and known.sha256 == digest:
                    state[relative] = StagedFile(digest, stat.st_size, stat.st_mtime_ns, known.store)
                    continue
                state[relative] = StagedFile(digest, stat.st_size, stat.st_mtime_ns, "")
                changed.append((relative, local))
        base = self._key(_check_relative(relative_dir, self.uri))
        # Removals first: a re-run withdraws its old conclusions before any new input shows up.
        for relative in sorted(set(previous) - present, key=_conclusions_first):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(f"{base}/{relative}")
        written: list[str] = []
        for relative, local in sorted(changed, key=lambda item: _conclusions_last(item[0])):
            key = f"{base}/{relative}"
            self._put_atomic(local, key)
            written.append(self._uri_of(f"{relative_dir}/{relative}"))
            try:
                fingerprint = _fingerprint(self.fs.info(key))
            except FileNotFoundError:
                fingerprint = ""
            state[relative] = StagedFile(**{**state[relative].__dict__, "store": fingerprint})
        self._write_state(state_path, self._uri_of(relative_dir), state)
        return written

    def _put_atomic(self, local: Path, key: str) -> None:
        """One object per put is atomic on object stores; a ``file://`` store gets a temp key moved into place."""
        if self.protocol not in _LOCAL_PROTOCOLS:
            self.fs.put_file(str(local), key)
            return
        target = Path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}{UPLOAD_TEMP_MARK}{uuid.uuid4().hex}")
        try:
            self.fs.put_file(str(local), str(temp))
            os.replace(temp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def download_run(
        self,
        ref: RunRef,
        scratch_root: str | os.PathLike[str] | None = None,
        *,
        listing: dict[str, dict[str, Any]] | None = None,
    ) -> RunFolder:
        """The store's run folder mirrored into ``<scratch>/<dag_id>/<run key>`` (created, even when the
        store holds no file of it yet); the returned folder remembers this store. In place: the folder itself,
        not created."""
        scratch = Path(scratch_root).resolve() if scratch_root is not None else self.scratch_root
        if self.in_place:  # the folder itself; the step creates it (a failed first step leaves none)
            return RunFolder(ref=ref, path=RunFolder.locate(ref, root=scratch).path, store=self)
        folder = RunFolder.create(ref, root=scratch)
        fetched = self.download_tree(f"{ref.dag_id}/{ref.run_key}", folder.path, scratch, listing=listing)
        log.info("staged %s from %s (%d files fetched)", ref, self.run_uri(ref), len(fetched))
        return RunFolder(ref=ref, path=folder.path, store=self)

    def upload_run(self, folder: RunFolder) -> list[str]:
        """Upload what the step changed in a staged run folder (none in place); returns the URIs written."""
        if self.in_place:
            return []
        written = self.upload_tree(folder.path, f"{folder.dag_id}/{folder.run_key}", folder.path.parent.parent)
        log.info("uploaded %d changed files of %s to %s", len(written), folder.ref, self.run_uri(folder.ref))
        return written

    def cache_run_summaries(self, cache_root: Path, dag_ids: Iterable[str] | None = None) -> list[RunRef]:
        """The top-level files of every run folder (inputs, manifest, report: what a runs list reads) mirrored
        into ``cache_root/<dag_id>/<run key>``, one store listing per DAG; the cached runs the store no longer
        holds are dropped. Returns the runs found. In place: nothing to do (the store is local)."""
        found: list[RunRef] = []
        for dag_id in sorted(dag_ids) if dag_ids is not None else self.list_dirs():
            try:
                check_dag_id(dag_id)
            except ArtifactPathError:
                continue
            by_run: dict[str, dict[str, dict[str, Any]]] = {}
            for relative, info in self.list_files(dag_id).items():
                run_key, _, rest = relative.partition("/")
                if rest and "/" not in rest and _is_run_key(run_key):
                    by_run.setdefault(run_key, {})[rest] = info
            for run_key, files in sorted(by_run.items()):
                ref = RunRef(dag_id, run_key)
                local = cache_root / dag_id / run_key
                local.mkdir(parents=True, exist_ok=True)
                self.download_tree(str(ref), local, cache_root, include=_top_level, listing=files)
                found.append(ref)
            cached = cache_root / dag_id
            if cached.is_dir():
                for stale in cached.iterdir():
                    gone = stale.name not in by_run and _is_run_key(stale.name)
                    if gone and stale.is_dir() and not stale.is_symlink():
                        shutil.rmtree(stale, ignore_errors=True)
                        self._state_path(cache_root, f"{dag_id}/{stale.name}").unlink(missing_ok=True)
        return found

    def cache_run(self, ref: RunRef, cache_root: Path) -> RunFolder | None:
        """The whole run folder mirrored into ``cache_root`` (for a report page); None when the store lacks it."""
        listing = self.list_files(str(ref))
        local = cache_root / ref.dag_id / ref.run_key
        if not listing:
            if local.is_dir():
                shutil.rmtree(local, ignore_errors=True)
            return None
        local.mkdir(parents=True, exist_ok=True)
        self.download_tree(str(ref), local, cache_root, listing=listing)
        return RunFolder.open(local, root=cache_root)

    def deployment_relative(self, dag_id: str, deployment: str) -> str:
        return f"{dag_id}/{DEPLOYMENTS_DIR}/{deployment}/storage"

    @contextmanager
    def staged_deployment_storage(self, folder: RunFolder, deployment: str) -> Iterator[Path]:
        """A live deployment's persistent object store (``<dag>/_deployments/<account>/storage``), staged
        down beside the run folder in scratch and uploaded back after the run (also when it failed)."""
        local = folder.deployment_storage_dir(deployment)
        if self.in_place:
            yield local
            return
        relative = self.deployment_relative(folder.dag_id, deployment)
        scratch = folder.path.parent.parent
        local.mkdir(parents=True, exist_ok=True)
        self.download_tree(relative, local, scratch)
        try:
            yield local
        finally:
            self.upload_tree(local, relative, scratch)


def _top_level(relative: str) -> bool:
    return "/" not in relative


def _is_run_key(name: str) -> bool:
    try:
        check_run_key(name)
    except ArtifactPathError:
        return False
    return True


def _conclusions_last(relative: str) -> tuple[int, str]:
    return (1 if relative in _CONCLUSIONS else 0, relative)


def _conclusions_first(relative: str) -> tuple[int, str]:
    return (0 if relative in _CONCLUSIONS else 1, relative)


# ---------------------------------------------------------------------------- staging a step


@contextmanager
def staged_run(uri_or_path: str | os.PathLike[str], *, store: ArtifactStore | None = None) -> Iterator[RunFolder]:
    """The run folder a step works on: in place, the folder itself; with a store, a local mirror in scratch,
    uploaded on exit (also when the step raised, so its logs and partial results are visible)."""
    store = store if store is not None else ArtifactStore.from_env()
    ref = store.ref_of(uri_or_path)
    if store.in_place:
        folder = RunFolder.open(store.scratch_root / ref.dag_id / ref.run_key, root=store.scratch_root)
        yield RunFolder(ref=folder.ref, path=folder.path, store=store)
        return
    listing = store.list_files(str(ref))
    if not listing:
        raise RunFolderError([f"{store.run_uri(ref)}: no run folder in the artifact store"])
    folder = store.download_run(ref, listing=listing)
    try:
        yield folder
    finally:
        store.upload_run(folder)


@contextmanager
def staged_new_run(ref: RunRef, *, store: ArtifactStore | None = None) -> Iterator[RunFolder]:
    """The first task's run folder (it may not exist in the store yet; a re-run finds the last attempt's
    files, as in place): created locally, uploaded on exit."""
    store = store if store is not None else ArtifactStore.from_env()
    folder = store.download_run(ref)
    try:
        yield folder
    finally:
        store.upload_run(folder)


@contextmanager
def staged_other_run(
    folder: RunFolder, ref: RunRef, *, store: ArtifactStore | None = None, upload: bool = False
) -> Iterator[RunFolder | None]:
    """Another run read (or, with ``upload``, also written) beside ``folder``: the previous run of a continued
    account, the other run of a session's parity. Staged into the same scratch as ``folder``; None when the
    store has no such run (in place: the local folder, if it exists)."""
    store = store if store is not None else (folder.store or ArtifactStore.from_env())
    scratch = folder.path.parent.parent
    if store.in_place:
        located = RunFolder.locate(ref, root=scratch)
        yield located if located.path.is_dir() else None
        return
    listing = store.list_files(str(ref))
    if not listing:
        # A stale scratch copy of a run the store no longer holds must not be read as that run.
        stale = scratch / ref.dag_id / ref.run_key
        if stale.is_dir():
            store.download_tree(str(ref), stale, scratch, listing=listing)
        yield None
        return
    other = store.download_run(ref, scratch, listing=listing)
    try:
        yield other
    finally:
        if upload:
            store.upload_run(other)


@contextmanager
def staged_dir(relative_dir: str, *, store: ArtifactStore | None = None, upload: bool = True) -> Iterator[Path]:
    """Any folder of the store that is not a run folder (``<dag_id>/_sweeps/<hash>``...), mirrored into
    ``<scratch>/<relative_dir>`` and, with ``upload``, sent back on exit (changes only). In place: the folder."""
    store = store if store is not None else ArtifactStore.from_env()
    _check_relative(relative_dir, store.uri)
    local = confine(store.scratch_root / relative_dir, store.scratch_root)
    if store.in_place:
        yield local
        return
    local.mkdir(parents=True, exist_ok=True)
    store.download_tree(relative_dir, local, store.scratch_root)
    try:
        yield local
    finally:
        if upload:
            store.upload_tree(local, relative_dir, store.scratch_root)


def run_uris(store: ArtifactStore, folder: RunFolder, **files: str | os.PathLike[str]) -> dict[str, str]:
    """What a task returns through XCom: the run folder's store URI and those of the named files."""
    return {
        "run_dir": store.run_uri(folder.ref),
        **{name: store.file_uri(folder, path) for name, path in files.items()},
    }


def time_staging(uri: str, *, store: ArtifactStore | None = None) -> dict[str, float]:
    """Seconds to download a run folder into scratch and to upload it unchanged (the staging overhead of
    one task; for benchmarks)."""
    store = store if store is not None else ArtifactStore.from_env()
    started = time.perf_counter()
    with staged_run(uri, store=store):
        downloaded = time.perf_counter()
    return {"download_s": downloaded - started, "upload_s": time.perf_counter() - downloaded}


__all__ = [
    "ARTIFACT_CONN_ID_ENV",
    "ARTIFACT_STORE_ENV",
    "ArtifactStore",
    "parse_store_uri",
    "run_uris",
    "staged_dir",
    "staged_new_run",
    "staged_other_run",
    "staged_run",
    "time_staging",
]
