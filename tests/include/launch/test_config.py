"""Lean's launcher ``config.json`` (``include.launch.config``): its one writer and its one reader."""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.errors import LeanConfigError
from include.launch.config import (
    INTENT_PATH_KEY,
    MAX_CONFIG_BYTES,
    PARAMS_PATH_KEY,
    LeanJob,
    build_launcher_config,
    launcher_config_for,
    read_launcher_config,
    strip_json_comments,
    write_launcher_config,
)
from include.run_folder import RunFolder, RunRef
from tests.conftest import REPO_ROOT


def _config(**overrides: object) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "intent_path": "/Results/../run/order_intent_run_k.json",
        "params_path": "/run/execution_params_run_k.json",
        "algorithm_location": "/LeanCLI/lean_trend_rotation.py",
        "algorithm_id": "k",
        "data_folder": "/Lean/Data",
        "results_folder": "/Results",
        "object_store_root": "/Storage",
    }
    kwargs.update(overrides)
    return build_launcher_config(**kwargs)  # type: ignore[arg-type]


def test_config_has_paths_top_level_and_under_parameters() -> None:
    config = _config(parameters={"starting-cash": 100000})
    assert config["execution-intent-path"] == "/Results/../run/order_intent_run_k.json"
    assert config["execution-params-path"] == "/run/execution_params_run_k.json"
    assert config["parameters"] == {
        "execution-intent-path": "/Results/../run/order_intent_run_k.json",
        "execution-params-path": "/run/execution_params_run_k.json",
        "starting-cash": 100000,
    }
    assert config["close-automatically"] is True
    assert config["algorithm-type-name"] == "lean_trend_rotation"
    assert config["algorithm-language"] == "Python"
    assert config["environment"] == "backtesting"
    assert config["environments"]["backtesting"]["live-mode"] is False  # type: ignore[index]


