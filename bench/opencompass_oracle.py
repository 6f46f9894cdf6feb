"""The reference's verdicts and message lists, computed by OpenCompass's own code (run by bench/paper_agreement.py).

Runs in a SEPARATE virtual environment that holds the OpenCompass package and math-verify, never in the project's:

    python3 -m venv /tmp/ocvenv
    /tmp/ocvenv/bin/pip install --no-deps opencompass==0.5.4
    /tmp/ocvenv/bin/pip install math-verify==0.9.0 latex2sympy2_extended==1.11.0 sympy==1.14.0 \
        antlr4-python3-runtime==4.13.2          # the versions the project's environment has
    /tmp/ocvenv/bin/python bench/opencompass_oracle.py IN.json OUT.json

OpenCompass's package imports its whole framework (torch, mmengine, every dataset) on `import opencompass`. This
script instead loads only the modules the reference's scoring and prompt building live in, from the installed package's
own files, with the framework pieces they import (registries, logging, the `datasets` library, BaseEvaluator's
bookkeeping) replaced by inert stand-ins. Every rule that decides a verdict or a prompt is OpenCompass's code as
installed: gsm8k_postprocess, gsm8k_dataset_postprocess, Gsm8kEvaluator (datasets/gsm8k.py); MATHVerifyEvaluator
(evaluator/math_evaluator.py); GPQADataset, GPQA_Simple_Eval_postprocess, GPQAEvaluator (datasets/gpqa.py) and
match_answer_pattern (utils/text_postprocessors.py); IFEvalDataset (datasets/IFEval/ifeval.py); PromptTemplate
(openicl/icl_prompt_template.py), PromptList and safe_format (utils/prompt.py), APITemplateParser
(models/base_api.py), _get_meta_template and _convert_chat_messages (models/huggingface_above_v4_33.py).

IN.json: {"data_dir": ..., "items": [{"benchmark", "row" (0-based), "response"}, ...]}.
OUT.json: {"scores": [float per item], "extracted": [...], "messages": {benchmark: [message list per problem]}}.
"""

import importlib.util
import json
import os
import sys
import types

import opencompass  # noqa: F401  (the package __init__ holds only its version: cheap)

ROOT = os.path.dirname(opencompass.__file__)


class _Placeholder:  # a config names classes (retrievers, inferencers, datasets) that only the framework runs
    pass


def stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    if "__path__" not in attrs:
        module.__path__ = []
    module.__getattr__ = lambda attr: _Placeholder if not attr.startswith("__") else None
    sys.modules[name] = module
    return module


class _Registry:
    def __init__(self, *args, **kwargs):
        pass

    def register_module(self, *args, **kwargs):
        if args and callable(args[0]) and not isinstance(args[0], str):
            return args[0]
        return lambda obj: obj


class _Dataset(list):
    @staticmethod
    def from_list(rows):
        return _Dataset(rows)


class _BaseEvaluator:  # only the bookkeeping the scorers call
    def is_num_equal(self, predictions, references):
        if len(predictions) != len(references):
            raise ValueError("predictions and references differ in length")


def load(name, relative):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, relative))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def install_stand_ins():
    registry = _Registry()
    stub("mmengine")
    stub("mmengine.config", ConfigDict=dict, Config=dict)
    stub("mmengine.registry", Registry=_Registry, METRICS=registry)
    stub("mmengine.device", is_npu_available=lambda: False)
    stub("mmengine.dist")
    stub("torch")
    stub("datasets", Dataset=_Dataset, DatasetDict=dict)
    names = ("LOAD_DATASET TEXT_POSTPROCESSORS ICL_EVALUATORS ICL_PROMPT_TEMPLATES TASKS MODELS DICT_POSTPROCESSORS"
             .split())
    stub("opencompass.registry", **{n: registry for n in names})
    import logging

    utils = stub("opencompass.utils", get_data_path=lambda path, local_mode=False: path,
                 get_logger=lambda *a, **k: logging.getLogger("opencompass"))
    stub("opencompass.utils.logging", get_logger=utils.get_logger)
    stub("opencompass.utils.types", _check_type_list=lambda obj, types_: obj)
    utils.prompt = load("opencompass.utils.prompt", "utils/prompt.py")
    stub("opencompass.openicl", BaseEvaluator=_BaseEvaluator)
    stub("opencompass.openicl.icl_evaluator", BaseEvaluator=_BaseEvaluator)
    stub("opencompass.openicl.icl_retriever")
    stub("opencompass.openicl.icl_inferencer")
    stub("opencompass.datasets")
    stub("opencompass.datasets.base", BaseDataset=object)
    stub("opencompass.datasets.IFEval")
    stub("opencompass.datasets.IFEval.instructions_registry")
    stub("opencompass.datasets.IFEval.evaluation_main", InputExample=None, test_instruction_following_strict=None,
         test_instruction_following_loose=None)
    stub("opencompass.models")
    stub("opencompass.models.base", BaseModel=object, LMTemplateParser=object)


