"""Every launcher config the project writes, against Lean's pinned keys and live rules
(``include.launch.lean_rules``); the checker against each rule; and the pinned file against its
extractor (``tests/tools/extract_lean_config_rules.py``)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from include.errors import LeanConfigRulesError, LiveDataQueueMissingError
from include.launch.brokers import BrokerSelection, parse_broker_connection
from include.launch.config import (
    RUNTIMES,
    LeanJob,
    Mode,
    Runtime,
    build_launcher_config,
    launcher_config_for,
    write_launcher_config,
)
from include.launch.lean_rules import (
    PROJECT_KEYS,
    RULES_FILE,
    check_job_before_start,
    check_launcher_config,
    load_lean_config_rules,
    require_launcher_config_passes,
)
from include.run_folder import RunFolder, RunRef
from tests.lean_data_factory import SAMPLE_DATA_FOLDER
from tests.tools import extract_lean_config_rules as extractor
from tests.tools.lean_checkout import LEAN_COMMIT, LEAN_COMMIT_DATE, checkout_from_env

LEAN = checkout_from_env("LEAN_REPO_DIR")
PINNED: dict[str, Any] = json.loads(RULES_FILE.read_text(encoding="utf-8"))
LIVE_REQUIRED = tuple(PINNED["live_environment_rule"]["required_keys"])

MODES = ["backtest", "live"]
POLYGON = parse_broker_connection(
    "polygon",
    {
        "extra": {
            "data_provider": "polygon",
            "polygon_api_key": "k",
            "job_user_id": "1",
            "api_access_token": "t",
            "job_organization_id": "o",
        }
    },
).selection
IB = parse_broker_connection(
    "ib",
    {
        "login": "u",
        "password": "p",
        "extra": {
            "broker": "interactive-brokers",
            "account": "DU1",
            "job_user_id": "1",
            "api_access_token": "t",
            "job_organization_id": "o",
        },
    },
).selection


def _assert_passes(problems: list[str]) -> None:
    assert problems == [], "\n".join(problems)


@pytest.fixture
def job(tmp_path: Path) -> LeanJob:
    folder = RunFolder.create(RunRef("lean_backtest_range", "20210201_20210205"), root=tmp_path / "artifacts")
    for path in (folder.intent_path, folder.params_path, folder.initial_state_path):
        path.write_text("{}", encoding="utf-8")
    algorithm = tmp_path / "algorithms" / "algo.py"
    algorithm.parent.mkdir()
    algorithm.touch()
    return LeanJob(
        folder=folder,
        mode="backtest",
        parameters={"starting-cash": 100000, "top-n": 2},
        algorithm_path=algorithm,
        data_folder=SAMPLE_DATA_FOLDER,
    )


# ---------------------------------------------------------------------------- every config the project writes


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("mode", MODES)
def test_every_launcher_config_the_project_writes_passes(job: LeanJob, mode: Mode, runtime: Runtime) -> None:
    # Live: the default (paper on the local data folder) locally; paper with a named feed in the image.
    broker = POLYGON if runtime == "docker" else BrokerSelection()
    local_now = "2021-02-05T15:10:00-05:00" if mode == "live" else None
    job = dataclasses.replace(job, mode=mode, local_now=local_now, broker=broker)
    config = launcher_config_for(job, runtime)
    assert ("local-runtime-now" in config) == (mode == "live")  # the project key is in the config checked
    assert "live-as-of" not in config
    _assert_passes(check_launcher_config(config))
    write_launcher_config(job, runtime)  # and as written to disk, what Lean reads
    _assert_passes(check_launcher_config(job.folder.read_config().raw))


@pytest.mark.parametrize("broker", [POLYGON, IB], ids=["paper-polygon", "interactive-brokers"])
def test_paper_with_a_named_feed_and_interactive_brokers_pass_lean_rules(job: LeanJob, broker: BrokerSelection) -> None:
    live = dataclasses.replace(job, mode="live", broker=broker)
    config = check_job_before_start(live, "docker")
    _assert_passes(check_launcher_config(config))
    block = config["environments"][config["environment"]]
    assert block["data-queue-handler"] and block["history-provider"]


@pytest.mark.parametrize("mode", MODES)
def test_build_launcher_config_passes(mode: Mode) -> None:
    config = build_launcher_config(
        intent_path="/Files/order_intent_run_k.json",
        params_path="/Files/execution_params_run_k.json",
        algorithm_location="/LeanCLI/lean_trend_rotation.py",
        algorithm_id="k",
        data_folder="/Lean/Data",
        results_folder="/Results",
        object_store_root="/Storage",
        mode=mode,
        parameters={"anything-the-algorithm-reads": 1},
        extra={"local-runtime-now": "2021-02-05T15:10:00-05:00"} if mode == "live" else None,
    )
    _assert_passes(check_launcher_config(config))


@pytest.mark.parametrize("missing", [None, []], ids=["absent", "empty"])
def test_a_live_environment_without_a_data_queue_handler_is_refused_by_name(
    job: LeanJob, monkeypatch: pytest.MonkeyPatch, missing: list[str] | None
) -> None:
    """The stub LiveDataQueue would stop Lean at its first subscription: refused before anything is written."""
    real = BrokerSelection.environment_block

    def without_feed(self: BrokerSelection) -> dict[str, Any]:
        block = real(self)
        if missing is None:
            del block["data-queue-handler"]
        else:
            block["data-queue-handler"] = missing
        return block

    monkeypatch.setattr(BrokerSelection, "environment_block", without_feed)
    live = dataclasses.replace(job, mode="live")
    config = launcher_config_for(live, "local")
    with pytest.raises(LiveDataQueueMissingError, match=r"environments\.live-paper: a live environment without"):
        require_launcher_config_passes(config)
    for runtime in RUNTIMES:
        with pytest.raises(LiveDataQueueMissingError, match="stub LiveDataQueue"):
            write_launcher_config(
                dataclasses.replace(live, broker=POLYGON if runtime == "docker" else live.broker), runtime
            )
    assert not job.folder.config_path.exists()


def test_another_rule_broken_is_a_config_rules_error(job: LeanJob) -> None:
    config = launcher_config_for(job, "local")
    config["live-mode-brokerge"] = "PaperBrokerage"
    with pytest.raises(LeanConfigRulesError, match="'live-mode-brokerge': unknown key") as info:
        require_launcher_config_passes(config)
    assert not isinstance(info.value, LiveDataQueueMissingError)


# ---------------------------------------------------------------------------- the checker, rule by rule


def _lean_live_config(name: str = "live-zerodha") -> dict[str, Any]:
    """A config selecting one of Lean's own live environments (as pinned)."""
    return {"environment": name, "environments": copy.deepcopy(PINNED["environments"])}