def test_live_mode_selects_the_paper_environment() -> None:
    config = _config(mode="live")
    assert config["environment"] == "live-paper"
    block = config["environments"]["live-paper"]  # type: ignore[index]
    assert block["live-mode"] is True and block["data-queue-handler"] == ["lean-airflow:local-data-folder"]
    assert set(config["environments"]) == {"backtesting", "live-paper"}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "paper"}, "mode='paper'"),
        ({"intent_path": ""}, "intent_path=''"),
        ({"algorithm_location": "/LeanCLI/main.cs"}, "expected a Python file"),
        ({"algorithm_id": "../x"}, "algorithm_id"),
        ({"algorithm_id": "k\n"}, "algorithm_id"),
        ({"parameters": {"execution-intent-path": "/x"}}, "reserved"),
        ({"extra": {"parameters": {}}}, "reserved"),
    ],
)
def test_bad_config_inputs(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(LeanConfigError, match=message):
        _config(**overrides)


# ---------------------------------------------------------------------------- the job's config, written


@pytest.fixture
def job(tmp_path: Path) -> LeanJob:
    folder = RunFolder.create(RunRef("lean_backtest_range", "20210201_20210205"), root=tmp_path / "artifacts")
    for path in (folder.intent_path, folder.params_path):
        path.write_text("{}", encoding="utf-8")
    algorithm = tmp_path / "algorithms" / "algo.py"
    algorithm.parent.mkdir()
    algorithm.touch()
    return LeanJob(
        folder=folder,
        mode="backtest",
        parameters={"starting-cash": 5},
        algorithm_path=algorithm,
        data_folder=tmp_path / "data",
    )


def test_local_and_docker_configs_differ_only_in_paths(job: LeanJob) -> None:
    folder = job.folder
    local, docker = launcher_config_for(job, "local"), launcher_config_for(job, "docker")
    assert local["algorithm-id"] == docker["algorithm-id"] == folder.run_key
    assert local["parameters"]["final-state-path"] == str(folder.final_state_path)
    assert docker["parameters"]["final-state-path"] == "/Results/final-state.json"
    assert local[INTENT_PATH_KEY] == str(folder.intent_path)
    assert docker[PARAMS_PATH_KEY] == f"/Files/{folder.params_path.name}"
    assert "initial-state-path" not in local["parameters"]
    path_keys = {
        "algorithm-location",
        "data-folder",
        "results-destination-folder",
        "object-store-root",
        INTENT_PATH_KEY,
        PARAMS_PATH_KEY,
        "parameters",
    }
    assert {k: v for k, v in local.items() if k not in path_keys} == {
        k: v for k, v in docker.items() if k not in path_keys
    }
    folder.initial_state_path.write_text('{"cash": 1.0, "holdings": {}}', encoding="utf-8")
    assert launcher_config_for(job, "local")["parameters"]["initial-state-path"] == str(folder.initial_state_path)
    assert launcher_config_for(job, "docker")["parameters"]["initial-state-path"] == "/Files/initial_state.json"
    with pytest.raises(LeanConfigError, match="runtime='podman'"):
        launcher_config_for(job, "podman")  # type: ignore[arg-type]


def test_write_resets_a_backtest_and_keeps_a_live_run(job: LeanJob) -> None:
    folder = job.folder
    for output in (folder.results_dir, folder.storage_dir):
        output.mkdir()
        (output / "stale.txt").write_text("x")
    folder.record_engine_identity({"runtime": "local", "engine": "old"})
    assert write_launcher_config(job, "local") == folder.config_path
    assert list(folder.results_dir.iterdir()) == [] and list(folder.storage_dir.iterdir()) == []
    assert not folder.engine_path.exists(), "an engine.json of an earlier attempt must not survive"
    assert folder.read_config().raw == launcher_config_for(job, "local")

    live = LeanJob(
        folder=folder,
        mode="live",
        algorithm_path=job.algorithm_path,
        data_folder=job.data_folder,
        local_now="2021-02-05T15:10:00-05:00",
    )
    (folder.results_dir / "20210201_20210205-2021-02-04-order-events.json").write_text("[]")
    store = folder.deployment_storage_dir("paper")
    store.mkdir(parents=True)
    (store / "kept.json").write_text("{}")
    write_launcher_config(live, "local")
    assert [p.name for p in folder.results_dir.iterdir()] == ["20210201_20210205-2021-02-04-order-events.json"]
    assert [p.name for p in store.iterdir()] == ["kept.json"], "a live deployment's object store persists"
    config = folder.read_config()
    assert config.mode == "live" and config.get("local-runtime-now") == "2021-02-05T15:10:00-05:00"
    assert "live-as-of" not in config.raw
    assert config.check_run_paths()["object-store-root"] == store.resolve()


# ---------------------------------------------------------------------------- the reader


def test_reader_allows_comments_and_layers_environments(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        """{
          // Lean's shipped config has comments
          "environment": "live-paper", /* a block */
          "algorithm-id": "k",
          "data-folder": "data",
          "url": "http://x//y",
          "parameters": {"flag": true, "n": 3, "obj": {"a": 1}},
          "environments": {"live-paper": {"live-mode": "true", "data-folder": "/abs/data"}}
        }""",
        encoding="utf-8",
    )
    config = read_launcher_config(path)
    assert config.environment == "live-paper" and config.live_mode and config.mode == "live"
    assert config.get("data-folder") == "/abs/data" and config.get("url") == "http://x//y"
    assert config.get("missing", 7) == 7
    assert config.parameters == {"flag": "True", "n": "3", "obj": '{"a": 1}'}
    assert config.path_value("data-folder") == Path("/abs/data")
    assert config.algorithm_id == "k"
    assert strip_json_comments('{"a": "//not a comment"} // one') == '{"a": "//not a comment"} '


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "top level must be a JSON object"),
        (b'{"a": "\xff"}', "not UTF-8 text"),
        (b'{"parameters": [1]}', "'parameters' must be a JSON object"),
    ],
)
def test_reader_errors_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(LeanConfigError, match=message) as info:
        read_launcher_config(path).parameters  # noqa: B018 - the parameters are checked when read
    assert str(path) in str(info.value)


