"""Lean's known launcher-config keys and its live-environment rules, pinned; and the check of a config.

``lean_config_keys.json`` (next to this module) is extracted once from QuantConnect/Lean at a pinned commit
by ``tests/tools/extract_lean_config_rules.py`` and says where each fact comes from. A launcher config
this project writes must pass :func:`check_launcher_config`:

* every key (top level, and in every ``environments`` block) is one Lean knows (``Launcher/config.json``
  or a ``Config.Get*`` call of its sources) or one of :data:`PROJECT_KEYS`; the entries of ``parameters``
  are the algorithm's own and free-form. Lean ignores an unknown key, which is why a misspelt key
  (``live-mode-brokerge``) would silently do nothing in the real image;
* the selected ``environment`` exists under ``environments`` (Lean silently runs on the top-level keys
  otherwise, ``Configuration/Config.cs`` ``GetToken``);
* a live environment (``live-mode`` true, as ``Config.GetBool`` reads it) defines ``live-mode-brokerage``,
  ``data-queue-handler`` and ``history-provider`` in its block, as lean-cli requires to deploy it, and
  follows ``Launcher/config.json``'s convention: the paper brokerage with the
  ``BacktestingTransactionHandler``, a real brokerage with the ``BrokerageTransactionHandler``.

Stdlib only, and it reads nothing under ``tests/``: the operator's preflight can use it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.errors import LeanConfigRulesError, LiveDataQueueMissingError
from include.launch.config import INTENT_PATH_KEY, LOCAL_NOW_KEY, PARAMS_PATH_KEY, as_bool, launcher_config_for

if TYPE_CHECKING:
    from include.launch.config import LeanJob, Runtime

RULES_FILE = Path(__file__).with_name("lean_config_keys.json")

# Keys this project adds to Lean's: what each is for. Lean reads none of them and ignores them.
PROJECT_KEYS: dict[str, str] = {
    INTENT_PATH_KEY: "the order intent the algorithm trades (also under 'parameters', where the algorithm reads it)",
    PARAMS_PATH_KEY: "the execution params of the run (also under 'parameters')",
    LOCAL_NOW_KEY: "the local runtime's clock, for tests (the real Lean reads the machine's clock)",
}
# Keys whose value is a free-form object: the algorithm's parameters (Lean hands them to get_parameter).
FREE_FORM_KEYS = frozenset({"parameters"})


@dataclass(frozen=True)
class LeanConfigRules:
    """The pinned facts about Lean's launcher config (see ``lean_config_keys.json`` for their sources)."""

    lean_commit: str
    keys: frozenset[str]
    live_required_keys: tuple[str, ...]
    live_rule_source: str
    paper_brokerages: frozenset[str]
    paper_transaction_handler: str
    brokerage_transaction_handler: str
    convention_source: str
    default_brokerage: str
    default_transaction_handler: str

    def with_keys(self, keys: Collection[str]) -> LeanConfigRules:
        """The same rules with another set of known keys."""
        return dataclasses.replace(self, keys=frozenset(keys))


