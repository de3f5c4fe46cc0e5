"""CITATION.cff follows the Citation File Format 1.2.0, names the paper as the paper prints it, and
agrees with LICENSE and with the BibTeX in the book's introduction.

The schema below is the part of the CFF 1.2.0 schema that this file uses, written from the format's
schema guide: the required keys, no unknown keys (at the top, in a reference, in a person or an
entity), the version and date patterns and the reference types. (cffconvert, the format's own
validator, pins jsonschema below 4 and would downgrade the notebook stack's jsonschema.)
"""

import copy
import re

import jsonschema
import pytest
import yaml

from conftest import ROOT, SHARED

PERSON = {"type": "object", "additionalProperties": False,
          "properties": {k: {"type": "string", "minLength": 1} for k in (
              "family-names", "given-names", "name-particle", "name-suffix", "alias", "affiliation", "address",
              "city", "country", "email", "orcid", "post-code", "region", "tel", "fax", "website")}}
ENTITY = {"type": "object", "additionalProperties": False, "required": ["name"],
          "properties": {k: {"type": "string", "minLength": 1} for k in (
              "name", "alias", "address", "city", "country", "date-end", "date-start", "email", "fax", "location",
              "orcid", "post-code", "region", "tel", "website")}}
AUTHORS = {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"anyOf": [PERSON, ENTITY]}}
DATE = {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])$"}
REFERENCE_TYPES = ["art", "article", "audiovisual", "bill", "blog", "book", "catalogue", "conference",
                   "conference-paper", "data", "database", "dictionary", "edited-work", "encyclopedia",
                   "film-broadcast", "generic", "government-document", "grant", "hearing", "historical-work",
                   "legal-case", "legal-rule", "magazine-article", "manual", "map", "multimedia", "music",
                   "newspaper-article", "pamphlet", "patent", "personal-communication", "proceedings", "report",
                   "serial", "slides", "software", "software-code", "software-container", "software-executable",
                   "software-virtual-machine", "sound-recording", "standard", "statute", "thesis", "unpublished",
                   "video", "website"]
REFERENCE = {"type": "object", "required": ["authors", "title", "type"], "additionalProperties": False,
             "properties": {"authors": AUTHORS, "title": {"type": "string", "minLength": 1},
                            "type": {"enum": REFERENCE_TYPES}, "year": {"type": "integer"},
                            "journal": {"type": "string"}, "doi": {"type": "string"}, "url": {"type": "string"},
                            "date-released": DATE, "version": {"type": ["string", "number"]}}}
SCHEMA = {
    "type": "object",
    "required": ["authors", "cff-version", "message", "title"],
    "additionalProperties": False,
    "properties": {
        "cff-version": {"type": "string", "pattern": r"^1\.2\.0$"},
        "message": {"type": "string", "minLength": 1},
        "title": {"type": "string", "minLength": 1},
        "abstract": {"type": "string", "minLength": 1},
        "authors": AUTHORS,
        "type": {"enum": ["software", "dataset"]},
        "version": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}]},
        "date-released": DATE,
        "license": {"type": "string", "pattern": r"^[A-Za-z0-9.+-]+$"},  # one SPDX identifier
        "keywords": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "references": {"type": "array", "items": REFERENCE},
        "repository-code": {"type": "string"},
        "url": {"type": "string"},
        "doi": {"type": "string"},
        "commit": {"type": "string"},
    },
}
PAPER = "Masked Autoencoders Are More Than Scalable Vision Learners"


def load(text: str) -> dict:
    data = yaml.safe_load(text)
    if "date-released" in data:  # YAML reads an unquoted date as a date; the schema wants its text
        data["date-released"] = str(data["date-released"])
    return data


def errors(data: dict) -> list[str]:
    return [e.message for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(data)]


@pytest.fixture(scope="module")
def cff():
    return load((ROOT / "CITATION.cff").read_text())


def test_citation_file_is_valid_cff(cff):
    assert errors(cff) == []
    assert cff["version"] == "0.1.0" and cff["authors"] == [{"name": "The MAE study team"}]


@pytest.mark.parametrize("key", ["authors", "cff-version", "message", "title"])
def test_a_copy_without_a_required_key_is_refused(cff, key):
    broken = copy.deepcopy(cff)
    del broken[key]
    assert any(key in e for e in errors(broken))


@pytest.mark.parametrize("change", ["reference without type", "unknown key", "bad date", "old cff-version",
                                    "author with an unknown key"])
def test_other_broken_copies_are_refused(cff, change):
    broken = copy.deepcopy(cff)
    if change == "reference without type":
        del broken["references"][0]["type"]
    elif change == "unknown key":
        broken["year"] = 2026
    elif change == "bad date":
        broken["date-released"] = "27/11/2026"
    elif change == "old cff-version":
        broken["cff-version"] = "1.1.0"
    else:
        broken["references"][0]["authors"].append({"first-name": "Tze Jit"})
    assert errors(broken)


