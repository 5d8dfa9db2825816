"""Brokers and data providers as table entries (``include.launch.brokers``), the broker selection parsed
from a connection's fields, the live account keys of the paper broker and the deployment's object store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from include.errors import ArtifactPathError, BrokerConnectionError, BrokerRuntimeError, LeanConfigError
from include.launch.brokers import (
    BROKERS,
    DATA_PROVIDERS,
    DEFAULT_SELECTION,
    LOCAL_DATA_QUEUE_HANDLER,
    parse_broker_connection,
)
from include.launch.config import LeanJob, launcher_config_for, read_launcher_config, write_launcher_config
from include.launch.lean_rules import check_launcher_config
from include.lean_local.symbols import equity_sid
from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder, RunRef

SECRET = "CANARY-broker-conn-3c1e"
QC = {"job_user_id": "7", "api_access_token": SECRET, "job_organization_id": "org"}


def _ib(**extra: Any) -> dict[str, Any]:
    return {
        "login": "ib-login-4e2",
        "password": SECRET,
        "extra": {"broker": "interactive-brokers", "account": "DU1", **QC, **extra},
    }


# ---------------------------------------------------------------------------- the tables


def test_the_tables_hold_lean_names_and_every_broker_feed_exists() -> None:
    assert set(BROKERS) == {"paper", "interactive-brokers"}
    assert set(DATA_PROVIDERS) == {"local-data-folder", "interactive-brokers", "iqfeed", "polygon"}
    for broker in BROKERS.values():
        assert (
            set(broker.data_providers) <= set(DATA_PROVIDERS) and broker.default_data_provider in broker.data_providers
        )
    paper, ib = BROKERS["paper"], BROKERS["interactive-brokers"]
    assert (paper.environment, paper.brokerage, paper.paper) == ("live-paper", "PaperBrokerage", True)
    assert paper.transaction_handler.endswith(".BacktestingTransactionHandler")
    assert (ib.environment, ib.brokerage, ib.paper) == ("live-interactive", "InteractiveBrokersBrokerage", False)
    assert ib.transaction_handler.endswith(".BrokerageTransactionHandler")
    assert DATA_PROVIDERS["local-data-folder"].runtimes == ("local",)
    assert DATA_PROVIDERS["local-data-folder"].data_queue_handler == (LOCAL_DATA_QUEUE_HANDLER,)


def test_the_interactive_brokers_block_is_lean_live_interactive_plus_its_settings() -> None:
    """Lean's Launcher/config.json L446-458, as pinned in lean_config_keys.json."""
    pinned = json.loads(Path("include/launch/lean_config_keys.json").read_text())["environments"]["live-interactive"]
    selection = parse_broker_connection("ib", _ib(trading_mode="live")).selection
    block = selection.environment_block()
    assert {k: v for k, v in block.items() if not k.startswith("ib-")} == pinned
    assert {k: v for k, v in block.items() if k.startswith("ib-")} == {
        "ib-account": "DU1",
        "ib-trading-mode": "live",
        "ib-host": "127.0.0.1",
        "ib-port": "4002",
        "ib-agent-description": "Individual",
        "ib-weekly-restart-utc-time": "22:00:00",
    }


# ---------------------------------------------------------------------------- parsing the connection


def test_interactive_brokers_connection() -> None:
    parsed = parse_broker_connection("ib", {**_ib(), "host": "ib-gateway", "port": 4001, "conn_type": "generic"})
    selection = parsed.selection
    assert (selection.broker, selection.data_provider, selection.account) == ("interactive-brokers",) * 2 + ("DU1",)
    assert selection.deployment == "interactive-brokers-DU1" and selection.environment == "live-interactive"
    assert (selection.settings["ib-host"], selection.settings["ib-port"]) == ("ib-gateway", "4001")
    assert parsed.secrets == {
        "ib-user-name": "ib-login-4e2",
        "ib-password": SECRET,
        "job-user-id": "7",
        "api-access-token": SECRET,
        "job-organization-id": "org",
    }
    assert selection.secret_keys == tuple(sorted(parsed.secrets))
    assert SECRET not in repr(parsed) and SECRET not in repr(selection)


