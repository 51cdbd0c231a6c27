"""Entry points the tests run in subprocesses."""
