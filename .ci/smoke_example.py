"""Start the example site as the README says and check it answers with a populated dashboard."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

PORT = int(os.environ.get("SMOKE_PORT", "5057"))
BASE = f"http://127.0.0.1:{PORT}"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PORT": str(PORT),
            "DATABASE_URL": f"sqlite:///{tmp}/example.db",
            "EXAMPLE_DEMO_DAYS": "14",
        }
        proc = subprocess.Popen([sys.executable, "-m", "example_app"], env=env)
        try:
            opener = urllib.request.build_opener(
                urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
            )
            deadline = time.monotonic() + 300
            while True:
                try:
                    home = opener.open(BASE + "/", timeout=5).read().decode()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        print("example app did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.5)
            assert "/_analytics/script.js" in home, "tracker missing from the home page"
            login = opener.open(BASE + "/login").read().decode()
            token = re.search(r'name="csrf" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
            data = urllib.parse.urlencode({"csrf": token, "password": "admin"}).encode()
            opener.open(BASE + "/login", data=data).read()
            page = opener.open(BASE + "/analytics/?period=7d").read().decode()
            assert "Visitors" in page, "dashboard did not render"
            stats = json.loads(opener.open(BASE + "/analytics/api/stats?period=7d").read())
            pageviews = stats["totals"]["pageviews"]
            assert pageviews > 0, "dashboard has no data"
            print(f"example app OK: dashboard shows {pageviews} pageviews over 7 days")
            return 0
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