def test_lean_own_real_brokerage_environment_passes() -> None:
    assert check_launcher_config(_lean_live_config()) == []


def test_an_unknown_key_is_named_where_it_is() -> None:
    config = _lean_live_config("backtesting")
    config["live-mode-brokerge"] = "PaperBrokerage"  # misspelt: Lean would ignore it
    config["environments"]["backtesting"]["setup-handlr"] = "X"
    problems = check_launcher_config(config)
    # in the config's order: 'environments' comes first here
    assert [p.split(":")[0] for p in problems] == ["environments.backtesting.'setup-handlr'", "'live-mode-brokerge'"]
    assert all("unknown key" in p and LEAN_COMMIT[:8] in p for p in problems)


def test_project_keys_and_parameters_are_allowed_and_parameters_must_be_an_object() -> None:
    config: dict[str, Any] = {key: "x" for key in PROJECT_KEYS}
    config["parameters"] = {"free-form name": 1, "another": {"nested": True}}
    assert check_launcher_config(config) == []
    config["parameters"] = ["not", "an", "object"]
    assert check_launcher_config(config) == ["'parameters': must be an object of name -> value, got list"]


def test_known_keys_can_be_given() -> None:
    assert check_launcher_config({"a-key": 1}, {"a-key"}) == []
    assert check_launcher_config({"data-folder": "/x"}, {"a-key"})[0].startswith("'data-folder': unknown key")


def test_the_selected_environment_must_exist() -> None:
    problems = check_launcher_config({"environment": "live-papr", "environments": {"live-paper": {}}})
    assert problems == [
        "'environment': 'live-papr' is not a block under 'environments' (has: live-paper); "
        "Lean would silently run on the top-level keys alone"
    ]
    assert check_launcher_config({"environment": 3})[0].startswith("'environment': must be the name of a block")


