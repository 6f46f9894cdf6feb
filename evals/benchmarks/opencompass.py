"""The reference's own rules, for `--protocol paper`: how OpenCompass builds a prompt and reads an answer.

The ProFit reference (`Evaluation/eval-qwen3-0.6B-Base.py` in github.com/Utaotao/ProFit) runs OpenCompass with the
dataset configs gsm8k_gen_1d7fe4, math_500_gen, gpqa_openai_simple_evals_gen_5aeece and IFEval_gen_353ae7 on
`TurboMindModelwithChatTemplate`. Each function below states one of OpenCompass's rules and names the file it comes
from; docs/protocol.md sets them beside the toolkit's own (`boxed`) rules. They are kept where they look wrong
(the first `ANSWER:` wins, "Answer: Consider" reads C, "1,072" reads 072): `paper` promises the reference's verdict,
not a better one.

Prompts, in three steps, as OpenCompass takes them:
1. `fill`: the config's prompt text gets the row's fields (`PromptTemplate.generate_item` -> `PromptList.format` ->
   `safe_format` in opencompass/utils/prompt.py): each `{column}` of the row, in the row's column order, is replaced
   by its value everywhere in the text so far, and the output column by "" (GenInferencer's replace token). So a
   value that itself holds `{B}` gets option B's text when B comes later. None of the shipped data has such a value.
2. `reference_messages`: the meta template of chat models (`_get_meta_template` in
   opencompass/models/huggingface_above_v4_33.py) has the rounds HUMAN, SYSTEM (sent as HUMAN) and BOT; a config round
   without a SYSTEM turn gets an empty one, and `APITemplateParser.parse_template` (opencompass/models/base_api.py)
   joins consecutive turns of one role with "\\n". So every user turn ends with one extra "\\n".
   `_convert_chat_messages` then maps HUMAN/BOT to user/assistant.
3. The chat template renders the messages with `add_generation_prompt=True` and no other argument
   (`TurboMindModelwithChatTemplate.generate`, opencompass/models/turbomind_with_tf_above_v4_33.py): for Qwen3 no
   `enable_thinking`, so no empty think block. That step is `OpenCompassChat`, at the end of this module.
"""

from __future__ import annotations

import re

from profit_rl.core.chat import ChatFormatError, apply_template, tokenizer_name

# ---- prompts ----------------------------------------------------------------------------------------------------


def fill(text: str, fields: list[tuple[str, object]], output_column: str | None) -> str:
    """OpenCompass's `safe_format` over a row: `{column}` -> value for each column in row order, one after another;
    the output column (the gold) becomes ""."""
    for column, value in fields:
        text = text.replace("{" + column + "}", "" if column == output_column else str(value))
    return text


def reference_messages(rounds: list[tuple[str, str | None]]) -> list[dict]:
    """Chat messages from config rounds [(HUMAN text, BOT text or None for the round to generate), ...]: each user turn
    carries the "\\n" that joins it with the round's empty SYSTEM turn."""
    messages = []
    for human, bot in rounds:
        messages.append({"role": "user", "content": human + "\n"})
        if bot is not None:
            messages.append({"role": "assistant", "content": bot})
    return messages


# ---- GPQA: GPQA_Simple_Eval_postprocess (opencompass/datasets/gpqa.py) and GPQAEvaluator ---------------------------

# The pattern of gpqa_openai_simple_evals_gen_5aeece. `(?i)` also makes the letter class match a-d.
GPQA_ANSWER = re.compile(r"(?i)ANSWER\s*:\s*([A-D])")


def gpqa_letter(response: str) -> str | None:
    """The letter of the FIRST `answer:` anywhere in the response, in the case written ("Answer: b" reads "b", which
    GPQAEvaluator's `==` then counts wrong; "Answer: Consider ..." reads "C")."""
    match = GPQA_ANSWER.search(response)
    return match.group(1) if match else None


# ---- MATH-500 and AIME'24: MATHVerifyEvaluator (opencompass/evaluator/math_evaluator.py) -----------------------------


