"""User agent classification: bot or not, device type, browser and OS (with their major
versions).

A user agent is a bot when any of these says so, cheapest first:

1. fewer than 8 characters;
2. words and marks that no browser puts in its user agent: automation and HTTP-library
   markers (headless browsers, curl, python-requests...), a contact URL or address, the
   vocabulary of automated work (scan, check, monitor, fetch, crawl...), template or
   injection debris;
3. a shape no browser has: one bare product token, no digit at all, ``Mozilla/5.0`` with
   nothing but a parenthesis or a single word after it, extra words inside Chrome's
   ``(KHTML, like Gecko)``;
4. the maintained ``crawler-user-agents`` list (less two patterns that also match
   ordinary browsers);
5. ua-parser's ``Spider`` device family.

tests/ingest/test_bots.py measures this against corpora from maintained packages (false
positives on real browsers, recall on crawlers) and docs/reliability.md has the figures.
ua-parser's own resolver does the parsing (the native ``ua-parser-rs`` one, a dependency:
about 0.03 ms a string, against 2.5 ms for the pure-Python ``Parse`` that user-agents
calls), and user-agents' rules classify the device. The extension also wraps
:func:`parse_user_agent` in a per-app LRU cache; the raw user agent string itself is
never stored.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import crawleruseragents
import re2
import ua_parser
from user_agents.parsers import UserAgent, parse_browser, parse_device, parse_operating_system

#: Longest user agent looked at; real ones are far shorter, longer ones are abuse.
UA_MAX = 1000

#: Words and marks no browser's user agent contains, matched against the lowercased
#: string (each measured at zero false positives on the browser corpora of
#: tests/ingest/test_bots.py).
_NOT_A_BROWSER = re.compile(
    # automation, headless browsers and HTTP libraries
    r"headless|phantomjs|slimerjs|lighthouse|pagespeed|puppeteer|playwright|"
    r"selenium|webdriver|cypress|prerender|python-|curl/|wget/|go-http-client|java/|okhttp|"
    r"axios/|node-fetch|httpclient|scrapy|libwww|aiohttp|httpx|\bcurl\b|user.?agent|"
    # a way to contact the operator: browsers never carry one
    r"https?://|www\.|\+https?|@[a-z0-9-]+\.[a-z]|mailto:|\[at\]|"
    # the vocabulary of automated work
    r"scan|probe|recon\b|audit|survey|research|experiment|"
    r"check|monitor|validat|uptime|health|diagnos|observatory|inspect|synthetic|"
    r"lookup|preview|thumbnail|crawl|spider(?! \d)|scrap|harvest|extract|fetch|"
    r"feed|rss\b|subscriber|reader|transcoder|advisor|incompatible|"
    # template placeholders and injection attempts
    r"\$\{|\{\{|<\?|<script"
)

#: User agents built unlike any browser's (case-sensitive).
_NOT_BROWSER_SHAPED = re.compile(
    # words inside Chrome's "(KHTML, like Gecko)", Google's fetchers ("Google-Site-Verification")
    r"like Gecko;(?! ?Opera)|Google-|google_|"
    # "Mozilla/5.0 (anything)" with no engine or browser after it (old IE aside)
    r"^Mozilla/\d\.\d \((?![^)]*(?:MSIE|Trident|like Mac OS X))[^)]*\)$|"
    # "Mozilla/5.0 Word" and a bare "Product/1.2"
    r"^Mozilla/\d\.\d [^\s(]+$|^[\w.-]+/v?[\w.-]+$|"
    # no version number anywhere (a few apps send bare Apple device names)
    r"^(?!i(?:Phone|Pod|Pad))\D*$"
)

#: Patterns of the crawler list that match ordinary browsers too: an Android 15 build id
#: shared by many phones, and Sogou, whose mobile browser says "SogouMobileBrowser"
#: (Sogou's crawlers say "spider", caught above).
_LIST_EXCEPTIONS = frozenset({r"AP3A\.240617\.008", "Sogou"})

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
    #: Major versions ("131"), None when unknown or not a plain number.
    browser_version: str | None = None
    os_version: str | None = None


BOT = UserAgentInfo(is_bot=True, device_type="other", browser=None, os=None)

#: A major version as stored: 1 to 6 ASCII digits, no leading zero but "0" itself.
_MAJOR = re.compile(r"0|[1-9][0-9]{0,5}")


def major_version(family: str | None, major: str | None) -> str | None:
    """``major`` when the family is known and it is a plain major version, else None (a
    version of an unknown browser tells nothing, and odd strings are spoofing)."""
    if not family or family == "Other" or major is None:
        return None
    return major if _MAJOR.fullmatch(major) else None


_EXCEPTED = re.compile("|".join(sorted(_LIST_EXCEPTIONS)))


class _AnyOf:
    """Regex alternatives searched as one: RE2 (a linear-time automaton, google-re2) runs
    the crawler list's 1,500 patterns about ten times faster than ``re``, which the
    package searches chunk by chunk; a pattern RE2 cannot take goes to ``re``."""

    def __init__(self, patterns: list[str]) -> None:
        fast, slow = [], []
        for pattern in patterns:
            try:
                re2.compile(pattern)
            except re2.error:
                slow.append(pattern)
            else:
                fast.append(pattern)
        options = re2.Options()
        options.max_mem = 64 << 20  # the combined automaton needs more than the 8 MiB default
        self._fast = re2.compile("|".join(fast), options) if fast else None
        self._slow = re.compile("|".join(slow)) if slow else None

    def search(self, text: str) -> bool:
        return bool(
            (self._fast is not None and self._fast.search(text))
            or (self._slow is not None and self._slow.search(text))
        )


@functools.cache
def _crawler_list(less_exceptions: bool) -> _AnyOf:
    """The crawler-user-agents patterns (but :data:`_LIST_EXCEPTIONS`)."""
    return _AnyOf(
        [
            entry["pattern"]
            for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA
            if not (less_exceptions and entry["pattern"] in _LIST_EXCEPTIONS)
        ]
    )


def _listed_crawler(ua: str) -> bool:
    if not _crawler_list(False).search(ua):
        return False
    # Rare: decide without the excepted patterns.
    return not _EXCEPTED.search(ua) or _crawler_list(True).search(ua)


def is_bot(ua: str) -> bool:
    """Whether ``ua`` is a bot's by the rules before ua-parser (see the module doc)."""
    return bool(
        len(ua) < 8
        or _NOT_A_BROWSER.search(ua.lower())
        or _NOT_BROWSER_SHAPED.search(ua)
        or _listed_crawler(ua)
    )


