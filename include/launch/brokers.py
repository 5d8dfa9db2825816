"""Brokers and live data providers as table entries, and the broker selection from a connection's fields.

A live run trades through one *broker* (Lean's ``live-mode-brokerage`` and the environment block around
it) fed by one *data provider* (Lean's ``data-queue-handler``). Adding either is one entry in
:data:`BROKERS` or :data:`DATA_PROVIDERS`: the Lean type names, the connection fields it needs (each
mapped to the Lean config key it fills, and whether it is a secret) and the runtimes it can run on.

The connection (an Airflow connection; its type is free) is read as a plain dict of its fields, so this
module never imports Airflow (``plugins/lean_airflow/operators.py`` looks the connection up):

* ``login`` / ``password``: the broker's (or the data provider's) user name and password, secrets;
* ``host`` / ``port``: where the broker's gateway listens (Interactive Brokers: ``ib-host``/``ib-port``);
* ``extra`` (a JSON object): ``broker`` (a key of :data:`BROKERS`, default ``paper``), ``data_provider``
  (a key of :data:`DATA_PROVIDERS`), ``account`` (the broker's account id, also the name of the live
  deployment's persistent object store), the broker's other settings (e.g. ``trading_mode``), and the
  QuantConnect licence trio ``job_user_id`` / ``api_access_token`` / ``job_organization_id`` (secrets:
  lean-cli installs a broker's or data provider's module only for a licensed organisation, lean-cli
  ``lean/components/docker/lean_runner.py`` L343-374).

Secrets are never written to ``config.json``: they reach Lean through the container's environment
(``LEAN_SECRET_CONFIG``), and the container's entry script merges them into a private copy of the
config (``include.launch.docker``). No connection at all selects :data:`DEFAULT_SELECTION`: the paper
broker on the local runtime's feed from the Lean data folder.

Stdlib only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from include.errors import BrokerConnectionError, BrokerRuntimeError

# Lean's live handlers, as in every live environment of Lean's Launcher/config.json (L378-391, L446-458).
_LIVE_HANDLERS: dict[str, Any] = {
    "live-mode": True,
    "setup-handler": "QuantConnect.Lean.Engine.Setup.BrokerageSetupHandler",
    "result-handler": "QuantConnect.Lean.Engine.Results.LiveTradingResultHandler",
    "data-feed-handler": "QuantConnect.Lean.Engine.DataFeeds.LiveTradingDataFeed",
    "real-time-handler": "QuantConnect.Lean.Engine.RealTime.LiveTradingRealTimeHandler",
}
BACKTESTING_TRANSACTION_HANDLER = "QuantConnect.Lean.Engine.TransactionHandlers.BacktestingTransactionHandler"
BROKERAGE_TRANSACTION_HANDLER = "QuantConnect.Lean.Engine.TransactionHandlers.BrokerageTransactionHandler"
SUBSCRIPTION_HISTORY_PROVIDER = "SubscriptionDataReaderHistoryProvider"
# The local runtime's data queue: the bars of the Lean data folder. Not a .NET type name on purpose (the
# colon): the real Lean has no such type, so a config naming it can only run on the local runtime.
LOCAL_DATA_QUEUE_HANDLER = "lean-airflow:local-data-folder"
LOCAL_DATA_FOLDER = "local-data-folder"
PAPER = "paper"
INTERACTIVE_BROKERS = "interactive-brokers"

# The connection's own fields (every other field name is a key of its ``extra`` JSON).
CONNECTION_FIELDS = ("login", "password", "host", "port")
SELECTION_FIELDS = ("broker", "data_provider", "account")
_ACCOUNT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


@dataclass(frozen=True)
class ConnectionField:
    """One field of the connection and the Lean config key it fills.

    ``default`` None: required. ``lean_key`` None: the field only names something (``account`` of the paper
    broker names its deployment). A secret goes to ``LEAN_SECRET_CONFIG``, anything else to the live
    environment's block of ``config.json``.
    """

    name: str
    lean_key: str | None
    secret: bool = False
    default: str | None = None
    choices: tuple[str, ...] = ()


# Lean's Launcher/config.json L86-88; lean-cli fills them from the user's QuantConnect login.
QC_LICENCE_FIELDS = (
    ConnectionField("job_user_id", "job-user-id", secret=True),
    ConnectionField("api_access_token", "api-access-token", secret=True),
    ConnectionField("job_organization_id", "job-organization-id", secret=True),
)
OPTIONAL_QC_LICENCE_FIELDS = tuple(
    ConnectionField(f.name, f.lean_key, secret=True, default="") for f in QC_LICENCE_FIELDS
)
# Lean's Launcher/config.json L99-109 (the keys and their defaults); lean-cli's IB module reads the same
# keys (lean-cli tests/commands/test_live.py create_fake_environment).
INTERACTIVE_BROKERS_FIELDS = (
    ConnectionField("account", "ib-account"),
    ConnectionField("trading_mode", "ib-trading-mode", default="paper", choices=("paper", "live")),
    ConnectionField("host", "ib-host", default="127.0.0.1"),
    ConnectionField("port", "ib-port", default="4002"),
    ConnectionField(
        "agent_description", "ib-agent-description", default="Individual", choices=("Individual", "Advisor")
    ),
    ConnectionField("weekly_restart_utc_time", "ib-weekly-restart-utc-time", default="22:00:00"),
    ConnectionField("login", "ib-user-name", secret=True),
    ConnectionField("password", "ib-password", secret=True),
    *QC_LICENCE_FIELDS,
)


@dataclass(frozen=True)
class DataProvider:
    """A live data feed: Lean's ``data-queue-handler`` type names and what the connection must give."""

    name: str
    data_queue_handler: tuple[str, ...]
    fields: tuple[ConnectionField, ...]
    runtimes: tuple[str, ...]
    source: str
    # The history providers of a paper environment fed by it (a real broker's block names its own).
    history_provider: tuple[str, ...] = (SUBSCRIPTION_HISTORY_PROVIDER,)