@pytest.mark.parametrize(
    ("fields", "provider", "secrets", "deployment"),
    [
        ({}, "local-data-folder", set(), "paper"),
        ({"extra": json.dumps({"account": "acct-1"})}, "local-data-folder", set(), "paper-acct-1"),
        (
            {"extra": {"data_provider": "polygon", "polygon_api_key": SECRET, **QC}},
            "polygon",
            {"polygon-api-key"},
            "paper",
        ),
        (
            {"login": "u", "password": SECRET, "extra": {"data_provider": "iqfeed", "product_name": "P", **QC}},
            "iqfeed",
            {"iqfeed-username", "iqfeed-password"},
            "paper",
        ),
        (
            {**_ib(), "extra": {"data_provider": "interactive-brokers", "account": "DU1", **QC}},
            "interactive-brokers",
            {"ib-user-name", "ib-password"},
            "paper-DU1",
        ),
    ],
)
def test_paper_connections(fields: dict[str, Any], provider: str, secrets: set[str], deployment: str) -> None:
    parsed = parse_broker_connection("paper", fields)
    assert (parsed.selection.broker, parsed.selection.data_provider) == ("paper", provider)
    assert parsed.selection.deployment == deployment
    licence = {"job-user-id", "api-access-token", "job-organization-id"} if provider != "local-data-folder" else set()
    assert set(parsed.secrets) == secrets | licence
    block = parsed.selection.environment_block()
    assert block["live-mode-brokerage"] == "PaperBrokerage"
    assert block["data-queue-handler"] == list(DATA_PROVIDERS[provider].data_queue_handler)


@pytest.mark.parametrize(
    ("fields", "messages"),
    [
        ({"extra": "{not json"}, ["field 'extra': not valid JSON"]),
        ({"extra": ["a"]}, ["field 'extra': must be a JSON object, got list"]),
        ({"extra": {"broker": "x"}}, ["extra 'broker'='x': unknown; allowed: paper, interactive-brokers"]),
        (
            {"extra": {"data_provider": "bloomberg"}},
            ["extra 'data_provider'='bloomberg': unknown; allowed with broker"],
        ),
        (
            {"extra": {"broker": "interactive-brokers", "data_provider": "polygon"}},
            [
                "'polygon': not a data provider of broker 'interactive-brokers'; allowed with broker "
                "'interactive-brokers': interactive-brokers"
            ],
        ),
        ({"extra": {"login_key": "ib-user-name"}}, ["extra 'login_key': not a field of broker 'paper'"]),
        (
            {"password": SECRET},
            ["field 'password': broker 'paper' with data provider 'local-data-folder' does not use"],
        ),
        (
            {"extra": {"broker": "interactive-brokers"}},
            [
                "extra 'account': required",
                "field 'login': required",
                "field 'password': required",
                "extra 'api_access_token': required",
            ],
        ),
        ({**_ib(trading_mode="real")}, ["extra 'trading_mode'='real': allowed: paper, live"]),
        ({**_ib(account="../x")}, ["extra 'account'='../x': an account id is letters"]),
        ({"extra": {"data_provider": "polygon", **QC}}, ["extra 'polygon_api_key': required"]),
    ],
)
def test_a_bad_connection_names_each_field_and_what_is_allowed(fields: dict[str, Any], messages: list[str]) -> None:
    with pytest.raises(BrokerConnectionError) as info:
        parse_broker_connection("lean_broker", fields)
    text = str(info.value)
    assert text.startswith("broker connection 'lean_broker': ")
    for message in messages:
        assert message in text
    assert SECRET not in text


def test_runtimes() -> None:
    DEFAULT_SELECTION.check_runtime("local")
    with pytest.raises(BrokerRuntimeError, match=r"data provider 'local-data-folder'.*cannot run on runtime='docker'"):
        DEFAULT_SELECTION.check_runtime("docker")
    ib = parse_broker_connection("ib", _ib()).selection
    ib.check_runtime("docker")
    with pytest.raises(BrokerRuntimeError, match=r"broker 'interactive-brokers' .*runtime='local'"):
        ib.check_runtime("local")
    polygon = parse_broker_connection("p", {"extra": {"data_provider": "polygon", "polygon_api_key": "k", **QC}})
    with pytest.raises(BrokerRuntimeError, match="to one of: local-data-folder"):
        polygon.selection.check_runtime("local")


# ---------------------------------------------------------------------------- the live config


@pytest.fixture
def live(tmp_path: Path) -> LeanJob:
    folder = RunFolder.create(RunRef("lean_live_rebalance", "20240305"), root=tmp_path / "artifacts")
    for path in (folder.intent_path, folder.params_path):
        path.write_text("{}", encoding="utf-8")
    return LeanJob(folder=folder, mode="live", parameters={"starting-cash": 1000}, data_folder=DEFAULT_DATA_FOLDER)


