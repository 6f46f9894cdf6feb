"""Held-out general English text for the forgetting probe of a pretrained model, cut into fixed documents.

    python -m profit_rl.data.heldout_text --out-dir DIR [--n-documents 100]   # DIR/general.jsonl and DIR/build.json

The source is CPython's `pydoc_data.topics` (the Python Language Reference's topics as `help()` shows them, ~465k
characters of English prose with code examples; PSF licence), which ships with every CPython, so it is on any machine
that runs this toolkit, with no hub and no network. It is read from the running interpreter and never copied into the
repository; `build.json` records where it came from (the Python version, the module's file and the text's sha256),
since another Python version ships other text and so other documents.

Chunking is deterministic: topics in sorted order, each split into paragraphs at blank lines, the paragraphs packed
greedily into documents of at most `chunk_chars` characters without crossing a topic (a longer paragraph is cut at the
last space before the limit), a paragraph an earlier topic already gave skipped (some topics repeat others); documents
under `min_chars` are dropped. `--n-documents` picks evenly spaced documents
of that sequence, so every part of the reference is sampled. No paragraph is in two documents, and none of the text
is in the SFT, GRPO or test data of any profile here (the story-problem task; tests/data/test_heldout_text.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from profit_rl.core.state import write_json_atomic, write_text_atomic

SOURCE = "pydoc_data.topics"
LICENCE = "PSF-2.0 (Python Software Foundation License; CPython's documentation)"
CHUNK_CHARS = 1000  # ~250 SmolLM2 tokens: long enough for context, short enough for a CPU's batch of full-vocab KL
MIN_CHARS = 400
N_DOCUMENTS = 100


def source_topics() -> tuple[dict[str, str], dict]:
    """The topics of the running interpreter's `pydoc_data.topics`, and their provenance."""
    import pydoc_data.topics as topics

    text = "".join(f"{key}\n{topics.topics[key]}" for key in sorted(topics.topics))
    return dict(topics.topics), {
        "source": SOURCE, "file": topics.__file__, "licence": LICENCE, "python": sys.version.split()[0],
        "topics": len(topics.topics), "characters": sum(map(len, topics.topics.values())),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def pieces(paragraph: str, limit: int) -> list[str]:
    """A paragraph cut into pieces of at most `limit` characters, each at the last space before the limit."""
    out = []
    while len(paragraph) > limit:
        cut = paragraph.rfind(" ", 0, limit)
        cut = cut if cut > 0 else limit
        out.append(paragraph[:cut].rstrip())
        paragraph = paragraph[cut:].lstrip()
    return out + ([paragraph] if paragraph else [])


def chunk(topics: dict[str, str], chunk_chars: int = CHUNK_CHARS, min_chars: int = MIN_CHARS) -> list[dict]:
    """Every document of the topics (`id`: `<topic>-<n>`, `text`), in the deterministic order of the module doc."""
    docs, seen = [], set()
    for key in sorted(topics):
        paragraphs = [q for p in topics[key].split("\n\n") if p.strip() for q in pieces(p.strip("\n"), chunk_chars)]
        # some topics repeat others' paragraphs (`augassign` is part of `assignment`): each is used once
        paragraphs = [q for q in paragraphs if not (q in seen or seen.add(q))]
        current: list[str] = []
        n = 0

        def flush():
            nonlocal n
            text = "\n\n".join(current)
            if len(text) >= min_chars:
                docs.append({"id": f"{key}-{n}", "text": text})
                n += 1

        for paragraph in paragraphs:
            if current and len("\n\n".join([*current, paragraph])) > chunk_chars:
                flush()
                current = []
            current.append(paragraph)
        if current:
            flush()
    return docs


def select(docs: list[dict], n: int) -> list[dict]:
    """`n` evenly spaced documents of `docs` (all of them when there are no more than `n`)."""
    if n >= len(docs):
        return list(docs)
    return [docs[i * len(docs) // n] for i in range(n)]


def write(out_dir: Path, n_documents: int = N_DOCUMENTS, chunk_chars: int = CHUNK_CHARS,
          min_chars: int = MIN_CHARS) -> dict:
    """`general.jsonl` (`id`, `text`, one document a line) and `build.json` (provenance, settings, sizes) in `out_dir`."""
    topics, provenance = source_topics()
    docs = select(chunk(topics, chunk_chars, min_chars), n_documents)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "general.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    record = {"provenance": provenance, "chunk_chars": chunk_chars, "min_chars": min_chars,
              "n_documents": len(docs), "characters": sum(len(d["text"]) for d in docs)}
    write_json_atomic(out_dir / "build.json", record)
    return record


def main(argv: list[str] | None = None) -> int:
    """`python -m profit_rl.data.heldout_text --out-dir DIR`: write the held-out documents and their provenance."""
    p = argparse.ArgumentParser(prog="python -m profit_rl.data.heldout_text", description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", required=True)
    p.add_argument("--n-documents", type=int, default=N_DOCUMENTS, help="evenly spaced documents (%(default)s)")
    p.add_argument("--chunk-chars", type=int, default=CHUNK_CHARS, help="a document's most characters (%(default)s)")
    p.add_argument("--min-chars", type=int, default=MIN_CHARS, help="shorter documents are dropped (%(default)s)")
    args = p.parse_args(argv)
    record = write(Path(args.out_dir), args.n_documents, args.chunk_chars, args.min_chars)
    print(json.dumps({k: record[k] for k in ("n_documents", "characters")}), "->", args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
