"""Helpers shared by test modules of several layers (each exists once, here).

``processes``: the repository root and polling (``wait_for``, ``wait_while_running``);
``servers``: private PostgreSQL and Redis servers on unix sockets; ``redis_keys``:
cleanup of a test's keys on the shared Redis; ``events``: raw events and daily rows
written and read straight through SQL; ``seeded_stats``: a seeded data set and the
numbers the reference computation expects from it; ``reference``: the pure-Python
daily rollups the SQL is checked against; ``schema``: empty analytics tables for each
app (kept and emptied on PostgreSQL instead of rebuilt); ``geo``: country ``.mmdb``
files built with mmdb-writer; ``browser``: a chromium page recording dialogs and errors.
"""
