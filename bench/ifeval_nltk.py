"""Do IFEval's text tools split as the reference does under another nltk? Prints counts of identical texts.

    pip download --no-deps nltk==3.10.4 -d /tmp/nltk && unzip -q /tmp/nltk/nltk-3.10.4-*.whl -d /tmp/nltk/3.10.4
    python bench/ifeval_nltk.py --data-dir $DATA_DIR --other-nltk /tmp/nltk/3.10.4

Texts: the 541 IFEval prompts, the GPT-4 responses of tests/fixtures/ifeval_gpt4_reference.jsonl and the probe texts
of evals/ifeval/text.py. Each is split into sentences and `word_tokenize` words four ways: stock nltk classes with the
Punkt tables, and profit-rl's tools (`evals.ifeval.text`), each under the installed nltk and under `--other-nltk`
(a folder holding another nltk package). The reference is the installed nltk's stock split (nltk 3.9.1 splits 55k
texts like the nltk 3.8.1 behind the published results).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's evals, whatever is installed


def split_all(texts: list[str], ours: bool) -> tuple[str, list]:
    """(nltk version, [[sentences, words], ...]) for every text, with stock nltk classes or with profit-rl's tools."""
    from collections import defaultdict

    import nltk

    from profit_rl.evals.ifeval import text

    if ours:
        return nltk.__version__, [[text.split_sentences(t), text.word_tokenize(t)] for t in texts]
    from nltk.tokenize.destructive import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    english = text._english_punkt_module()
    params = PunktParameters()
    params.abbrev_types, params.collocations = set(english.ABBREV_TYPES), set(english.COLLOCATIONS)
    params.sent_starters, params.ortho_context = set(english.SENT_STARTERS), defaultdict(int, english.ORTHO_CONTEXT)
    sentences, words = PunktSentenceTokenizer(params), NLTKWordTokenizer()
    out = []
    for t in texts:
        split = sentences.tokenize(t)
        out.append([split, [w for s in split for w in words.tokenize(s)]])
    return nltk.__version__, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="holds ifeval/input_data.jsonl")
    p.add_argument("--other-nltk", required=True, help="a folder holding another nltk package (unzipped wheel)")
    p.add_argument("--child", choices=["stock", "ours"], help=argparse.SUPPRESS)
    p.add_argument("--texts", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(split_all(json.loads(Path(args.texts).read_text()), args.child == "ours")))
        return 0

    from profit_rl.evals.ifeval.text import PROBES

    texts = [t for t, _, _ in PROBES]
    texts += [json.loads(line)["prompt"] for line in (Path(args.data_dir) / "ifeval" / "input_data.jsonl").open()]
    texts += [json.loads(line)["response"] for line in (REPO / "tests/fixtures/ifeval_gpt4_reference.jsonl").open()]
    texts_file = Path(os.environ.get("TMPDIR", "/tmp")) / "ifeval_nltk_texts.json"
    texts_file.write_text(json.dumps(texts))
    runs = {}
    for label, nltk_path in (("installed", None), ("other", args.other_nltk)):
        for kind in ("stock", "ours"):
            path = os.pathsep.join(filter(None, [nltk_path, str(REPO), os.environ.get("PYTHONPATH")]))
            done = subprocess.run([sys.executable, __file__, "--data-dir", args.data_dir, "--other-nltk",
                                   args.other_nltk, "--child", kind, "--texts", str(texts_file)],
                                  env=dict(os.environ, PYTHONPATH=path), capture_output=True, text=True, check=True)
            runs[label, kind] = json.loads(done.stdout)
    version, reference = runs["installed", "stock"]
    print(f"{len(texts)} texts; reference: stock nltk {version}")
    for (label, kind), (version, splits) in runs.items():
        same = sum(a == b for a, b in zip(splits, reference))
        print(f"  {kind:<5} tools, nltk {version:<7}: {same} of {len(texts)} texts split as the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