@pytest.mark.parametrize("key", LIVE_REQUIRED)
def test_a_live_environment_must_define_what_lean_cli_requires(key: str) -> None:
    config = _lean_live_config()
    del config["environments"]["live-zerodha"][key]
    config[key] = "at the top level does not count for lean-cli"
    problems = check_launcher_config(config)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"environments.live-zerodha: a live environment without {key!r}")
    assert "lean/commands/live/deploy.py L188-193" in problems[0]


def test_live_mode_without_an_environment_block() -> None:
    problems = check_launcher_config({"live-mode": "true"})
    assert len(problems) == 1 and problems[0].startswith("live-mode is true but no environment block is selected")


@pytest.mark.parametrize(
    ("brokerage", "handler", "expected"),
    [
        ("PaperBrokerage", "QuantConnect.Lean.Engine.TransactionHandlers.BacktestingTransactionHandler", None),
        ("PaperBrokerage", None, None),  # Lean's default handler is the backtesting one
        ("PaperBrokerage", "BrokerageTransactionHandler", "BacktestingTransactionHandler"),
        ("ZerodhaBrokerage", "BacktestingTransactionHandler", "BrokerageTransactionHandler"),
        ("ZerodhaBrokerage", None, "BrokerageTransactionHandler"),
        (None, "BrokerageTransactionHandler", "BacktestingTransactionHandler"),  # Lean's default: PaperBrokerage
    ],
)
def test_the_transaction_handler_follows_lean_convention(
    brokerage: str | None, handler: str | None, expected: str | None
) -> None:
    config = _lean_live_config()
    block = config["environments"]["live-zerodha"]
    for key, value in (("live-mode-brokerage", brokerage), ("transaction-handler", handler)):
        if value is None:
            del block[key]
        else:
            block[key] = value
    problems = [p for p in check_launcher_config(config) if "live-mode-brokerage'" not in p]
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].endswith(f"Lean's convention is {expected} ({_convention()})")


def _convention() -> str:
    return load_lean_config_rules().convention_source


def test_each_of_lean_own_environments_is_judged_as_recorded() -> None:
    """Lean's Launcher/config.json itself: three of its live environments break lean-cli's rule (recorded)."""
    for name in PINNED["environments"]:
        missing = [p.split("without ")[1].split(";")[0] for p in check_launcher_config(_lean_live_config(name))]
        assert missing == [repr(k) for k in PINNED["launcher_environments_breaking_live_rule"].get(name, [])], name


# ---------------------------------------------------------------------------- the pinned file


def test_the_pinned_file_says_where_it_comes_from() -> None:
    assert PINNED["lean_commit"] == LEAN_COMMIT and PINNED["lean_commit_date"] == LEAN_COMMIT_DATE
    assert PINNED["generated_by"] == "tests/tools/extract_lean_config_rules.py"
    keys = PINNED["keys"]
    assert keys == sorted(set(keys))
    code_keys = set().union(*PINNED["code_keys"].values())
    assert len(code_keys) >= 150 and code_keys <= set(keys)
    assert all(set(block) <= set(keys) for block in PINNED["environments"].values())
    assert {"data-folder", "live-mode-brokerage", "data-queue-handler", "history-provider"} <= set(keys)
    rules = load_lean_config_rules()
    assert rules.keys == frozenset(keys) and rules.live_required_keys == LIVE_REQUIRED


