"""The built trackers: size budget, and the committed files are fresh builds of the source."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import pytest

from ..support.processes import ROOT

STATIC = ROOT / "flask_analytics" / "static" / "analytics"
BUILD_DIR = ROOT / "tracker"
#: Bytes of each build once gzipped (Plausible's script is about 1.9 KB).
BUDGET = 2000
#: The builds pages load: automatic pageviews, and pageviews sent with fa.pageview.
BUILDS = ("tracker.min.js", "tracker.manual.min.js")


@pytest.mark.parametrize("name", BUILDS)
def test_minified_tracker_is_within_the_gzipped_size_budget(name):
    built = (STATIC / name).read_bytes()
    size = len(gzip.compress(built, compresslevel=9))
    assert size <= BUDGET, f"{name} is {size} bytes gzipped, budget {BUDGET}"


@pytest.mark.parametrize("name", BUILDS)
def test_minified_tracker_is_one_line_without_comments_or_debug_output(name):
    built = (STATIC / name).read_text("utf-8")
    assert built.count("\n") == 1
    assert "console." not in built  # debug mode lives in the readable tracker.js only
    assert "/*" not in built
    assert "sourceMappingURL" not in built
    assert "BUILD" not in built  # fixed at build time


def test_the_builds_differ_only_in_how_pageviews_start():
    auto = (STATIC / "tracker.min.js").read_text("utf-8")
    manual = (STATIC / "tracker.manual.min.js").read_text("utf-8")
    assert "pushState" in auto
    assert "pushState" not in manual
    assert "pageview=" in manual
    assert "pageview=" not in auto


def test_source_has_no_storage_or_fingerprinting_apis():
    source = (STATIC / "tracker.js").read_text("utf-8")
    code = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith(("*", "/*", "//"))
    )
    for api in ("document.cookie", "sessionStorage", "indexedDB", "getContext", "AudioContext",
                "WebGL", "navigator.plugins", "hardwareConcurrency", "deviceMemory"):  # fmt: skip
        assert api not in code, api
    assert code.count("localStorage") == 1  # full mode only


def test_committed_minified_tracker_equals_a_fresh_build():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot rebuild tracker.min.js")
    if not (BUILD_DIR / "node_modules" / "terser").is_dir():
        pytest.skip("tracker/node_modules is missing: run `npm ci` in tracker/ to check the build")
    result = subprocess.run(
        [node, "build.mjs", "--check"], cwd=BUILD_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr + result.stdout
