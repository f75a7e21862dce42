"""Every smoke-size report opens in a real headless Chromium: no console error, every image decoded,
nothing fetched from the network, no page-wide horizontal overflow; a full-page screenshot of each is
saved to ``test-artifacts/report-NAME.png`` (git-ignored; ``$GNNDYN_TEST_ARTIFACTS`` moves it).

Chromium comes from Debian's ``chromium`` package, installed by the session fixture with apt-get when it
is missing and this process is root; otherwise the tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from browser import Browser, find_or_install_chromium
from gnndyn.errors import GnndynError
from gnndyn.experiments import REGISTRY, get_experiment, make_spec, run_experiment

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GNNDYN_TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(scope="session")
def browser():
    binary, why = find_or_install_chromium()
    if binary is None:
        pytest.skip(f"no headless browser: {why}")
    b = Browser(binary)
    yield b
    b.close()


def _smoke_run(name: str, registry: dict, tmp_path_factory, request) -> Path:
    """A smoke-size run folder of ``name``: one the documentation test made, else a fresh one."""
    for key, folder in registry.items():
        if json.loads(key)[0] == name and (Path(folder) / "report.html").exists():
            return Path(folder)
    try:
        os.environ["GNNDYN_DATA_ROOT"] = str(request.getfixturevalue("data_root"))
    except pytest.skip.Exception:
        pass
    folder = tmp_path_factory.mktemp(f"smoke-{name}") / "run"
    try:
        run_experiment(make_spec(name, get_experiment(name).smoke), folder)
    except GnndynError as exc:
        if "cannot load" in str(exc):
            pytest.skip(f"{name} needs Planetoid data: {str(exc).splitlines()[0]}")
        raise
    registry[json.dumps([name, "smoke"])] = folder
    return folder


def _problems(res: dict, n_figures: int) -> list[str]:
    out = []
    out += [f"console {m['type']}: {[a.get('value', a.get('description')) for a in m.get('args', [])]}" for m in res["console"]]
    out += [f"exception: {e.get('text')} {e.get('exception', {}).get('description', '')}" for e in res["exceptions"]]
    out += [f"log error: {e.get('text')} ({e.get('url', '')})" for e in res["log_errors"]]
    out += [f"failed load: {f.get('errorText')}" for f in res["failed_loads"]]
    out += [f"network request: {u}" for u in res["remote_requests"]]
    bad = [i["alt"] for i in res["images"] if not i["ok"]]
    if bad:
        out.append(f"images not decoded: {bad}")
    if len(res["images"]) != n_figures:
        out.append(f"{len(res['images'])} images on the page for {n_figures} figures")
    lay = res["layout"]
    if lay["page"] > lay["window"]:
        out.append(f"the page is {lay['page']} px wide in a {lay['window']} px window (something overflows)")
    return out


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_smoke_report_reads_in_a_browser(name, browser, smoke_run_registry, tmp_path_factory, request, monkeypatch,
                                         one_thread):
    monkeypatch.setenv("GNNDYN_DATA_ROOT", os.environ.get("GNNDYN_DATA_ROOT", ""))  # restored after the test
    folder = _smoke_run(name, smoke_run_registry, tmp_path_factory, request)
    shot = ARTIFACTS / f"report-{name}.png"
    res = browser.open(folder / "report.html", screenshot=shot)
    n_figures = len(list((folder / "figures").glob("*.png")))
    assert n_figures > 0
    assert not _problems(res, n_figures), f"{name}: " + "; ".join(_problems(res, n_figures))
    assert res["layout"]["title"] == f"gnndyn — {name}"
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_browser_checks_catch_a_broken_page(browser, tmp_path):
    """A page with an undecodable image, a console error, a thrown exception and a remote image fails
    every check the report test makes (so those checks can fail)."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>bad</title></head><body>"
                    "<img alt='broken' src='data:image/png;base64,AAAA'>"
                    "<img alt='remote' src='http://example.invalid/x.png'>"
                    "<div style='width:3000px'>wide</div>"
                    "<script>console.error('boom'); throw new Error('thrown');</script></body></html>")
    res = browser.open(page, screenshot=tmp_path / "bad.png")
    problems = _problems(res, 2)
    assert any(p.startswith("console error") and "boom" in p for p in problems)
    assert any(p.startswith("exception") and "thrown" in p for p in problems)
    assert any("example.invalid" in p for p in problems if p.startswith("network request"))
    assert any(p.startswith("images not decoded") and "broken" in p and "remote" in p for p in problems)
    assert any("overflows" in p for p in problems)
