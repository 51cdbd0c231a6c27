"""User agent classification: bot or not, device type, browser and OS.

Parsing costs about a millisecond, so the extension wraps :func:`parse_user_agent` in a
per-app LRU cache; the raw user agent string itself is never stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import crawleruseragents
import user_agents

#: Longest user agent looked at; real ones are far shorter, longer ones are abuse.
UA_MAX = 1000

#: Automation and headless markers that the crawler list does not cover.
_AUTOMATION = re.compile(
    r"headless|phantomjs|slimerjs|lighthouse|pagespeed|puppeteer|playwright|"
    r"selenium|webdriver|cypress|prerender|python-|curl/|wget/|go-http-client|java/|okhttp|"
    r"axios/|node-fetch|httpclient|scrapy|libwww|aiohttp|httpx",
    re.IGNORECASE,
)

_BROWSER_NAMES = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Samsung Internet": "Samsung Internet",
}

_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """What the dashboards show of a user agent."""

    is_bot: bool
    device_type: str
    browser: str | None
    os: str | None


BOT = UserAgentInfo(is_bot=True, device_type="other", browser=None, os=None)


def _label(value: str | None, names: dict[str, str]) -> str | None:
    if not value or value == "Other":
        return None
    return names.get(value, value)[:64]


def parse_user_agent(ua: str) -> UserAgentInfo:
    """Classify a user agent string (already truncated to :data:`UA_MAX`)."""
    if len(ua) < 8 or _AUTOMATION.search(ua) or crawleruseragents.is_crawler(ua):
        return BOT
    parsed = user_agents.parse(ua)
    if parsed.is_bot:
        return BOT
    if parsed.is_tablet:
        device = "tablet"
    elif parsed.is_mobile:
        device = "mobile"
    elif parsed.is_pc:
        device = "desktop"
    else:
        device = "other"
    return UserAgentInfo(
        is_bot=False,
        device_type=device,
        browser=_label(parsed.browser.family, _BROWSER_NAMES),
        os=_label(parsed.os.family, _OS_NAMES),
    )
