"""File contracts between the tasks: one frozen pydantic model per file format, with its I/O.

``snapshot`` (DecisionSnapshot), ``intent`` (OrderIntent), ``params`` (ExecutionParams),
``lean_events`` (LeanOrderEvent), ``manifest`` (RunManifest), ``report`` (ConsistencyReport,
ParityReport). Import the module you need: this package imports none of them, so reading one
contract does not build every model.
"""
