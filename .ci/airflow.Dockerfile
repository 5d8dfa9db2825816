# The Airflow image of docker-compose.yaml: the official image, pinned to requirements.txt's
# apache-airflow version, plus this project's run-time requirements under .ci/constraints.txt
# (the way Airflow's "Running Airflow in Docker" guide adds packages; not _PIP_ADDITIONAL_REQUIREMENTS).
# Only the lines of requirements.txt above its "-- test and quality tools" marker are installed:
# test runners, linters, stubs and benchmark tools stay out of the production image.
# The build context is the repo root; .ci/airflow.Dockerfile.dockerignore keeps it to the two
# files copied here. Built by `docker compose build` (or `up`), never by hand.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt .ci/constraints.txt /tmp/lean-airflow/
RUN sed '/^# -- test and quality tools/,$d' /tmp/lean-airflow/requirements.txt > /tmp/lean-airflow/runtime.txt \
 && pip install --no-cache-dir -r /tmp/lean-airflow/runtime.txt -c /tmp/lean-airflow/constraints.txt
