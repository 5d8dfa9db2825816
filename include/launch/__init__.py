"""How a Lean run is launched, independent of Airflow.

* ``config``: Lean's launcher ``config.json``, the one writer and the one reader, and the
  :class:`~include.launch.config.LeanJob` that says what to run;
* ``docker``: the ``quantconnect/lean`` container (lean-cli's mounts and entry script);
* ``local``: the embedded local runtime in a subprocess.

``plugins/lean_airflow/operators.py`` only wires these to Airflow, so the exact container
request and the subprocess contract are tested without Airflow.
"""
