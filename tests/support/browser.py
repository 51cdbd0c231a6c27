"""A chromium page that records what a dashboard test must not see: dialogs and errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def recording_page(browser: Any, **context_options: Any) -> Iterator[Any]:
    """A page in a new browser context (``context_options``: viewport, downloads...) whose
    ``dialogs`` lists the messages of the dialogs it dismissed and ``errors`` the console
    errors (CSP violations among them) and uncaught exceptions; the context is closed
    after."""
    context = browser.new_context(**context_options)
    tab = context.new_page()
    tab.dialogs = []
    tab.errors = []

    def on_dialog(dialog: Any) -> None:
        tab.dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.on("console", lambda msg: tab.errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