def test_a_malformed_rules_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "rules.json"
    bad.write_text('{"lean_commit": "x"}', encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{bad}: malformed pinned Lean config rules \(missing or bad field"):
        load_lean_config_rules(bad)
    with pytest.raises(ValueError, match=rf"{tmp_path / 'nope.json'}: cannot read"):
        load_lean_config_rules(tmp_path / "nope.json")


# ---------------------------------------------------------------------------- the extractor

FAKE_CS = """
using QuantConnect.Configuration;
class A {
    // Config.Get("commented-out")
    /* Config.GetBool("blocked-out") */
    void M() {
        var a = Config.Get("a-key");
        var b = Config.GetValue<Dictionary<string, string>>("b-key", new());
        Config.TryGetValue<int>(
            "c-key", out var c);
        var d = Configuration.Config.GetToken("d-key");
        Log.Trace("Config.Get(\\"in-a-string\\")");
        var e = Config.Get($"{prefix}-api-key");
        var f = Config.GetInt(SomeConstant);
        Config.Set("set-key", 1);
        var g = MyConfig.Get("not-lean-config");
        var h = Config.GetDouble(@"verbatim-key");
        var q = '"'; var i = Config.GetBool("after-a-quote-char");
    }
}
"""

FAKE_LAUNCHER = """{
  // comment
  "environment": "backtesting",
  "data-folder": "../../../Data/",
  "parameters": {"ema-fast": 10},
  "environments": {
    "backtesting": {"live-mode": false, "setup-handler": "X"},
    "live-paper": {
      "live-mode": true,
      // the paper brokerage requires the BacktestingTransactionHandler
      "live-mode-brokerage": "PaperBrokerage",
      "transaction-handler": "QuantConnect.Lean.Engine.TransactionHandlers.BacktestingTransactionHandler"
    },
    "live-x": {
      "live-mode": true,
      // real brokerage implementations require the BrokerageTransactionHandler
      "live-mode-brokerage": "XBrokerage", "data-queue-handler": ["XBrokerage"], "history-provider": ["Y"],
      "transaction-handler": "QuantConnect.Lean.Engine.TransactionHandlers.BrokerageTransactionHandler"
    }
  }
}
"""


def _fake_lean(root: Path) -> Path:
    files = {
        "Launcher/config.json": FAKE_LAUNCHER,
        "Engine/A.cs": FAKE_CS,
        "Queues/JobQueue.cs": 'private const string PaperBrokerageTypeName = "PaperBrokerage";\n',
        "Engine/LeanEngineAlgorithmHandlers.cs": 'Config.Get("transaction-handler", "BacktestingTransactionHandler");'
        + "\n",
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    return root


def test_the_extractor_reads_literal_keys_and_skips_comments_and_strings(tmp_path: Path) -> None:
    keys, non_literal = extractor.code_keys_of(FAKE_CS)
    assert keys == ["a-key", "after-a-quote-char", "b-key", "c-key", "d-key", "verbatim-key"]
    assert non_literal == 2  # the interpolated key and the constant
    data = extractor.extract(_fake_lean(tmp_path))
    assert data["code_keys"] == {
        "Engine/A.cs": keys,
        "Engine/LeanEngineAlgorithmHandlers.cs": ["transaction-handler"],
    }
    assert set(data["keys"]) == {
        *keys,
        *("environment", "data-folder", "parameters", "environments", "live-mode", "setup-handler"),
        *("live-mode-brokerage", "transaction-handler", "data-queue-handler", "history-provider"),
    }
    assert "ema-fast" not in data["keys"]  # an algorithm parameter, not a config key
    assert data["launcher_environments_breaking_live_rule"] == {
        "live-paper": ["data-queue-handler", "history-provider"]
    }
    convention = data["transaction_handler_convention"]
    assert convention["holds_in_environments"] == ["live-paper", "live-x"]
    assert convention["source"]["paper_comment"]["lines"] == [10]
    assert data["defaults"]["transaction-handler"] == {
        "value": "BacktestingTransactionHandler",
        "source": "Engine/LeanEngineAlgorithmHandlers.cs:1",
    }


def test_the_extractor_refuses_a_launcher_config_breaking_the_convention(tmp_path: Path) -> None:
    lean = _fake_lean(tmp_path)
    wrong = FAKE_LAUNCHER.replace("Handlers.BrokerageTransactionHandler", "Handlers.BacktestingTransactionHandler")
    (lean / "Launcher/config.json").write_text(wrong, encoding="utf-8")
    with pytest.raises(ValueError, match="environment 'live-x' breaks the convention"):
        extractor.extract(lean)


@pytest.mark.skipif(LEAN is None, reason="set LEAN_REPO_DIR to a Lean checkout (Launcher/, Engine/, Queues/ ...)")
def test_the_pinned_file_is_what_the_extractor_reads_from_lean() -> None:
    """File by file for the C# files the checkout has (a partial checkout is compared on what it holds)."""
    assert LEAN is not None
    fresh = extractor.extract(LEAN)
    for field in (
        "lean_commit",
        "environments",
        "live_environment_rule",
        "launcher_environments_breaking_live_rule",
        "transaction_handler_convention",
        "defaults",
    ):
        assert fresh[field] == PINNED[field], field
    assert fresh["sources"][0] == PINNED["sources"][0]  # Launcher/config.json's keys
    present = {path: keys for path, keys in PINNED["code_keys"].items() if (LEAN / path).is_file()}
    assert fresh["code_keys"] == present
    if fresh["sources"][1]["files_read"] == PINNED["sources"][1]["files_read"]:  # a complete checkout
        assert extractor.render(fresh) == RULES_FILE.read_text(encoding="utf-8")