def test_reader_refuses_a_missing_a_folder_and_an_oversized_file(tmp_path: Path) -> None:
    with pytest.raises(LeanConfigError, match="cannot read") as info:
        read_launcher_config(tmp_path / "missing.json")
    assert "missing.json" in str(info.value)
    with pytest.raises(LeanConfigError, match="not a regular file"):
        read_launcher_config(tmp_path)
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_CONFIG_BYTES + 1)
    with pytest.raises(LeanConfigError, match="over the"):
        read_launcher_config(big)


# ---------------------------------------------------------------------------- exactly one reader
#
# A reader of config.json is code that opens or parses it: a read call (json.load(s), open,
# .read_text/.read_bytes/.read/.open, or any function of the tree that passes one of its parameters
# to such a call) applied to an expression that evaluates to the config's path or an open handle on
# it: a string naming "config.json", a name or attribute such as config_path, cfg_path,
# CONTAINER_CONFIG_PATH or folder.config_path, a path built from one (``/``, ``Path(...)``,
# ``os.path.join``, f-strings, ``.resolve()``...), or a variable bound to one (followed through
# assignments and ``with ... as``). Python code embedded in string constants (a container's entry
# script) is parsed and scanned the same way. Hashing the file's bytes (the manifest) or checking
# that it exists is not reading it.

PRODUCTION = ("include", "plugins", "algorithms", "dags")
THE_READER = Path("include/launch/config.py")
# Lean's own image reads its config; the entry script only merges the broker secrets into a copy
# inside the container (include/launch/docker.py), it never interprets the config for us.
ALLOWED_EMBEDDED = {(Path("include/launch/docker.py"), "CONTAINER_ENTRY_SCRIPT")}

_PATH_NAME = re.compile(r"(?i)(config|cfg)_?(path|file|filename|json)$")
_PATH_PRESERVING = {
    "Path", "PurePath", "PosixPath", "str", "fspath", "join", "joinpath", "resolve", "expanduser", "absolute",
    "abspath", "realpath", "normpath", "with_name", "with_suffix", "open", "fdopen",
}  # fmt: skip
_PARSERS = {"load", "loads", "safe_load", "decode", "literal_eval"}  # their first argument is read
_READ_METHODS = {"read_text", "read_bytes", "read", "readlines", "open"}  # their receiver is read


def _is_config(node: ast.AST | None, tainted: set[str]) -> bool:
    """Does ``node`` evaluate to the config's path (or a handle on it)?"""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and "config.json" in node.value
    if isinstance(node, ast.Name):
        return node.id in tainted or _PATH_NAME.search(node.id) is not None
    if isinstance(node, ast.Attribute):
        return _PATH_NAME.search(node.attr) is not None
    if isinstance(node, ast.BinOp):
        return _is_config(node.left, tainted) or _is_config(node.right, tainted)
    if isinstance(node, ast.JoinedStr):
        return any(_is_config(v.value if isinstance(v, ast.FormattedValue) else v, tainted) for v in node.values)
    if isinstance(node, ast.IfExp | ast.BoolOp):
        values = [node.body, node.orelse] if isinstance(node, ast.IfExp) else node.values
        return any(_is_config(v, tainted) for v in values)
    if isinstance(node, ast.Call) and _callee(node) in _PATH_PRESERVING:
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        return any(_is_config(n, tainted) for n in (receiver, *node.args[:2]))
    return False


