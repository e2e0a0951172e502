"""Files that hold text inside markup and are no text themselves: a MediaWiki XML dump, TEI XML (ParlaMint's
``.xml`` and ``.ana.xml``), other XML, and the vertical files (``.vert``) that concordancers index, one token per
line with its annotation. Read as text, their tags and attributes were trained on without a word; each is a
CorpusError that names the form to pass instead.
"""

from __future__ import annotations

import re
from pathlib import Path

_XML = re.compile(rb"\s*(<\?xml|<TEI[\s>])")
_VERTICAL_SUFFIXES = (".vert", ".vrt")


def markup_error(head: bytes, path: Path, layout: str) -> str | None:
    """The message for a file of markup (``head``: its first bytes, ``layout``: its suffix under any compression
    suffix), or None when it is none."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if b"<mediawiki" in head[:4096] and b"<siteinfo>" in head:
        return (f"{path}: a MediaWiki XML dump (wiki markup inside XML), not text; extract its articles first: pip "
                f"install wikiextractor, then `python -m wikiextractor.WikiExtractor {path.name} --json -o "
                "wiki_text`, and pass the wiki_text folder")
    if b"<TEI" in head[:4096] and _XML.match(head):
        return (f"{path}: TEI XML (the text inside tags, with notes and speaker data), not text; pass the plain-text "
                "files distributed beside it (ParlaMint's .txt files, one utterance a line; or its .conllu files, "
                "with --include '*.conllu'), or leave the XML out with --exclude '*.xml'")
    if _XML.match(head):
        return (f"{path}: an XML file (the text inside tags), not text; extract its text first, or leave it out "
                "with --exclude '*.xml'")
    if layout in _VERTICAL_SUFFIXES and head.lstrip().startswith(b"<"):
        return (f"{path}: a vertical file for a concordancer (one token a line, with its annotation, between "
                f"structure tags), not text; pass the corpus's plain-text files (ParlaMint's .txt), or its .conllu "
                f"files with --include '*.conllu', or leave it out with --exclude '*{layout}'")
    return None
