# The Airflow image of docker-compose.yaml: the official image, pinned to requirements.txt's
# apache-airflow version, plus this project's requirements under .ci/constraints.txt (the way
# Airflow's "Running Airflow in Docker" guide adds packages; not _PIP_ADDITIONAL_REQUIREMENTS).
# The build context is the repo root; .ci/airflow.Dockerfile.dockerignore keeps it to the two
# files copied here. Built by `docker compose build` (or `up`), never by hand.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt .ci/constraints.txt /tmp/lean-airflow/
RUN pip install --no-cache-dir -r /tmp/lean-airflow/requirements.txt -c /tmp/lean-airflow/constraints.txt
