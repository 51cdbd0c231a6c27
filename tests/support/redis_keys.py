"""One test's keys and queue on the shared Redis server (other runs use it too)."""

from __future__ import annotations

from flask import Flask
from redis import Redis
from rq import Queue


def delete_keys(connection: Redis, prefix: str) -> None:
    """Delete the keys that start with ``prefix`` (a test's own stream), and only those."""
    keys = list(connection.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        connection.delete(*keys)


def delete_queue_keys(connection: Redis, token: str) -> None:
    """Delete the RQ keys and registry members of one test's queue, and only those."""
    keys = list(connection.scan_iter(match=f"*{token}*", count=1000))
    if keys:
        connection.delete(*keys)
    for name in ("rq:queues", "rq:workers"):
        members = [m for m in connection.smembers(name) if token.encode() in m]
        if members:
            connection.srem(name, *members)
    for name in ("rq:cron_jobs", "rq:cron_schedulers"):
        members = [m for m in connection.zrange(name, 0, -1) if token.encode() in m]
        if members:
            connection.zrem(name, *members)


def queue_of(app: Flask) -> Queue:
    """The RQ queue the app's jobs go to (on its ``ANALYTICS_REDIS_URL``)."""
    connection = Redis.from_url(app.config["ANALYTICS_REDIS_URL"])
    return Queue(app.config["ANALYTICS_QUEUE"], connection=connection)
