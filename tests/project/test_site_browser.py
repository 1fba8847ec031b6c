"""The documentation site and the notebook views in a real browser.

The site built by ``mkdocs build --strict`` (the session's ``built_site``) is served on
127.0.0.1 and every page is opened in headless chromium driven by playwright; so is an HTML file
of the ``_repr_html_`` of a repository, a proposal, a sample, its spice and a cooked dataset.
A test fails on a console error or an uncaught exception, an internal link to a missing page or
anchor, an image that does not load, or an executed code block whose output is missing or empty.

The browser: ``$EQEGS_CHROMIUM``, else ``chromium`` (Debian's package) or ``chromium-browser``
or ``google-chrome`` on the PATH, else playwright's own download. Without playwright (the
``test`` extra) or any of these the tests skip and say which is missing; with
``EQEGS_REQUIRE_BROWSER=1`` (CI) they fail instead.
"""
import functools
import html
import http.server
import os
import re
import shutil
import threading
import urllib.parse
import urllib.request

import pytest

from tests.helpers import ROOT
from tests.helpers.cooktrees import PROPOSAL, seeded_tree


def no_browser(reason):
    """Skip, saying why -- or fail where a browser is required (``EQEGS_REQUIRE_BROWSER=1``, as in CI)."""
    if os.environ.get("EQEGS_REQUIRE_BROWSER") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


try:
    from playwright import sync_api
except ImportError:
    sync_api = None

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
FENCE = re.compile(r"^[ \t]*```[ \t]*([^\n`]*)$", re.M)


