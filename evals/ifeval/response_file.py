"""Score a reference-format response file: match responses to prompts, score them, write the results."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from profit_rl.evals.ifeval.data import HUB_ID, IFEvalDataError, load_prompts, read_responses
from profit_rl.evals.ifeval.scoring import aggregate, score_response
from profit_rl.core.state import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)


def _reference_row(prompt, response: str, followed: list[bool]) -> str:
    # The reference writes the OutputExample fields in alphabetical order.
    return json.dumps(
        {
            "follow_all_instructions": all(followed),
            "follow_instruction_list": followed,
            "instruction_id_list": prompt.instruction_id_list,
            "prompt": prompt.prompt,
            "response": response,
        }
    )


def score_response_file(
    responses_path: str | Path,
    input_data: str | Path = HUB_ID,
    output: str | Path | None = None,
    output_dir: str | Path | None = None,
    allow_missing: bool = False,
) -> dict:
    """Score a reference-format response file against the prompts of `input_data`; optionally write the results.

    Returns the four metrics (fractions), the counts behind them and one entry per prompt under "rows".
    """
    prompts = load_prompts(input_data)
    responses = read_responses(responses_path)
    missing = [prompt for prompt in prompts if prompt.prompt not in responses]
    if missing and not allow_missing:
        keys = ", ".join(str(prompt.key) for prompt in missing[:10])
        raise IFEvalDataError(
            str(responses_path), f"no response for {len(missing)} of {len(prompts)} prompts of {input_data} (keys {keys}"
            f"{', ...' if len(missing) > 10 else ''}); responses are matched by exact prompt text. "
            "Pass --allow-missing to score them as empty."
        )
    known = {prompt.prompt for prompt in prompts}
    unmatched = sum(1 for text in responses if text not in known)
    if unmatched:
        logger.warning("%s: %d responses match no prompt of %s and are ignored", responses_path, unmatched, input_data)
    if missing:
        logger.warning("%d prompts have no response and are scored as empty", len(missing))

    rows, strict_lines, loose_lines, scores = [], [], [], []
    for prompt in prompts:
        response = responses.get(prompt.prompt, "")
        score = score_response(prompt, response)
        scores.append(score)
        rows.append({"prompt": prompt.prompt, "response": response, **score.to_dict()})
        strict_lines.append(_reference_row(prompt, response, score.strict))
        loose_lines.append(_reference_row(prompt, response, score.loose))
    result = {
        **aggregate(scores),
        "num_missing_responses": len(missing),
        "num_unmatched_responses": unmatched,
        "input_data": str(input_data),
        "responses": str(responses_path),
        "rows": rows,
    }
    if output:
        write_json_atomic(output, result, indent=1)
    if output_dir:
        out_dir = Path(output_dir)
        write_text_atomic(out_dir / "eval_results_strict.jsonl", "".join(line + "\n" for line in strict_lines))
        write_text_atomic(out_dir / "eval_results_loose.jsonl", "".join(line + "\n" for line in loose_lines))
    return result