@dataclass(frozen=True)
class Broker:
    """A Lean live environment: its name in ``environments``, the brokerage and its transaction handler."""

    name: str
    environment: str
    brokerage: str
    transaction_handler: str
    data_providers: tuple[str, ...]
    default_data_provider: str
    fields: tuple[ConnectionField, ...]
    runtimes: tuple[str, ...]
    source: str
    # None: the data provider's. A real broker's block names its own (Lean's live-interactive L457).
    history_provider: tuple[str, ...] | None = None
    # The paper broker starts from live-cash-balance/live-holdings; a real broker's account is the truth.
    paper: bool = False


# lean-cli resolves a data feed's type names from its modules file (``lean/models/__init__.py``:
# modules-1.14.json, downloaded from cdn.quantconnect.com, not in lean-cli's repository); the names below
# are those of Lean's own environments where Lean has one.
DATA_PROVIDERS: dict[str, DataProvider] = {
    LOCAL_DATA_FOLDER: DataProvider(
        name=LOCAL_DATA_FOLDER,
        data_queue_handler=(LOCAL_DATA_QUEUE_HANDLER,),
        fields=OPTIONAL_QC_LICENCE_FIELDS,
        runtimes=("local",),
        source="the local runtime's feed: the bars of the Lean data folder (include/lean_local)",
    ),
    INTERACTIVE_BROKERS: DataProvider(
        name=INTERACTIVE_BROKERS,
        data_queue_handler=("InteractiveBrokersBrokerage",),
        fields=INTERACTIVE_BROKERS_FIELDS,
        runtimes=("docker",),
        source="Lean Launcher/config.json L453 (live-interactive's data-queue-handler)",
    ),
    "iqfeed": DataProvider(
        name="iqfeed",
        data_queue_handler=("QuantConnect.IQFeed.IQFeedDataQueueHandler",),
        fields=(
            ConnectionField("login", "iqfeed-username", secret=True),
            ConnectionField("password", "iqfeed-password", secret=True),
            ConnectionField("host", "iqfeed-host", default="127.0.0.1"),
            ConnectionField("product_name", "iqfeed-productName"),
            ConnectionField("version", "iqfeed-version", default="1.0"),
            *QC_LICENCE_FIELDS,
        ),
        runtimes=("docker",),
        source="Lean Launcher/config.json L128-133 and L467 (live-interactive-iqfeed's data-queue-handler)",
    ),
    "polygon": DataProvider(
        name="polygon",
        data_queue_handler=("QuantConnect.Lean.DataSource.Polygon.PolygonDataProvider",),
        fields=(ConnectionField("polygon_api_key", "polygon-api-key", secret=True), *QC_LICENCE_FIELDS),
        runtimes=("docker",),
        source="Lean Launcher/config.json L321-322 (polygon-api-key); the QuantConnect/Lean.DataSource.Polygon module",
    ),
}

