"""An embedded, Lean-compatible local runtime for daily US-equity Python algorithms.

Run ``python -m include.lean_local --config PATH`` with the repo root on ``PYTHONPATH``. The
config is Lean's launcher ``config.json`` (``//`` comments allowed, ``environments`` layering).

Backtest (``environment`` not starting with ``live``): the algorithm runs over the NYSE
sessions (``include/trading_calendar.py``, XNYS) between its start and end dates; each daily bar ends
at the session close (Lean's ``daily-precise-end-time``), prices are factor-adjusted
(``DataNormalizationMode.ADJUSTED``) and market orders on daily data become MarketOnOpen /
MarketOnClose as in Lean.

Live (``environment`` starting with ``live`` or ``live-mode`` true): a paper broker. "Now" is
the session close of the config key ``live-as-of`` (``yyyy-MM-dd``) when present, otherwise of
the last date with a bar among the subscribed tickers. The algorithm is initialised, warmed up
on the history before "now", then gets exactly one ``on_data`` call (and the scheduled events
of that day) with the bar of "now"; prices are raw and market orders fill immediately at the
latest close. Holdings and cash persist between runs in
``<object-store-root>/lean-local-live-state-<algorithm-id>.json`` (atomic writes); the first
run starts with ``live-cash-balance`` when set (else the algorithm's ``set_cash``). Events go to
``<id>-<yyyy-MM-dd>-order-events.json`` (UTC date of "now").

Exit codes: 0 completed (also after ``quit()``), 1 algorithm error (traceback in ``log.txt``
and ``<id>-log.txt``), 2 bad config.

A run imports only the standard library: pandas when the algorithm calls ``history()`` or uses ``pd``/``np``,
pyarrow (and numpy) when it reads long histories for a large universe (see ``data``).
Modules, along Lean's own seams: ``engine`` (the time loop, Lean's AlgorithmManager), ``feed`` (data feed),
``transactions`` (orders and fills), ``buying_power`` (margin model), ``portfolio`` (cash and holdings),
``securities``, ``orders``, ``order_models`` (fee/slippage/fill models), ``market_data`` (bars, corporate
events, the Slice), ``enums``, ``algorithm`` + ``algorithm_trading`` (QCAlgorithm), ``sessions``, ``data``
(Lean's data files), ``corporate``, ``scheduling``, ``indicators``, ``live``, ``results``, ``statistics`` (Lean's
samples and summary statistics), ``benchmark`` (the benchmark's feed), ``runner``.
"""

__version__ = "0.1.0"
