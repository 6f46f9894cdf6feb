"""The held-out general text of the SmolLM2 forgetting probe: deterministic documents, disjoint from each other and
from the task data the models train and are tested on, with their provenance recorded."""

import dataclasses
import json

from profit_rl.data import heldout_text as H
from profit_rl.embedded.build import EmbeddedConfig, task_data, task_config
from profit_rl.pipeline.profiles import SMOLLM2_TASK


def test_the_documents_are_deterministic_and_evenly_spread(tmp_path):
    topics, provenance = H.source_topics()
    docs = H.chunk(topics)
    assert docs == H.chunk(dict(reversed(list(topics.items()))))  # the order of the source's dict plays no part
    assert all(H.MIN_CHARS <= len(d["text"]) <= H.CHUNK_CHARS for d in docs)
    assert len({d["id"] for d in docs}) == len(docs)
    picked = H.select(docs, 100)
    assert len(picked) == 100 and picked == H.select(docs, 100) and picked[0] == docs[0]
    assert len({d["id"].rsplit("-", 1)[0] for d in picked}) > 30  # spread over the reference's topics
    record = H.write(tmp_path / "a", 20)
    H.write(tmp_path / "b", 20)
    assert (tmp_path / "a" / "general.jsonl").read_bytes() == (tmp_path / "b" / "general.jsonl").read_bytes()
    rows = [json.loads(line) for line in (tmp_path / "a" / "general.jsonl").read_text().splitlines()]
    assert rows == H.select(docs, 20) and record["n_documents"] == 20
    saved = json.loads((tmp_path / "a" / "build.json").read_text())["provenance"]
    assert saved == provenance and saved["source"] == "pydoc_data.topics" and "PSF" in saved["licence"]
    assert len(saved["sha256"]) == 64 and saved["characters"] > 400_000


def test_no_paragraph_is_in_two_documents_or_in_the_task_data():
    topics, _ = H.source_topics()
    docs = H.chunk(topics)
    paragraphs = [p for d in docs for p in d["text"].split("\n\n")]
    assert len(paragraphs) == len(set(paragraphs))  # the source repeats some: each is used once
    config = dataclasses.replace(EmbeddedConfig(), task=task_config(list(SMOLLM2_TASK)), n_sft=300, n_grpo=100)
    data = task_data(config, 0)
    task_text = [e.row["prompt"][0]["content"] + "\n" + e.row["completion"][0]["content"] for e in data.sft]
    task_text += [p.statement for p in data.splits.grpo + data.splits.test]
    task_lines = {line.strip() for t in task_text for line in t.splitlines() if len(line.strip()) >= 20}
    doc_lines = {line.strip() for d in docs for line in d["text"].splitlines() if len(line.strip()) >= 20}
    assert task_lines and doc_lines and not task_lines & doc_lines
