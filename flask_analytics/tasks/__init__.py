"""RQ jobs, queueing, the worker, the scheduler and the status report.

Modules: :mod:`.jobs` (the job entry points, enqueued by dotted path), :mod:`.enqueue`
(the Redis connection, deterministic job ids, ``enqueue_*``), :mod:`.worker`,
:mod:`.scheduler`, :mod:`.status` (``flask analytics status``) and :mod:`.queueing`
(inline or queued). Only the last two can be imported without the ``redis`` extra; this
facade imports nothing, so importing the package never needs rq.
"""