def _display_name(value: str | None, names: dict[str, str]) -> str | None:
    """ua-parser's family as shown (renamed by ``names``, at most 64 characters); None
    when unknown."""
    if not value or value == "Other":
        return None
    return names.get(value, value)[:64]


class _ParsedAgent(UserAgent):  # type: ignore[misc]
    """user-agents' ``UserAgent`` (its device rules) over ua-parser's fastest resolver,
    with the values its legacy ``Parse`` gives ("Other" for an unknown family)."""

    def __init__(self, ua: str) -> None:
        result = ua_parser.parse(ua)
        browser, system, device = result.user_agent, result.os, result.device
        self.ua_string = ua
        self.browser = (
            parse_browser(browser.family, browser.major, browser.minor, browser.patch)
            if browser is not None
            else parse_browser("Other")
        )
        self.os = (
            parse_operating_system(
                system.family, system.major, system.minor, system.patch, system.patch_minor
            )
            if system is not None
            else parse_operating_system("Other")
        )
        self.device = (
            parse_device(device.family, device.brand, device.model)
            if device is not None
            else parse_device("Other", None, None)
        )
        #: ua-parser's major versions of the browser and the OS (None: unknown).
        self.major_versions = (
            browser.major if browser is not None else None,
            system.major if system is not None else None,
        )


def parse_user_agent(ua: str) -> UserAgentInfo:
    """Classify a user agent string (already truncated to :data:`UA_MAX`)."""
    if is_bot(ua):
        return BOT
    parsed = _ParsedAgent(ua)
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
        browser=_display_name(parsed.browser.family, _BROWSER_NAMES),
        os=_display_name(parsed.os.family, _OS_NAMES),
        browser_version=major_version(parsed.browser.family, parsed.major_versions[0]),
        os_version=major_version(parsed.os.family, parsed.major_versions[1]),
    )