def math_verify_verdict(gold: str, response: str) -> tuple[str, float, str | None]:
    """One response as MATHVerifyEvaluator scores it: (outcome, score, what it parsed).

    The gold (MATH-500's `solution` column, AIME's `answer`) is parsed as `$gold$` with LaTeX then expression
    extraction, first match. The response is parsed whole with LaTeX extraction only: boxed answers tried first,
    `boxed="all"` (several boxes become one set), nothing without a LaTeX anchor, first match. The verdict is
    `verify(parsed response, parsed gold)`: the response in math-verify's gold slot, as the reference calls it. A gold
    that parses to nothing is skipped there but still counted, so it scores 0 ("gold_unparseable").
    math-verify keeps its own 5-second parse and verify timeouts, as in the reference; the caller adds a hard
    deadline (`rewards.deadline_runner`)."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    gold_parsed = parse(f"${gold}$", extraction_mode="first_match",
                        extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
    if len(gold_parsed) == 0:
        return "gold_unparseable", 0.0, None
    normalization = NormalizationConfig(nits=False, malformed_operators=False, basic_latex=True, equations=True,
                                        boxed="all", units=True)
    answer_parsed = parse(response, extraction_mode="first_match", extraction_config=[
        LatexExtractionConfig(normalization_config=normalization, boxed_match_priority=0,
                              try_extract_without_anchor=False)])
    return "ok", float(verify(answer_parsed, gold_parsed)), str(answer_parsed)


# ---- rendering and stopping ----------------------------------------------------------------------------------------
class OpenCompassChat:
    """How the reference's OpenCompass model wrapper renders a prompt and where it stops (`--protocol paper`).

    `TurboMindModelwithChatTemplate` (opencompass/models/turbomind_with_tf_above_v4_33.py, the model class of the
    ProFit reference's eval file) renders `apply_chat_template(messages, add_generation_prompt=True, tokenize=False)`
    with no other argument: a Qwen3 template then ends at `<|im_start|>assistant\\n`, with no empty think block. It
    stops at the words `_get_potential_stop_words` collects: the EOS id(s) of the model folder's
    generation_config.json (none when the folder has no such file) and the tokenizer's EOS, and nothing else; a
    Qwen3-Base folder's are both `<|endoftext|>`, so a turn's `<|im_end|>` does not stop it. The ChatFormat contract
    (training and generation prompts agree) is not asked of it: it renders whatever the reference would."""

    def __init__(self, tokenizer, model_path: str | None = None):
        if not getattr(tokenizer, "chat_template", None):
            raise ChatFormatError(f"{tokenizer_name(tokenizer)}: the tokenizer has no chat template, which the reference's "
                                  "model class renders every prompt with")
        self.tokenizer = tokenizer
        self.model_path = model_path or getattr(tokenizer, "name_or_path", None)
        self.template_kwargs: dict = {}

    def prompt(self, messages: list[dict]) -> str:
        """The generation prompt as the reference renders it: `apply_chat_template(messages,
        add_generation_prompt=True)` with no template arguments, whatever the template then produces."""
        return apply_template(self.tokenizer, messages, True, {})

    def stop_token_ids(self, generation_config=None) -> list[int]:
        """The tokenizer's EOS and the EOS id(s) of the folder's generation_config.json. `generation_config` (a loaded
        model's, which transformers fills from config.json when the folder has no file) is not what the reference
        reads, so it is not used."""
        from transformers import GenerationConfig

        ids = []
        try:
            folder_eos = GenerationConfig.from_pretrained(self.model_path).eos_token_id if self.model_path else None
        except (OSError, ValueError):  # no generation_config.json: the reference collects nothing from it
            folder_eos = None
        ids += [folder_eos] if isinstance(folder_eos, int) else list(folder_eos or [])
        ids.append(getattr(self.tokenizer, "eos_token_id", None))
        return list(dict.fromkeys(i for i in ids if i is not None))
