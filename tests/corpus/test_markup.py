"""Files of markup (TEI and other XML, vertical files) are refused with the form to pass instead."""

from __future__ import annotations

import gzip
import re

import pytest

from lunalm.errors import CorpusError
from tests.corpus.test_read import texts

# The first lines of ParlaMint-TR_2018-11-01-tbmm-T27.xml and .vert (clarin-eric/ParlaMint, Samples/ParlaMint-TR/2018),
# shortened. Read as text they were 507 and 1,031 characters of tags, attributes and token annotation.
TEI = ('<?xml version="1.0" encoding="UTF-8"?>\n<TEI xmlns="http://www.tei-c.org/ns/1.0" '
       'xml:id="ParlaMint-TR_2018-11-01-tbmm-T27" xml:lang="tr">\n   <teiHeader>\n      <fileDesc>\n'
       '         <title type="main" xml:lang="tr">Türkiye meclis derlemi ParlaMint-TR</title>\n')
VERTICAL = ('<note type="time" content="14.03"/>\n<speech id="tbmm-2018-11-01sit01spe0001par0001" lang="Türkçe">\n'
            '<p id="tbmm-2018-11-01sit01spe0001par0001.seg0">\n<s id="tbmm-2018-11-01sit01spe0001par0001-000010">\n'
            'Türkiye\tTürkiye\tTürkiye\tPROPN\tCase=Nom Number=Sing\tt1\tnmod\tmillet\tNOUN\tCase=Nom Number=Sing\tt3\n')


def test_tei_xml_says_to_pass_the_plain_text_files(tmp_path):
    path = tmp_path / "ParlaMint-TR_2018-11-01-tbmm-T27.xml"
    path.write_text(TEI, encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(f"{path}: TEI XML (the text inside tags, with notes and speaker "
                                                    "data), not text; pass the plain-text files distributed beside "
                                                    "it (ParlaMint's .txt files, one utterance a line;")):
        texts([tmp_path], include=("*.xml",))
    packed = tmp_path / "ParlaMint-TR_2018-11-01-tbmm-T27.ana.xml.gz"
    packed.write_bytes(gzip.compress(("\ufeff" + TEI).encode("utf-8")))
    with pytest.raises(CorpusError, match=re.escape(f"{packed}: TEI XML")):
        texts([packed])


def test_other_xml_and_vertical_files_are_refused(tmp_path):
    (tmp_path / "haber.xml").write_text('<?xml version="1.0"?>\n<haberler><haber>Bugün hava güzel.</haber>'
                                        "</haberler>\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(f"{tmp_path / 'haber.xml'}: an XML file (the text inside tags), "
                                                    "not text; extract its text first, or leave it out with "
                                                    "--exclude '*.xml'")):
        texts([tmp_path], include=("*.xml",))
    (tmp_path / "oturum.vert").write_text(VERTICAL, encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(f"{tmp_path / 'oturum.vert'}: a vertical file for a concordancer")
                       + ".*--exclude '\\*.vert'"):
        texts([tmp_path / "oturum.vert"])


def test_text_that_starts_with_a_tag_is_still_text(tmp_path):
    (tmp_path / "not.txt").write_text("<b>Kalın</b> bir başlık.\nSonra düz metin.\n", encoding="utf-8")
    assert texts([tmp_path]) == ["<b>Kalın</b> bir başlık.\nSonra düz metin.\n"]
