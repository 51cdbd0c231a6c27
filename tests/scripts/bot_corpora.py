"""User agent corpora from maintained packages, for measuring the bot detector.

Browsers (false positives):
  * ``fake-useragent``: ``data/browsers.jsonl``, real-world browser user agents with their
    share of traffic (``percent``), deduplicated.
  * ``device-detector`` (the Python port of Matomo's Device Detector): its upstream test
    fixtures (``tests/fixtures/upstream/*.yml``), every user agent whose client is a
    browser: phones, tablets, desktops, TVs, consoles, feature phones, old and exotic.

Crawlers (recall):
  * ``crawler-user-agents``: the ``instances`` of its JSON. Our detector uses that list's
    patterns, so this one is not independent.
  * ``device-detector``: Matomo's ``bots.yml`` fixture, an independent corpus. It is split
    in two halves by a hash of the string: the rules of ``ingest/useragent.py`` were
    written while looking at misses of the "dev" half only, so the "held-out" half says
    how the rules generalise.

Every loader raises ``LookupError`` naming the package when it is not installed.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any


@dataclass(frozen=True)
class Browsers:
    """Unique browser user agents, with a traffic weight when the corpus has one."""

    name: str
    agents: dict[str, float]


def _package_files(package: str) -> Traversable:
    try:
        return importlib.resources.files(package)
    except ModuleNotFoundError as exc:
        raise LookupError(f"the {package!r} package is not installed (dev extra)") from exc


def _yaml(text: str) -> Any:
    try:
        import yaml_rs  # device-detector's own YAML reader
    except ModuleNotFoundError as exc:
        raise LookupError("yaml-rs (a dependency of device-detector) is not installed") from exc
    return yaml_rs.loads(text)


def _fixtures() -> Traversable:
    return _package_files("device_detector") / "tests" / "fixtures" / "upstream"


def fake_useragent_browsers() -> Browsers:
    path = _package_files("fake_useragent") / "data" / "browsers.jsonl"
    agents: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            ua = entry["useragent"]
            agents[ua] = agents.get(ua, 0.0) + float(entry.get("percent") or 0.0)
    return Browsers("fake-useragent browsers.jsonl", agents)


def matomo_browsers() -> Browsers:
    agents: dict[str, float] = {}
    for fixture in sorted(_fixtures().iterdir(), key=lambda f: f.name):
        if not fixture.name.endswith(".yml") or fixture.name == "bots.yml":
            continue
        for entry in _yaml(fixture.read_text(encoding="utf-8")) or []:
            client = entry.get("client")
            ua = entry.get("user_agent")
            if ua and isinstance(client, dict) and client.get("type") == "browser":
                agents.setdefault(str(ua), 1.0)
    return Browsers("Matomo Device Detector fixtures (browsers)", agents)


def crawler_list_instances() -> list[str]:
    try:
        import crawleruseragents
    except ModuleNotFoundError as exc:  # pragma: no cover - a hard dependency
        raise LookupError("the 'crawler-user-agents' package is not installed") from exc
    return sorted(
        {ua for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for ua in entry["instances"]}
    )


def matomo_bots() -> list[str]:
    entries = _yaml((_fixtures() / "bots.yml").read_text(encoding="utf-8"))
    return sorted({str(entry["user_agent"]) for entry in entries if entry.get("user_agent")})


def is_dev_half(ua: str) -> bool:
    """The fixed half of a corpus that rules may be tuned on (the other is held out)."""
    return hashlib.blake2b(ua.encode("utf-8", "surrogatepass")).digest()[0] % 2 == 0
