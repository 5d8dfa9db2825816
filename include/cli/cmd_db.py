"""``db upgrade``: apply the audit database migrations (Alembic) to ``$LEAN_AIRFLOW_DB_URL``."""

from __future__ import annotations

import argparse
from typing import Any

from include.cli import print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="audit database maintenance")
    actions = parser.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="migrate the audit database to the latest revision")
    upgrade.add_argument("--url", help="SQLAlchemy URL (default $LEAN_AIRFLOW_DB_URL or the artifact-root SQLite)")
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(handler=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    from include.audit.db import current_revision, upgrade_database
    from include.audit.db_errors import audit_db_errors

    with audit_db_errors(args.url):
        url = upgrade_database(args.url, args.revision)
        revision = current_revision(args.url)
    print_json({"url": url, "revision": revision})
    return 0
