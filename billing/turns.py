"""A check and the write it guards, taken in turns where there is no row yet to lock (the first
application of a company, a program's name): transactions that pass the same key run one after
the other to their commit, so the second's check sees what the first wrote (a double click, a
form sent twice at once). PostgreSQL: an advisory lock held to the end of the transaction.
SQLite writes one transaction at a time anyway.

`in_turn` holds a key for a block instead (a page's POST: what the page shows is read before
its service's transaction begins)."""

from contextlib import contextmanager

from django.db import connection


def take_turns(scope: str, key: str) -> None:
    """Wait for any other transaction holding (`scope`, `key`), then hold it to the commit."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("select pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", [scope, key])


@contextmanager
def in_turn(scope: str, key: str):
    """Wait for any other connection in the block for (`scope`, `key`), then hold it for the
    block, whatever transactions the block opens and commits: the block's reads, taken before
    any transaction, see what the other block committed. It is the block's first lock, or its
    second taken after a page's row's (`ServiceAdmin._turns`: a workspace's key always last),
    so two waiting blocks can never wait on each other."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("select pg_advisory_lock(hashtext(%s), hashtext(%s))", [scope, key])
    try:
        yield
    finally:
        if connection.is_usable():  # a connection lost meanwhile took its locks with it
            with connection.cursor() as cursor:
                cursor.execute(
                    "select pg_advisory_unlock(hashtext(%s), hashtext(%s))", [scope, key]
                )