def test_the_paper_is_cited_as_it_is_printed(cff):
    """The reference's title and authors, in the order printed, with no year or venue invented."""
    paper = next(r for r in cff["references"] if r["title"] == PAPER)
    assert not {"year", "journal", "conference", "date-released", "doi"} & set(paper)
    names = [" ".join(filter(None, (a.get("family-names"), a.get("given-names")))) for a in paper["authors"]]
    assert names == ["Kho Tze Jit", "Chia Yi Min Matthew", "Liaw Zheng Kai", "Liu Han", "Muhammad Haidi Bin Azaman",
                     "Foong Xin Yu"]
    printed = sorted((SHARED.parent / "paper").glob("*.txt")) if (SHARED.parent / "paper").exists() else []
    if not printed:
        pytest.skip("the paper's text (shared/paper) is not here to compare the names with")
    head = printed[0].read_text()[:2000]
    assert PAPER in head
    positions = [head.index(n) for n in names]  # each name printed, in this order
    assert positions == sorted(positions)


def test_licence_file_agrees_with_the_citation(cff):
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 The MAE study team" in text
    assert cff["license"] == "MIT"
    assert "CC BY 4.0" in cff["message"]


def test_intro_bibtex_matches_the_citation(cff):
    intro = (ROOT / "book" / "intro.md").read_text()
    entries = re.findall(r"```bibtex\n(.*?)```", intro, re.S)
    ours = next(e for e in entries if cff["title"] in e)
    assert re.search(rf"version\s*=\s*\{{{re.escape(cff['version'])}\}}", ours)
    assert re.search(rf"year\s*=\s*\{{{cff['date-released'][:4]}\}}", ours)
    theirs = next(e for e in entries if PAPER in e)
    assert "year" not in theirs and "journal" not in theirs and "booktitle" not in theirs
    assert "CC BY 4.0" in intro and "MIT" in intro


# --- the book's references carry their DOI or arXiv link (issue #36) -------------------------------------

LINKED_TYPES = {"article", "inproceedings"}  # published papers: each has a DOI, an arXiv id or a page to link
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
ARXIV = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")


def missing_links(bib_text: str) -> list[str]:
    """The entries of a BibTeX text that should carry a link and carry none, or a malformed one: every
    article and inproceedings, and any entry that says it is on arXiv (an archivePrefix, a journal or a
    note naming arXiv), needs a ``doi``, an arXiv ``eprint`` or a ``url``."""
    from pybtex.database import parse_string

    problems = []
    for key, entry in parse_string(bib_text, "bibtex").entries.items():
        fields = {k.lower(): str(v) for k, v in entry.fields.items()}
        on_arxiv = "arxiv" in " ".join(fields.get(f, "") for f in ("archiveprefix", "journal", "note",
                                                                         "howpublished")).lower()
        if entry.type.lower() in LINKED_TYPES or on_arxiv:
            if not {"doi", "eprint", "url"} & set(fields):
                problems.append(f"{key}: no doi, eprint or url")
        if "doi" in fields and not DOI.match(fields["doi"]):
            problems.append(f"{key}: doi {fields['doi']!r} is not a bare DOI (10.xxxx/...)")
        if "eprint" in fields and not ARXIV.match(fields["eprint"]):
            problems.append(f"{key}: eprint {fields['eprint']!r} is not an arXiv id")
        if "url" in fields and not re.match(r"^https?://\S+$", fields["url"]):
            problems.append(f"{key}: url {fields['url']!r}")
    return problems


def test_every_reference_that_has_a_doi_or_an_arxiv_id_carries_it():
    """The tour found one arXiv link among the references, although most cited works have a DOI or an
    arXiv id; the book's bibliography style (sphinxcontrib-bibtex's, from pybtex's unsrt) renders each as a
    link (doi.org, arxiv.org/abs, the url)."""
    assert missing_links((ROOT / "book" / "references.bib").read_text()) == []


def test_a_reference_without_its_link_is_found():
    bib = (ROOT / "book" / "references.bib").read_text()
    stripped = re.sub(r"(?m)^\s*doi\s*=.*\n", "", bib)  # every doi gone: CamVid's article has nothing else
    assert "brostow2009camvid: no doi, eprint or url" in missing_links(stripped)
    arxiv_note = "@misc{x, title = {T}, author = {A, B}, note = {arXiv preprint}}\n"
    assert missing_links(arxiv_note) == ["x: no doi, eprint or url"]
    assert missing_links("@misc{x, title = {T}, note = {no venue}}\n") == []  # nothing to link: no demand
    assert missing_links("@article{y, title = {T}, doi = {https://doi.org/10.1/x}}\n") == [
        "y: doi 'https://doi.org/10.1/x' is not a bare DOI (10.xxxx/...)"]
