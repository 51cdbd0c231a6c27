"""Bot detection figures: false positives, recall, and cost per user agent (not a test).

    python -m bench.bots

Corpora come from maintained packages (tests/scripts/bot_corpora.py: fake-useragent,
device-detector's Matomo fixtures, crawler-user-agents). For comparison it also runs the
detector as it was before the rules of ``_NOT_A_BROWSER``/``_NOT_BROWSER_SHAPED`` (the
automation regex, the crawler list and ua-parser only). tests/ingest/test_bots.py asserts the
goals; docs/reliability.md quotes these figures.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable

import crawleruseragents
import user_agents

from flask_analytics.ingest import useragent
from tests.scripts import bot_corpora

_OLD_AUTOMATION = re.compile(
    r"headless|phantomjs|slimerjs|lighthouse|pagespeed|puppeteer|playwright|"
    r"selenium|webdriver|cypress|prerender|python-|curl/|wget/|go-http-client|java/|okhttp|"
    r"axios/|node-fetch|httpclient|scrapy|libwww|aiohttp|httpx",
    re.IGNORECASE,
)


def previous_is_bot(ua: str) -> bool:
    """The detector before the shape and vocabulary rules (commit a3b75e4)."""
    if len(ua) < 8 or _OLD_AUTOMATION.search(ua) or crawleruseragents.is_crawler(ua):
        return True
    return bool(user_agents.parse(ua).is_bot)


def current_is_bot(ua: str) -> bool:
    return useragent.parse_user_agent(ua).is_bot


def rate(agents: list[str], detector: Callable[[str], bool]) -> tuple[int, float]:
    hits = sum(detector(ua[: useragent.UA_MAX]) for ua in agents)
    return hits, hits / len(agents)


def per_call_us(agents: list[str], func: Callable[[str], object]) -> float:
    start = time.perf_counter()
    for ua in agents:
        func(ua)
    return (time.perf_counter() - start) / len(agents) * 1e6


def main() -> None:
    browsers = [bot_corpora.fake_useragent_browsers(), bot_corpora.matomo_browsers()]
    matomo = bot_corpora.matomo_bots()
    crawlers = {
        "crawler-user-agents instances (the list we use)": bot_corpora.crawler_list_instances(),
        "Matomo bots.yml (independent)": matomo,
        "  dev half (rules tuned on its misses)": [
            ua for ua in matomo if bot_corpora.is_dev_half(ua)
        ],
        "  held-out half": [ua for ua in matomo if not bot_corpora.is_dev_half(ua)],
    }
    print("False positives (browsers dropped as bots): lower is better, goal <= 0.5%")
    for corpus in browsers:
        agents = list(corpus.agents)
        old, old_rate = rate(agents, previous_is_bot)
        new, new_rate = rate(agents, current_is_bot)
        print(
            f"  {corpus.name}: {len(agents):,} user agents: now {new} ({new_rate:.3%}), "
            f"before {old} ({old_rate:.3%})"
        )
    fua = browsers[0].agents
    total = sum(fua.values())
    weighted = sum(share for ua, share in fua.items() if current_is_bot(ua)) / total
    print(f"  fake-useragent weighted by traffic share: {weighted:.4%}")
    print("Recall (crawlers caught): higher is better, goal >= 95%")
    for name, agents in crawlers.items():
        old, old_rate = rate(agents, previous_is_bot)
        new, new_rate = rate(agents, current_is_bot)
        print(
            f"  {name}: {len(agents):,} user agents: now {new} ({new_rate:.2%}), "
            f"before {old} ({old_rate:.2%})"
        )
    sample = list(browsers[1].agents)[:3000] + crawlers[next(iter(crawlers))][:1000]
    useragent.is_bot(sample[0])  # compile the lazy regexes outside the timing
    print(f"Cost per user agent, {len(sample):,} distinct ones (uncached):")
    print(f"  rules before ua-parser (is_bot): {per_call_us(sample, useragent.is_bot):.0f} us")
    print(f"  previous detector: {per_call_us(sample, previous_is_bot):.0f} us")
    print(f"  parse_user_agent: {per_call_us(sample, useragent.parse_user_agent):.0f} us")
    cached = functools.lru_cache(maxsize=4096)(useragent.parse_user_agent)
    warm = sample[:1000]
    for ua in warm:
        cached(ua)
    print(f"  parse_user_agent, LRU cache hit: {per_call_us(warm, cached):.2f} us")


if __name__ == "__main__":
    main()
