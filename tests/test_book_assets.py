"""What every built page loads: each script once, and a favicon. A one-page book is built with the project's
_config.yml (its extensions, theme and static files) and checked where a browser would trip on it."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def repeated_scripts(html: str) -> list[str]:
    """The ``<script>`` tags of a page that appear more than once (inline bodies and files alike)."""
    tags = re.findall(r"<script\b[^>]*>.*?</script>", html, re.S)
    return sorted({t for t in tags if tags.count(t) > 1})


def test_a_repeated_script_is_found():
    page = '<script>const A = 1</script><script src="x.js"></script><script>const A = 1</script>'
    assert repeated_scripts(page) == ["<script>const A = 1</script>"]


@pytest.fixture(scope="module")
def one_page_book(tmp_path_factory):
    """The project's _config.yml and book/ folder with a table of contents of one page, built."""
    root = tmp_path_factory.mktemp("onepage")
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("executed", "chapters", "figures",
                                                                                "mae-live"))
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (root / "book" / "page.md").write_text("# A page\n\nText {cite}`he2022mae`.\n\n"
                                           "## References\n\n```{bibliography}\n:all:\n```\n")
    exe = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(exe) if exe.exists() else "jupyter-book", "build", str(root), "--builder", "html"],
                   check=True, cwd=root, capture_output=True)
    return root / "_build" / "html"


def test_each_script_is_on_a_page_once(one_page_book):
    """No `Identifier 'THEBE_JS_URL' has already been declared` in the console: thebe's inline config
    (and every other script) is included once."""
    html = (one_page_book / "book" / "page.html").read_text()
    assert html.count("THEBE_JS_URL") <= 1
    assert repeated_scripts(html) == []


def test_the_page_names_a_favicon_that_the_build_has(one_page_book):
    """Without one, the browser asks for /favicon.ico and logs a 404 on the first page it opens."""
    html = (one_page_book / "book" / "page.html").read_text()
    icon = re.search(r'<link rel="icon" href="([^"]+)"', html)
    assert icon and (one_page_book / "book" / icon.group(1)).resolve().is_file()


def test_a_first_visit_starts_in_a_valid_colour_mode(one_page_book):
    """Without a stored choice, the theme's first script fell back on an empty mode, which its code rejects
    with "Got invalid theme mode" in the console: the fallback is "auto" (the reader's system setting)."""
    html = (one_page_book / "book" / "page.html").read_text()
    fallbacks = re.findall(r'localStorage\.getItem\("(?:mode|theme)"\) \|\| "([^"]*)"', html)
    assert fallbacks and set(fallbacks) == {"auto"}, fallbacks


def test_the_page_has_one_search_box(one_page_book):
    """The tour found two search boxes: the sidebar's and the one pydata-sphinx-theme adds in a header bar
    of its own. The header keeps no search field (on a phone, the article header's search button remains)."""
    html = (one_page_book / "book" / "page.html").read_text()
    assert html.count('class="btn search-button-field') == 1, html.count('class="btn search-button-field')
    header = re.search(r'<header id="pst-header".*?</header>', html, re.S)
    assert header is None or "search-button" not in header.group(0)
    # the theme option is merged into those _config.yml's html section makes, not put in their place
    assert "Every number in this book comes from the run that built it." in html


def test_the_references_link_their_doi_and_arxiv_id(one_page_book):
    """Each DOI, arXiv id and url of references.bib is a link in the rendered bibliography."""
    from pybtex.database import parse_file

    html = (one_page_book / "book" / "page.html").read_text()
    entries = parse_file(str(ROOT / "book" / "references.bib")).entries
    wanted = {f"https://doi.org/{e.fields['doi']}" for e in entries.values() if "doi" in e.fields}
    wanted |= {f"https://arxiv.org/abs/{e.fields['eprint']}" for e in entries.values() if "eprint" in e.fields}
    wanted |= {e.fields["url"] for e in entries.values() if "url" in e.fields}
    assert len(wanted) >= 15
    links = set(re.findall(r'<a class="reference external" href="([^"]+)"', html))
    assert wanted - links == set()
