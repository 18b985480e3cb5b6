"""A check and the write it guards, taken in turns where there is no row yet to lock (the first
application of a company, a program's name): transactions that pass the same key run one after
the other to their commit, so the second's check sees what the first wrote (a double click, a
form sent twice at once). PostgreSQL: an advisory lock held to the end of the transaction.
SQLite writes one transaction at a time anyway."""

from django.db import connection


def take_turns(scope: str, key: str) -> None:
    """Wait for any other transaction holding (`scope`, `key`), then hold it to the commit."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("select pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", [scope, key])
