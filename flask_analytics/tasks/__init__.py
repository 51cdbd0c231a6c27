"""RQ jobs, queueing, the worker, the scheduler and the status report."""