# the dataset configs the reference's eval file imports (AIME's line there is commented out)
CONFIGS = {"gsm8k": "gsm8k/gsm8k_gen_1d7fe4.py", "math500": "math/math_500_gen.py",
           "aime24": "aime2024/aime2024_gen_17d799.py", "gpqa": "gpqa/gpqa_openai_simple_evals_gen_5aeece.py",
           "ifeval": "IFEval/IFEval_gen_353ae7.py"}


def read_config(relative):
    """The one dataset dict of an installed dataset config, executed with the stand-ins in place."""
    namespace = {}
    path = os.path.join(ROOT, "configs", "datasets", relative)
    exec(compile(open(path, encoding="utf-8").read(), path, "exec"), namespace)
    (dataset,) = next(v for k, v in namespace.items() if k.endswith("_datasets"))
    return dataset


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(src, dst):
    install_stand_ins()
    gsm8k = load("opencompass.datasets.gsm8k", "datasets/gsm8k.py")
    gpqa = load("opencompass.datasets.gpqa", "datasets/gpqa.py")
    ifeval = load("opencompass.datasets.IFEval.ifeval", "datasets/IFEval/ifeval.py")
    math_evaluator = load("opencompass.evaluator.math_evaluator", "evaluator/math_evaluator.py")
    postprocessors = load("opencompass.utils.text_postprocessors", "utils/text_postprocessors.py")
    template_module = load("opencompass.openicl.icl_prompt_template", "openicl/icl_prompt_template.py")
    for module in (gsm8k, gpqa, ifeval):  # what the configs import from opencompass.datasets
        sys.modules["opencompass.datasets"].__dict__.update(
            {k: v for k, v in vars(module).items() if not k.startswith("_")})
    sys.modules["opencompass.evaluator"] = math_evaluator
    base_api = load("opencompass.models.base_api", "models/base_api.py")
    sys.modules["opencompass.models"].base_api = base_api
    hf = load("opencompass.models.huggingface_above_v4_33", "models/huggingface_above_v4_33.py")
    import math_verify  # noqa: F401  (loaded once here, so each forked verifier starts warm)

    job = json.load(open(src, encoding="utf-8"))
    data = job["data_dir"]
    rows = {
        "gsm8k": read_jsonl(os.path.join(data, "gsm8k", "test.jsonl")),
        "math500": read_jsonl(os.path.join(data, "math500", "test.jsonl")),
        "aime24": read_jsonl(os.path.join(data, "aime24", "test.jsonl")),
        "gpqa": gpqa.GPQADataset.load(os.path.join(data, "gpqa_diamond"), "gpqa_diamond.csv"),
        "ifeval": ifeval.IFEvalDataset.load(os.path.join(data, "ifeval", "input_data.jsonl")),
    }
    evaluators = {"gsm8k": gsm8k.Gsm8kEvaluator(), "gpqa": gpqa.GPQAEvaluator(),
                  "math": math_evaluator.MATHVerifyEvaluator()}
    scores, extracted = [], []
    for item in job["items"]:
        name, row, response = item["benchmark"], rows[item["benchmark"]][item["row"]], item["response"]
        if name == "gsm8k":
            pred = gsm8k.gsm8k_postprocess(response)
            result = evaluators["gsm8k"].score([pred], [gsm8k.gsm8k_dataset_postprocess(row["answer"])])
        elif name == "gpqa":
            pred = gpqa.GPQA_Simple_Eval_postprocess(response)
            other = postprocessors.match_answer_pattern(response, r"(?i)ANSWER\s*:\s*([A-D])")
            assert (pred or "") == other, "the two names of the reference's GPQA rule disagree"
            result = evaluators["gpqa"].score([pred], [row["answer"]])
        else:  # math500: math_500_gen reads `solution`; aime24: aime2024_gen_17d799 reads `answer`
            gold = row["solution"] if name == "math500" else row["answer"]
            result = evaluators["math"].score([response], [gold])
            details = result.get("details") or [{}]
            pred = details[0].get("pred")
        scores.append(result["accuracy"] / 100)
        extracted.append(pred)

    # Message lists: each config file's own template, through PromptTemplate, the chat meta template and the message
    # converter
    parser = hf._get_meta_template(None)
    messages = {}
    for name, config in CONFIGS.items():
        dataset = read_config(config)
        template = template_module.PromptTemplate(**{k: v for k, v in dataset["infer_cfg"]["prompt_template"].items()
                                                     if k != "type"})
        output_column = dataset["reader_cfg"]["output_column"]
        messages[name] = []
        for row in rows[name]:
            prompt = template.generate_item(row, output_field=output_column, output_field_replace_token="")
            parsed = parser.parse_template(prompt, mode="gen")
            messages[name].append(hf._convert_chat_messages([parsed])[0])
    json.dump({"scores": scores, "extracted": extracted, "messages": messages}, open(dst, "w", encoding="utf-8"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
