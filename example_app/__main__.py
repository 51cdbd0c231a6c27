"""Run the example site: `python -m example_app` (PORT, HOST from the environment)."""

from __future__ import annotations

import os

from . import create_app

app = create_app()

if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    host = os.environ.get("HOST", "127.0.0.1")
    print(f" * Site:      http://{host}:{port}/")
    print(
        f" * Dashboard: http://{host}:{port}/analytics/ (password: {app.config['ADMIN_PASSWORD']})"
    )
    app.run(host=host, port=port)