@lru_cache(maxsize=4)
def load_lean_config_rules(path: Path = RULES_FILE) -> LeanConfigRules:
    """The rules of the pinned file; ``ValueError`` naming the file and the missing field when it is malformed."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        rule = raw["live_environment_rule"]
        convention = raw["transaction_handler_convention"]
        defaults = raw["defaults"]
        source = rule["source"]
        paper_lines = convention["source"]["paper_comment"]["lines"]
        return LeanConfigRules(
            lean_commit=str(raw["lean_commit"]),
            keys=frozenset(str(k) for k in raw["keys"]),
            live_required_keys=tuple(str(k) for k in rule["required_keys"]),
            live_rule_source=f"{source['repository']}@{source['commit'][:8]} {source['path']}"
            f" L{source['lines'][0]}-{source['lines'][1]}",
            paper_brokerages=frozenset(str(b) for b in convention["paper_brokerages"]),
            paper_transaction_handler=str(convention["paper_transaction_handler"]),
            brokerage_transaction_handler=str(convention["brokerage_transaction_handler"]),
            convention_source=f"Lean's {convention['source']['path']} (L{paper_lines[0]} and the live environments)",
            default_brokerage=str(defaults["live-mode-brokerage"]["value"]),
            default_transaction_handler=str(defaults["transaction-handler"]["value"]),
        )
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the pinned Lean config rules ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{path}: malformed pinned Lean config rules (missing or bad field {exc})") from None


def _short(type_name: object) -> str:
    """A handler's or brokerage's type name without its namespace (Lean's Composer accepts either)."""
    return str(type_name).rsplit(".", 1)[-1]


def _check_keys(block: Mapping[str, Any], where: str, rules: LeanConfigRules, problems: list[str]) -> None:
    for key, value in block.items():
        if key in FREE_FORM_KEYS:
            if not isinstance(value, Mapping):
                problems.append(f"{where}{key!r}: must be an object of name -> value, got {type(value).__name__}")
        elif key not in rules.keys and key not in PROJECT_KEYS:
            problems.append(
                f"{where}{key!r}: unknown key; not in Lean's Launcher/config.json nor read by Lean's code at "
                f"{rules.lean_commit[:8]}, and not one of this project's ({', '.join(sorted(PROJECT_KEYS))}); "
                f"Lean would ignore it"
            )
        elif key == "environments":
            if not isinstance(value, Mapping):
                problems.append(f"{where}'environments': must be an object of name -> block")
                continue
            for name, env in value.items():
                if isinstance(env, Mapping):
                    _check_keys(env, f"{where}environments.{name}.", rules, problems)
                else:
                    problems.append(f"{where}environments.{name}: must be an object of key -> value")


def _selected_block(config: Mapping[str, Any], problems: list[str]) -> tuple[str, Mapping[str, Any] | None]:
    """The ``environment`` name and its block (Lean walks ``environments`` along the name's dotted parts)."""
    name = config.get("environment")
    if name is None or name == "":
        return "", None
    if not isinstance(name, str):
        problems.append(f"'environment': must be the name of a block under 'environments', got {name!r}")
        return "", None
    node: Any = config.get("environments")
    for part in name.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        available = sorted(config["environments"]) if isinstance(config.get("environments"), Mapping) else []
        problems.append(
            f"'environment': {name!r} is not a block under 'environments' (has: {', '.join(available) or 'none'}); "
            f"Lean would silently run on the top-level keys alone"
        )
        return name, None
    return name, node


def check_launcher_config(
    config: Mapping[str, Any], known_keys: LeanConfigRules | Collection[str] | None = None
) -> list[str]:
    """Every problem of a launcher config against Lean's pinned keys and rules; empty when it passes.

    ``known_keys``: the rules (default: the pinned file), or just a set of known keys (with the pinned
    live rules). Each problem names the key, its place in the config, and the rule it breaks.
    """
    pinned = load_lean_config_rules()
    if known_keys is None:
        rules = pinned
    elif isinstance(known_keys, LeanConfigRules):
        rules = known_keys
    else:
        rules = pinned.with_keys(known_keys)
    if not isinstance(config, Mapping):
        return [f"the launcher config must be a JSON object, got {type(config).__name__}"]
    problems: list[str] = []
    _check_keys(config, "", rules, problems)
    name, block = _selected_block(config, problems)

    def layered(key: str, default: Any = None) -> Any:
        # Config.Get: the selected environment's block first, then the top level.
        if block is not None and key in block:
            return block[key]
        return config.get(key, default)

    if not as_bool(layered("live-mode", False)):
        return problems
    if block is None:
        problems.append(
            "live-mode is true but no environment block is selected: lean-cli deploys a live algorithm from an "
            f"environment defining {', '.join(rules.live_required_keys)} ({rules.live_rule_source})"
        )
        return problems
    for key in rules.live_required_keys:
        if key not in block or block[key] in ("", [], None):  # an empty list names no handler either
            problems.append(
                f"environments.{name}: a live environment without {key!r}; lean-cli refuses to deploy it "
                f"({rules.live_rule_source})"
            )
    brokerage = _short(layered("live-mode-brokerage", rules.default_brokerage))
    handler = _short(layered("transaction-handler", rules.default_transaction_handler))
    paper = brokerage in rules.paper_brokerages
    expected = rules.paper_transaction_handler if paper else rules.brokerage_transaction_handler
    if handler != expected:
        kind = "the paper brokerage" if paper else "a real brokerage"
        problems.append(
            f"environments.{name}: live-mode-brokerage {brokerage!r} ({kind}) with transaction-handler {handler!r}; "
            f"Lean's convention is {expected} ({rules.convention_source})"
        )
    return problems


DATA_QUEUE_HANDLER = "data-queue-handler"


def require_launcher_config_passes(config: Mapping[str, Any], what: str = "the launcher config") -> None:
    """Raise unless :func:`check_launcher_config` finds nothing: ``LiveDataQueueMissingError`` when the
    selected live environment has no ``data-queue-handler`` (the real Lean would stop on its stub feed),
    else ``LeanConfigRulesError`` listing every problem."""
    problems = check_launcher_config(config)
    if not problems:
        return
    named = [f"{what}: {problem}" for problem in problems]
    if any(f"without {DATA_QUEUE_HANDLER!r}" in problem for problem in problems):
        raise LiveDataQueueMissingError(
            [
                *named,
                "without a data queue handler Lean uses its stub LiveDataQueue, whose Subscribe throws, and stops "
                "with a runtime error (Lean Queues/JobQueue.cs L158-166, Engine/DataFeeds/Queues/DataQueue.cs "
                "L27-34); select a broker connection whose data_provider feeds live data",
            ]
        )
    raise LeanConfigRulesError(named)


def check_job_before_start(job: LeanJob, runtime: Runtime) -> dict[str, Any]:
    """The job's launcher config, once it is known to start: the broker and its data provider run on
    ``runtime`` (``BrokerRuntimeError``) and the config passes Lean's keys and live rules (above). Called
    before any container is created or any local engine started; nothing is written."""
    if job.mode == "live":
        job.broker.check_runtime(runtime)
    config = launcher_config_for(job, runtime)
    require_launcher_config_passes(config, f"{job.folder.config_path} ({job.mode}, {runtime})")
    return config
