"""``[core] hostname_callable`` of the Celery test workers (tests/celery_stack.py).

Every worker of the test stack runs on this one machine, so the FQDN Airflow records as a task
instance's hostname would be the same for all of them. Each worker's environment names it instead,
and the task runner (``airflow.sdk.api.client.get_hostname``) records that name. No other import
here: the task runner imports this module in every task process.
"""

from __future__ import annotations

import os
import socket

WORKER_NAME_ENV = "CELERY_TEST_WORKER_NAME"


def worker_hostname() -> str:
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()