def chromium_path():
    """The chromium executable to use, or None for playwright's own browser."""
    named = os.environ.get("EQEGS_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    if sync_api is None:
        no_browser("no browser test: playwright is not installed (pip install playwright; the test extra has it)")
    with sync_api.sync_playwright() as playwright:
        executable = chromium_path()
        try:
            launched = playwright.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        except Exception as exc:  # no browser on this machine: say so and skip
            tried = f"chromium at {executable}" if executable else "playwright's own chromium (none on the PATH)"
            no_browser(f"no browser for the site test: {tried} could not be started "
                        f"({str(exc).splitlines()[0]}); install Debian's chromium (apt-get install "
                        "chromium) or set EQEGS_CHROMIUM")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def served(built_site):
    """The site on http://127.0.0.1:<port>/ (a server thread; the search index loads over HTTP)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(built_site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def open_page(browser, url):
    """(page, problems): the page loaded, with its console errors and uncaught exceptions."""
    page = browser.new_page()
    problems = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url} "
                                                             f"({request.failure})"))
    page.goto(url, wait_until="load")
    return page, problems


BROKEN_IMAGES = "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"


def expected_code_boxes(markdown):
    """How many code boxes a page of executed blocks shows: one per plain block, and for a block
    with exec="on" one for its source (``source=``) plus one for its output (``result=``)."""
    openings = [match.group(1) for i, match in enumerate(FENCE.finditer(markdown)) if i % 2 == 0]
    boxes = 0
    for info in openings:
        if 'exec="on"' in info:
            boxes += ("source=" in info) + ("result=" in info)
        else:
            boxes += 1
    return boxes


def page_url(base, markdown_path):
    relative = markdown_path.relative_to(ROOT / "docs").with_suffix("").as_posix()
    if relative == "index":
        return base
    return base + (relative[:-len("index")] if relative.endswith("/index") else relative + "/")


def test_every_page_loads_without_errors_with_its_images_links_and_outputs(browser, served):
    pages = sorted((ROOT / "docs").rglob("*.md"))
    ids, links, failures = {}, set(), []
    for markdown_path in pages:
        url = page_url(served, markdown_path)
        page, problems = open_page(browser, url)
        name = markdown_path.relative_to(ROOT / "docs").as_posix()
        failures += [f"{name}: {p}" for p in problems]
        failures += [f"{name}: image does not load: {src}" for src in page.evaluate(BROKEN_IMAGES)]
        ids[url] = set(page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)"))
        for href in page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)"):
            if href.startswith(served):
                links.add((name, href))
        boxes = page.evaluate("[...document.querySelectorAll('article div.highlight code')].map(c => c.textContent)")
        failures += [f"{name}: a code block shows nothing (an executed block without output)"
                     for text in boxes if not text.strip()]
        markdown = markdown_path.read_text()
        if 'exec="on"' in markdown and len(boxes) != expected_code_boxes(markdown):
            failures.append(f"{name}: {len(boxes)} code boxes, expected {expected_code_boxes(markdown)} "
                            "(an executed block shows no output)")
        page.close()
    for name, href in sorted(links):
        target, _, anchor = href.partition("#")
        target = target.split("?")[0]
        if target not in ids and not served_file_exists(target):  # a file: figure, css, search index
            failures.append(f"{name}: broken link {href}")
        elif target in ids and anchor and urllib.parse.unquote(anchor) not in ids[target]:
            failures.append(f"{name}: link to a missing anchor {href}")
    assert len(ids) == len(pages)
    assert not failures, "\n".join(failures)


def served_file_exists(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    """The page checks above fail on what they are meant to catch."""
    (tmp_path / "bad.html").write_text(
        '<html><body><article><img src="missing.png"><div class="highlight"><pre><code>\n</code></pre></div>'
        '</article><script>console.error("boom"); undefined_function();</script></body></html>')
    page, problems = open_page(browser, (tmp_path / "bad.html").as_uri())
    assert any("boom" in p for p in problems) and any("undefined_function" in p for p in problems)
    assert page.evaluate(BROKEN_IMAGES)
    assert expected_code_boxes('```python exec="on" source="above" result="text"\nprint(1)\n```\n'
                               '```python exec="on" html="on"\nprint(2)\n```\n```bash\nls\n```\n') == 3
    page.close()


@pytest.fixture(scope="module")
def views_html(tmp_path_factory):
    """An HTML file of the notebook views of a small cooked tree (tests/helpers/cooktrees)."""
    base = tmp_path_factory.mktemp("views")
    repo = seeded_tree(base / "tree", n_frames=128)
    proposal = repo[PROPOSAL]
    sample = proposal["S001"]
    cooked = sample.cooked
    parts = [("repository", repo), ("proposal", proposal), ("sample", sample), ("sample.spice", sample.spice),
             ("cooked dataset", cooked)]
    body = "".join(f'<section id="{name.replace(" ", "-")}"><h2>{html.escape(name)}</h2>'
                   f'{obj._repr_html_()}</section>' for name, obj in parts)
    path = base / "views.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>views</title></head>"
                    f"<body>{body}</body></html>")
    return path, [name.replace(" ", "-") for name, _ in parts]


def test_notebook_views_render_in_a_browser(browser, views_html):
    path, sections = views_html
    page, problems = open_page(browser, path.as_uri())
    assert not problems, problems
    assert not page.evaluate(BROKEN_IMAGES)
    for section in sections:
        shown = page.evaluate(f"document.getElementById('{section}').innerText")
        height = page.evaluate(f"document.getElementById('{section}').getBoundingClientRect().height")
        assert len(shown.strip()) > len(section) + 20 and height > 40, f"the {section} view shows nothing"
    shown = page.evaluate("document.body.innerText")
    assert "S001" in shown and PROPOSAL in shown and "Data variables" in shown
    assert "tau_error" in page.evaluate("document.body.textContent")  # in the folded variable list
    broken = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"
                           ".filter(h => !h.startsWith('http') && !h.startsWith('#') && !h.startsWith('file:'))")
    assert not broken, f"links the views cannot follow: {broken}"
    page.close()


def live_row(growth):
    """A watch history row of the ``growth``-th cook of S001 (tau 100 + growth ns, error 20 / sqrt(growth + 1))."""
    return {"time": f"2026-01-01T10:0{growth}:00", "proposal": PROPOSAL, "sample": "S001",
            "n_trains": 10 * (growth + 1), "exposure_s": 60.0 * (growth + 1), "tau_ns": 100.0 + growth,
            "tau_err_ns": 20.0 / (growth + 1) ** 0.5, "f_q": 0.7, "f_q_err": 0.05, "status": "ok",
            "fingerprint": f"f{growth}", "projected_exposure_s": 960.0}


def test_the_live_page_shows_the_newest_numbers_and_reloads_itself(browser, tmp_path_factory):
    """The page of ``eqegs watch --live-page`` (docs/reanalysis.md#live-view), written from a
    synthetic history and a cooked sample, opened from file://; rewritten with a newer row, it
    shows the new tau after its own reload, with no console error and no failed request."""
    import pandas as pd

    from eqegs_repo.live_page import LivePage

    base = tmp_path_factory.mktemp("live")
    sample = seeded_tree(base / "tree", n_frames=128)[PROPOSAL]["S001"]
    sample.cook("e_spectrum_and_isf")
    write = LivePage(base / "live.html", refresh_s=1)
    rows = [live_row(0)]
    write(pd.DataFrame(rows), sample, rows[-1])
    page, problems = open_page(browser, (base / "live.html").as_uri())
    assert "100 ± 20 ns" in page.inner_text("table")
    assert page.evaluate("document.images.length") == 2 and not page.evaluate(BROKEN_IMAGES)
    rows.append(live_row(1))
    write(pd.DataFrame(rows), sample, rows[-1])
    page.wait_for_function("document.querySelector('table') && "
                           "document.querySelector('table').innerText.includes('101 ± 14 ns')", timeout=15_000)
    assert "100 ± 20 ns" not in page.inner_text("table")
    assert page.evaluate("document.images.length") == 2 and not page.evaluate(BROKEN_IMAGES)
    assert not problems, problems
    page.close()