def test_paper_first_run_starts_from_the_starting_cash(live: LeanJob) -> None:
    config = launcher_config_for(live, "local")
    assert config["live-cash-balance"] == [{"amount": 1000.0, "currency": "USD"}]
    assert "live-holdings" not in config and "initial-state-path" not in config["parameters"]
    assert check_launcher_config(config) == []
    no_cash = dataclasses.replace(live, parameters={})
    assert "live-cash-balance" not in launcher_config_for(no_cash, "local")


def test_paper_continues_from_the_initial_state_with_lean_symbol_ids(live: LeanJob) -> None:
    state = {
        "cash": 250.5,
        "holdings": {
            "ZZSC": {"quantity": 3, "average_price": 10.5},
            "NOMAP": {"quantity": -2, "average_price": 4.0},
            "GONE": {"quantity": 0, "average_price": 1.0},
        },
    }
    live.folder.initial_state_path.write_text(json.dumps(state), encoding="utf-8")
    for runtime in ("local", "docker"):
        config = launcher_config_for(live, runtime)  # type: ignore[arg-type]
        assert "initial-state-path" not in config["parameters"]
        assert config["live-cash-balance"] == [{"amount": 250.5, "currency": "USD"}]
        assert config["live-holdings"] == [
            {"Symbol": {"Value": "NOMAP", "ID": equity_sid("NOMAP", None)}, "Quantity": -2.0, "AveragePrice": 4.0},
            # dated by the map file's first date (2019-01-02), as Lean's map file provider does
            {
                "Symbol": {"Value": "ZZSC", "ID": equity_sid("ZZSC", dt.date(2019, 1, 2))},
                "Quantity": 3.0,
                "AveragePrice": 10.5,
            },
        ]
        assert check_launcher_config(config) == []
    # A backtest still reads it as a parameter.
    backtest = launcher_config_for(dataclasses.replace(live, mode="backtest"), "local")
    assert backtest["parameters"]["initial-state-path"] == str(live.folder.initial_state_path)
    assert "live-cash-balance" not in backtest


def test_a_real_broker_gets_no_account_keys(live: LeanJob) -> None:
    live.folder.initial_state_path.write_text('{"cash": 1.0, "holdings": {}}', encoding="utf-8")
    ib = dataclasses.replace(live, broker=parse_broker_connection("ib", _ib()).selection)
    config = launcher_config_for(ib, "docker")
    assert "live-cash-balance" not in config and "live-holdings" not in config
    assert "initial-state-path" not in config["parameters"]
    assert config["environment"] == "live-interactive" and check_launcher_config(config) == []
    for secret in (SECRET, "ib-login-4e2"):
        assert secret not in json.dumps(config)


def test_local_now_is_checked() -> None:
    with pytest.raises(LeanConfigError, match="expected a UTC offset"):
        LeanJob(folder=RunFolder(RunRef("d", "k"), Path("/x/d/k")), mode="live", local_now="2024-03-05T15:10:00")


# ---------------------------------------------------------------------------- the deployment's object store


def test_one_object_store_per_deployment_outside_the_run(live: LeanJob) -> None:
    folder = live.folder
    assert live.object_store_dir == folder.path.parent / "_deployments" / "paper" / "storage"
    assert dataclasses.replace(live, mode="backtest").object_store_dir == folder.storage_dir
    write_launcher_config(live, "local")
    config = read_launcher_config(folder.config_path)
    assert config.get("object-store-root") == str(live.object_store_dir)
    assert config.check_run_paths()["object-store-root"] == live.object_store_dir.resolve()
    # The same path in a backtest config is outside the run folder: refused.
    raw = dict(config.raw, environment="backtesting")
    folder.config_path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(LeanConfigError, match="outside the run folder"):
        read_launcher_config(folder.config_path).check_run_paths()


@pytest.mark.parametrize("deployment", ["..", "../x", "_x", "a/b", ""])
def test_a_deployment_name_must_be_one_safe_component(live: LeanJob, deployment: str) -> None:
    with pytest.raises(ArtifactPathError, match="not a safe folder name"):
        live.folder.deployment_storage_dir(deployment)


def test_a_symlinked_deployments_folder_is_refused(live: LeanJob, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    live.folder.deployments_dir.symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArtifactPathError, match="outside the deployments folder"):
        write_launcher_config(live, "local")
    assert list(outside.iterdir()) == [] and not live.folder.config_path.exists()
    # ... and a config naming a store there is refused by the reader (the local runtime's loader).
    raw = launcher_config_for(live, "local")
    live.folder.config_path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(LeanConfigError, match="nor its DAG's _deployments folder"):
        read_launcher_config(live.folder.config_path).check_run_paths()