BROKERS: dict[str, Broker] = {
    PAPER: Broker(
        name=PAPER,
        environment="live-paper",
        brokerage="PaperBrokerage",
        # "the paper brokerage requires the BacktestingTransactionHandler" (Lean Launcher/config.json L382).
        transaction_handler=BACKTESTING_TRANSACTION_HANDLER,
        data_providers=tuple(DATA_PROVIDERS),
        default_data_provider=LOCAL_DATA_FOLDER,
        fields=(ConnectionField("account", None, default=""),),
        runtimes=("docker", "local"),
        source="Lean Launcher/config.json L378-391 (live-paper) with a named data-queue-handler, as lean-cli's "
        "'Paper Trading' + data provider deployments (lean-cli lean/commands/live/deploy.py L186-230)",
        paper=True,
    ),
    INTERACTIVE_BROKERS: Broker(
        name=INTERACTIVE_BROKERS,
        environment="live-interactive",
        brokerage="InteractiveBrokersBrokerage",
        transaction_handler=BROKERAGE_TRANSACTION_HANDLER,
        data_providers=(INTERACTIVE_BROKERS,),
        default_data_provider=INTERACTIVE_BROKERS,
        fields=INTERACTIVE_BROKERS_FIELDS,
        runtimes=("docker",),
        source="Lean Launcher/config.json L446-458 (live-interactive) and L99-109 (the ib-* keys)",
        history_provider=("BrokerageHistoryProvider", SUBSCRIPTION_HISTORY_PROVIDER),
    ),
}


@dataclass(frozen=True)
class BrokerSelection:
    """What a live run trades through: the broker, its data provider, the account and the non-secret
    settings (Lean keys of the live environment's block). Holds no secret: it goes into ``LeanJob``."""

    broker: str = PAPER
    data_provider: str = LOCAL_DATA_FOLDER
    account: str = ""
    settings: Mapping[str, str] = field(default_factory=dict)
    # The names (never the values) of the Lean keys the connection's secrets fill.
    secret_keys: tuple[str, ...] = ()
    conn_id: str | None = None

    @property
    def spec(self) -> Broker:
        return BROKERS[self.broker]

    @property
    def feed(self) -> DataProvider:
        return DATA_PROVIDERS[self.data_provider]

    @property
    def environment(self) -> str:
        """The name of the live environment block (Lean's ``environment`` in live mode)."""
        return self.spec.environment

    @property
    def paper(self) -> bool:
        return self.spec.paper

    @property
    def deployment(self) -> str:
        """The live deployment's name (its persistent object store's folder): the broker and the account."""
        return f"{self.broker}-{self.account}" if self.account else self.broker

    def environment_block(self) -> dict[str, Any]:
        """The live environment block of ``config.json`` (no secret: those are merged in the container)."""
        broker, feed = self.spec, self.feed
        block: dict[str, Any] = {
            "live-mode": True,
            "live-mode-brokerage": broker.brokerage,
            **{k: v for k, v in _LIVE_HANDLERS.items() if k != "live-mode"},
            "data-queue-handler": list(feed.data_queue_handler),
            "history-provider": list(broker.history_provider or feed.history_provider),
            "transaction-handler": broker.transaction_handler,
        }
        block.update(sorted(self.settings.items()))
        return block

    def check_runtime(self, runtime: str) -> None:
        """``BrokerRuntimeError`` unless both the broker and its data provider run on ``runtime``."""
        broker, feed = self.spec, self.feed
        if runtime not in broker.runtimes:
            raise BrokerRuntimeError(
                self.conn_id,
                f"broker {broker.name!r}",
                runtime,
                list(broker.runtimes),
                "The local runtime simulates the paper broker only; trade a real broker with runtime='docker'.",
            )
        if runtime not in feed.runtimes:
            others = [name for name in broker.data_providers if runtime in DATA_PROVIDERS[name].runtimes]
            raise BrokerRuntimeError(
                self.conn_id,
                f"data provider {feed.name!r} ({feed.source})",
                runtime,
                list(feed.runtimes),
                f"Set the connection's extra 'data_provider' to one of: {', '.join(others)}"
                if others
                else "No data provider of this broker runs there.",
            )


DEFAULT_SELECTION = BrokerSelection()


@dataclass(frozen=True)
class BrokerConnection:
    """A parsed broker connection: the selection (no secret) and the secrets (Lean key -> value)."""

    selection: BrokerSelection
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)