def _callee(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _read_subjects(call: ast.Call, helpers: dict[str, set[int]]) -> list[ast.AST]:
    """The expressions a call reads: none if it is no read call."""
    name = _callee(call)
    if name is None:
        return []
    subjects: list[ast.AST] = []
    if name in _PARSERS or (name == "open" and isinstance(call.func, ast.Name)):
        subjects += call.args[:1]
    if name in _READ_METHODS and isinstance(call.func, ast.Attribute):
        subjects.append(call.func.value)
        if name == "open":  # io.open(path) / os.open(path, ...)
            subjects += call.args[:1]
    subjects += [call.args[i] for i in helpers.get(name, set()) if i < len(call.args)]
    return subjects


def _scopes(tree: ast.AST) -> Iterator[ast.AST]:
    yield tree
    yield from (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


_WALKED: dict[int, tuple[ast.AST, list[ast.AST], list[ast.Call]]] = {}


def _walk(scope: ast.AST) -> tuple[list[ast.AST], list[ast.Call]]:
    """The scope's bindings (assignments, with-items) and calls, walked once."""
    cached = _WALKED.get(id(scope))
    if cached is None or cached[0] is not scope:
        nodes = list(ast.walk(scope))
        bindings = [n for n in nodes if isinstance(n, ast.Assign | ast.AnnAssign | ast.NamedExpr | ast.With)]
        cached = _WALKED[id(scope)] = (scope, bindings, [n for n in nodes if isinstance(n, ast.Call)])
    return cached[1], cached[2]


def _taint(scope: ast.AST, seed: set[str]) -> set[str]:
    """Names bound, in ``scope``, to the config's path or a handle on it (to a fixpoint)."""
    tainted = set(seed)
    bindings, _ = _walk(scope)
    while True:
        before = len(tainted)
        for node in bindings:
            if isinstance(node, ast.With):
                for item in node.items:
                    if isinstance(item.optional_vars, ast.Name) and _is_config(item.context_expr, tainted):
                        tainted.add(item.optional_vars.id)
            elif node.value is not None and _is_config(node.value, tainted):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                tainted.update(t.id for t in targets if isinstance(t, ast.Name))
        if len(tainted) == before:
            return tainted


def _reads_in(scope: ast.AST, tainted: set[str], helpers: dict[str, set[int]]) -> list[int]:
    return [
        call.lineno for call in _walk(scope)[1] if any(_is_config(s, tainted) for s in _read_subjects(call, helpers))
    ]


def _reads(tree: ast.AST, helpers: dict[str, set[int]]) -> list[int]:
    """Line numbers of the read calls on config.json in ``tree``."""
    return sorted({line for scope in _scopes(tree) for line in _reads_in(scope, _taint(scope, set()), helpers)})


def _reader_helpers(trees: dict[Path, ast.AST]) -> dict[str, set[int]]:
    """Functions of the tree that read (open or parse) one of their positional parameters: name -> positions."""
    functions = [
        f for tree in trees.values() for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    helpers: dict[str, set[int]] = {}
    changed: set[str] | None = None  # helper names found in the last round (None: the first round)
    while changed is None or changed:
        new: set[str] = set()
        for function in functions:
            if changed is not None and not any(_callee(c) in changed for c in _walk(function)[1]):
                continue  # nothing it calls became a helper: same answer as last round
            args = function.args
            params = [a.arg for a in (*args.posonlyargs, *args.args)]
            offset = 1 if params[:1] in (["self"], ["cls"]) else 0
            for index, param in enumerate(params[offset:]):
                if index not in helpers.get(function.name, set()) and _reads_param(function, param, helpers):
                    helpers.setdefault(function.name, set()).add(index)
                    new.add(function.name)
        changed = new
    return helpers


def _reads_param(function: ast.FunctionDef | ast.AsyncFunctionDef, param: str, helpers: dict[str, set[int]]) -> bool:
    """Does ``function`` open or parse what its parameter ``param`` names?"""
    return bool(_reads_in(function, _taint(function, {param}), helpers))


def _embedded_python(tree: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(constant name, parsed code) of string constants that hold Python (e.g. a heredoc in a script)."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
            continue
        text = node.value.value
        if not isinstance(text, str) or "\n" not in text:
            continue
        name = next((t.id for t in node.targets if isinstance(t, ast.Name)), "?")
        for block in re.findall(r"<<'?PY'?\n(.*?)\nPY\n", text, re.S) or [text]:
            try:
                yield name, ast.parse(block)
            except SyntaxError:
                continue


def config_readers(root: Path) -> tuple[list[str], set[tuple[Path, str]]]:
    """Every read of config.json in ``root``'s production folders outside the one reader, as
    ``path:line``; and the allowed embedded readers that were found."""
    trees: dict[Path, ast.AST] = {}
    for folder in PRODUCTION:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root)
            if relative != THE_READER:
                trees[relative] = ast.parse(path.read_text(encoding="utf-8"), filename=str(relative))
    helpers = _reader_helpers(trees)
    found: list[str] = []
    allowed_seen: set[tuple[Path, str]] = set()
    for relative, tree in trees.items():
        found += [f"{relative}:{line}" for line in _reads(tree, helpers)]
        for name, code in _embedded_python(tree):
            if _reads(code, helpers):
                if (relative, name) in ALLOWED_EMBEDDED:
                    allowed_seen.add((relative, name))
                else:
                    found.append(f"{relative}:{name} (embedded code)")
    return found, allowed_seen


def test_config_json_has_exactly_one_reader() -> None:
    found, allowed = config_readers(REPO_ROOT)
    assert found == [], f"config.json is read outside include/launch/config.py: {found}"
    assert allowed == ALLOWED_EMBEDDED  # the exception list does not outlive the code
    # ...and the one reader is the reader: read_launcher_config opens and parses the file.
    tree = ast.parse((REPO_ROOT / THE_READER).read_text(encoding="utf-8"))
    reader = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "read_launcher_config")
    assert _reads_param(reader, "path", {})


SECOND_READERS = {
    "json_loads_read_text": "import json\ndef f(folder):\n    return json.loads(folder.config_path.read_text())\n",
    "open_literal": 'import json\ndef f(d):\n    with open(d / "config.json") as h:\n        return json.load(h)\n',
    "via_variable": 'import json\ndef f(run):\n    p = run / "config.json"\n    text = p.read_text()\n'
    "    return json.loads(text)\n",
    "via_generic_helper": "import json\ndef _read_json(path):\n    with open(path) as h:\n        return json.load(h)\n"
    "def f(folder):\n    return _read_json(folder.config_path)\n",
    "path_open": "import json\ndef f(cfg_path):\n    with cfg_path.open() as h:\n        return json.load(h)\n",
    "bytes": "import json\ndef f(run_dir):\n    return json.loads((run_dir / 'config.json').read_bytes())\n",
}


def test_a_second_reader_would_be_found(tmp_path: Path) -> None:
    """The check above, on a copy of the production tree with more readers of config.json: one
    appended to an existing module, and each shape above in a module of its own."""

    def only_python(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n == "__pycache__" or not (n.endswith(".py") or (Path(folder) / n).is_dir())]

    for folder in PRODUCTION:
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder, ignore=only_python)
    assert config_readers(tmp_path)[0] == []
    manifest = tmp_path / "include" / "audit" / "manifest.py"
    lines = len(manifest.read_text(encoding="utf-8").splitlines())
    manifest.write_text(manifest.read_text(encoding="utf-8") + "\n\n" + SECOND_READERS["open_literal"])
    for name, source in SECOND_READERS.items():
        (tmp_path / "plugins" / f"reader_{name}.py").write_text(source, encoding="utf-8")
    found, allowed = config_readers(tmp_path)
    assert allowed == ALLOWED_EMBEDDED
    files = {f.rsplit(":", 1)[0] for f in found}
    assert files == {"include/audit/manifest.py", *(f"plugins/reader_{name}.py" for name in SECOND_READERS)}, found
    assert all(int(f.rsplit(":", 1)[1]) > lines for f in found if f.startswith("include/audit/manifest.py:"))


def test_benign_code_is_not_a_reader() -> None:
    source = (
        "import json\n"
        "def f(folder, config, params_path):\n"
        "    folder.config_path.exists()\n"
        "    json.loads(params_path.read_text())\n"
        "    config.get('data-folder')\n"
        "    json.loads(os.environ[SECRET_CONFIG_ENV])\n"
        "    return json.dumps({'config': 1})\n"
    )
    assert _reads(ast.parse(source), {}) == []