def _extra_of(conn_id: str, raw: Any, problems: list[str]) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"field 'extra': not valid JSON ({exc.msg} at position {exc.pos})")
            return {}
    if not isinstance(raw, Mapping):
        problems.append(f"field 'extra': must be a JSON object, got {type(raw).__name__}")
        return {}
    return {str(k): v for k, v in raw.items()}


def _text(value: Any) -> str | None:
    """A field's value as text; None when it is not given (absent, null or blank)."""
    if value is None:
        return None
    if isinstance(value, bool | Mapping | list):
        return json.dumps(value)
    text = str(value).strip()
    return text or None


def parse_broker_connection(conn_id: str, fields: Mapping[str, Any]) -> BrokerConnection:
    """The broker selection and secrets of a connection, given as a dict of its fields (``login``,
    ``password``, ``host``, ``port``, ``extra``; others such as ``conn_type`` are ignored).

    ``BrokerConnectionError`` lists every problem: which field is wrong and what is allowed. No problem
    quotes a secret's value.
    """
    problems: list[str] = []
    extra = _extra_of(conn_id, fields.get("extra"), problems)
    broker_name = _text(extra.get("broker")) or PAPER
    if broker_name not in BROKERS:
        problems.append(f"extra 'broker'={broker_name!r}: unknown; allowed: {', '.join(BROKERS)}")
        raise BrokerConnectionError(conn_id, problems)
    broker = BROKERS[broker_name]
    provider_name = _text(extra.get("data_provider")) or broker.default_data_provider
    if provider_name not in broker.data_providers:
        known = "unknown" if provider_name not in DATA_PROVIDERS else f"not a data provider of broker {broker_name!r}"
        problems.append(
            f"extra 'data_provider'={provider_name!r}: {known}; allowed with broker {broker_name!r}: "
            f"{', '.join(broker.data_providers)}"
        )
        raise BrokerConnectionError(conn_id, problems)
    provider = DATA_PROVIDERS[provider_name]
    # The data provider's fields first: its 'account' fills ib-account, the paper broker's only names.
    wanted: dict[str, ConnectionField] = {}
    for spec in (*provider.fields, *broker.fields):
        wanted.setdefault(spec.name, spec)
    allowed_extra = sorted({*SELECTION_FIELDS, *(n for n in wanted if n not in CONNECTION_FIELDS)})
    for key in sorted(extra):
        if key not in allowed_extra:
            problems.append(
                f"extra {key!r}: not a field of broker {broker_name!r} with data provider {provider_name!r}; "
                f"allowed extra fields: {', '.join(allowed_extra)}"
            )
    for name in CONNECTION_FIELDS:
        if name not in wanted and _text(fields.get(name)) is not None:
            problems.append(
                f"field {name!r}: broker {broker_name!r} with data provider {provider_name!r} does not use it; "
                f"leave it empty"
            )
    settings: dict[str, str] = {}
    secrets: dict[str, str] = {}
    account = ""
    for name, spec in wanted.items():
        where = f"field {name!r}" if name in CONNECTION_FIELDS else f"extra {name!r}"
        value = _text(fields.get(name) if name in CONNECTION_FIELDS else extra.get(name))
        if value is None:
            if spec.default is None:
                what = "a secret" if spec.secret else "a value"
                problems.append(
                    f"{where}: required by broker {broker_name!r} with data provider {provider_name!r} "
                    f"({what} for Lean's {spec.lean_key!r})"
                )
                continue
            value = spec.default
        if spec.choices and value not in spec.choices:
            shown = "(hidden)" if spec.secret else repr(value)
            problems.append(f"{where}={shown}: allowed: {', '.join(spec.choices)}")
            continue
        if name == "account" and value:
            if not _ACCOUNT_RE.fullmatch(value):
                problems.append(
                    f"{where}={value!r}: an account id is letters, digits, '_', '.', '-' (it names the "
                    "deployment's folder), at most 64 characters"
                )
                continue
            account = value
        if spec.lean_key is None or (value == "" and spec.secret):
            continue
        (secrets if spec.secret else settings)[spec.lean_key] = value
    if problems:
        raise BrokerConnectionError(conn_id, problems)
    selection = BrokerSelection(
        broker=broker_name,
        data_provider=provider_name,
        account=account,
        settings=settings,
        secret_keys=tuple(sorted(secrets)),
        conn_id=conn_id,
    )
    return BrokerConnection(selection=selection, secrets=secrets)
