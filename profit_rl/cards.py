"""Model cards of profit-rl checkpoints, in the layout of TRL's cards (`trl/templates/lm_model_card.md`).

Every saved folder (each `checkpoint-N` and the final model) gets a README.md that names what TRL's card names (model,
data, framework versions, citations, the card metadata the Hub reads) and what a ProFit run adds: the base model
(also when it was a local folder), the selection rule with tau, the protected tokens, the loss normaliser, the recipe,
and the ProFit paper's citation. A GRPO card also names the initial checkpoint (with the SFT rule its own card records)
and the rewards. The same facts are in the card metadata under `profit_rl`, so the next stage's card can read them.

`CardMixin` gives a trainer these cards and turns a push that cannot reach the Hub into one line
(`HubUnreachableError`) instead of a network traceback.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from profit_rl.core.io import InputError

logger = logging.getLogger(__name__)

PROFIT_PAPER = {
    "title": "ProFit: Leveraging High-Value Signals in SFT via Probability-Guided Token Selection",
    "id": "2601.09195",
    "citation": """@article{profit2026,
    title   = {{ProFit: Leveraging High-Value Signals in SFT via Probability-Guided Token Selection}},
    author  = {Tao Liu and Taiqiang Wu and Runming Yang and Shaoning Sun and Junjie Wang and Yujiu Yang},
    journal = {arXiv preprint arXiv:2601.09195},
    year    = {2026}
}""",
}
TRL_CITATION = """@software{vonwerra2020trl,
  title   = {{TRL: Transformers Reinforcement Learning}},
  author  = {von Werra, Leandro and Belkada, Younes and Tunstall, Lewis and Beeching, Edward and Thrush, Tristan and Lambert, Nathan and Huang, Shengyi and Rasul, Kashif and Gallouédec, Quentin},
  license = {Apache-2.0},
  url     = {https://github.com/huggingface/trl},
  year    = {2020}
}"""
NORMALISER = ("every supervised token of the optimizer step (its whole gradient-accumulation window, all ranks: TRL's "
              "`num_items_in_batch`), kept or dropped, as in the paper's Eq. 5: dropping a token removes its term "
              "without rescaling the others")

# The layout of TRL 1.16's lm_model_card.md, with the ProFit section in "Training procedure".
TEMPLATE = """---
{{ card_data }}
---

# Model Card for {{ model_name }}

This model is a fine-tuned version of {{ base_model_text }}{% if dataset_text %} on {{ dataset_text }}{% endif %}.
It has been trained using profit-rl {{ profit_rl_version }} on [TRL](https://github.com/huggingface/trl).

## Quick start

```python
from transformers import pipeline

question = "If you had a time machine, but could only go to the past or the future once and never return, which would you choose and why?"
generator = pipeline("text-generation", model="{{ model_ref }}", device_map="auto")
output = generator([{"role": "user", "content": question}], max_new_tokens=128, return_full_text=False)[0]
print(output["generated_text"])
```

## Training procedure

{% if wandb_url %}[<img src="https://raw.githubusercontent.com/wandb/assets/main/wandb-github-badge-28.svg" alt="Visualize in Weights & Biases" width="150" height="24"/>]({{ wandb_url }}){% endif %}

This model was trained with {{ trainer_name }}{% if paper_id %}, a method introduced in [{{ paper_title }}](https://huggingface.co/papers/{{ paper_id }}){% endif %}.

{{ details }}

### Framework versions

- profit-rl: {{ profit_rl_version }}
- TRL: {{ trl_version }}
- Transformers: {{ transformers_version }}
- Pytorch: {{ pytorch_version }}
- Datasets: {{ datasets_version }}
- Tokenizers: {{ tokenizers_version }}

## Citations

{% for name, citation in citations %}Cite {{ name }} as:

```bibtex
{{ citation }}
```

{% endfor %}"""


class HubUnreachableError(InputError):
    """A push to the Hugging Face Hub that could not reach it: one line, what is saved where, how to push later."""


@dataclass
class CardInfo:
    """What a card states that the trainer cannot know: where the data and the recipe came from."""

    dataset: str | None = None  # a hub id or a local path
    recipe: str | None = None  # the YAML recipe (--config) the run read
    initial_checkpoint: str | None = None  # GRPO: the policy it started from (model_name_or_path)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _is_local(name: str | None) -> bool:
    return bool(name) and (os.path.exists(name) or name.startswith((".", "/", "~")))


def read_card_metadata(folder: str | os.PathLike | None) -> dict:
    """The metadata of the card in a local model folder ({} when there is none or it cannot be read)."""
    if not folder or not (Path(folder) / "README.md").is_file():
        return {}
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(Path(folder) / "README.md").data.to_dict()
    except Exception as err:  # a hand-written README is no card: say so, and write ours without its facts
        logger.warning("could not read the model card of %s (%s: %s)", folder, type(err).__name__, err)
        return {}


def resolve_base_model(name: str | None) -> tuple[str | None, str]:
    """(hub id for the card metadata or None, the text naming the base model).

    A local folder names the hub model its own card records as base (our SFT output, say), else its path."""
    if not name:
        return None, "a model whose name was not recorded"
    if not _is_local(name):
        return name, f"[{name}](https://huggingface.co/{name})"
    base = read_card_metadata(name).get("base_model")
    base = base[0] if isinstance(base, list) and base else base
    if isinstance(base, str) and base:
        return base, f"[{base}](https://huggingface.co/{base}) (through the local checkpoint `{name}`)"
    return None, f"the local model `{name}`"


def _dataset(name: str | None) -> tuple[str | None, str | None]:
    if not name:
        return None, None
    if _is_local(name):
        return None, f"the local data `{name}`"
    return name, f"the [{name}](https://huggingface.co/datasets/{name}) dataset"


def sft_facts(trainer) -> dict:
    """The selection facts of a ProFitSFTTrainer, as the card metadata stores them."""
    rule = trainer.rule
    from .trainer import ProFitConfig

    facts = {
        "stage": "sft",
        "selection": rule.selection,
        "tau": rule.tau if rule.selection in ("profit", "inverse", "band") else None,
        "tau_high": rule.tau_high if rule.selection == "band" else None,
        "top_ratio": rule.top_ratio if rule.selection in ("entropy", "random") else None,
        "keep_end_of_turn": bool(rule.keep_end_of_turn),
        "protected_strings": list(rule.protected_strings),
        "loss": "profit-rl selection loss" if isinstance(trainer.args, ProFitConfig) else
                f"TRL's own loss (SFTConfig loss_type={trainer.args.loss_type!r})",
    }
    return {k: v for k, v in facts.items() if v is not None}


def _protected_text(trainer, facts: dict) -> str:
    kept = []
    if facts.get("keep_end_of_turn"):
        tok = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
        names = [tok.convert_ids_to_tokens(i) for i in getattr(trainer, "_end_of_turn_ids", [])]
        kept.append("the end-of-turn tokens (" + ", ".join(f"`{n}`" for n in names) + ")")
    kept += [f"the tokens of `{s}`" for s in facts.get("protected_strings", [])]
    if not kept:
        return "none (the paper's rule, without exception)"
    return "; ".join(kept) + ": always weight 1, whatever the rule says (a departure from the paper's rule)"


def _training_lines(trainer) -> list[str]:
    args, state = trainer.args, trainer.state
    world = getattr(args, "world_size", 1)
    scheduler = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    return [
        f"- Steps: {state.global_step} of {state.max_steps} optimizer steps "
        f"(batch {args.per_device_train_batch_size} per device x {args.gradient_accumulation_steps} accumulation "
        f"x {world} process(es)), learning rate {args.learning_rate} ({scheduler}), seed {args.seed}",
    ]


def sft_details(trainer, info: CardInfo) -> str:
    """The card's profit-rl section for SFT: the selection rule with its parameters, the protected tokens, the loss and
    its normaliser, the data, the recipe and the training settings."""
    from .losses import SELECTIONS

    facts = sft_facts(trainer)
    rule = facts["selection"]
    params = ", ".join(f"{k} = {facts[k]}" for k in ("tau", "tau_high", "top_ratio") if k in facts)
    lines = [
        "### Token selection (profit-rl)",
        "",
        f"- Selection rule: `{rule}`: {SELECTIONS[rule]}" + (f"; {params}" if params else ""),
        f"- Protected tokens: {_protected_text(trainer, facts)}",
        f"- Loss normaliser: {NORMALISER}",
        f"- Loss: {facts['loss']}",
        f"- Data: {info.dataset or 'not recorded (the trainer was given a dataset object)'}"
        + (f", {len(trainer.train_dataset)} training rows" if hasattr(trainer.train_dataset, "__len__") else ""),
        f"- Recipe: `{info.recipe}`" if info.recipe else "- Recipe: none (configured in code or on the command line)",
        *_training_lines(trainer),
    ]
    return "\n".join(lines)


def grpo_details(trainer, info: CardInfo, initial: dict) -> str:
    """The card's profit-rl section for GRPO: the initial checkpoint (with the SFT rule its own card records), the
    rewards and their weights, the group and generation settings, the data, the recipe and the training settings."""
    names = list(getattr(trainer, "reward_func_names", []))
    weights = trainer.args.reward_weights or [1.0] * len(names)
    rewards = ", ".join(f"`{n}` (weight {w:g})" for n, w in zip(names, weights)) or "none recorded"
    sft = initial.get("profit_rl") or {}
    if sft.get("selection"):
        rule = f"`{sft['selection']}`" + (f" with tau = {sft['tau']}" if "tau" in sft else "")
        sft_text = f"SFT with the selection rule {rule} (from its card)"
    else:
        sft_text = "no profit-rl card: its training is not recorded"
    args = trainer.args
    lines = [
        "### GRPO (profit-rl)",
        "",
        f"- Initial checkpoint: `{info.initial_checkpoint}`: {sft_text}",
        f"- Rewards: {rewards}",
        f"- Group size: {args.num_generations} completions per prompt, at most {args.max_completion_length} tokens, "
        f"beta {args.beta}, loss `{args.loss_type}`",
        f"- Data: {info.dataset or 'not recorded'}"
        + (f", {len(trainer.train_dataset)} training prompts" if hasattr(trainer.train_dataset, "__len__") else ""),
        f"- Recipe: `{info.recipe}`" if info.recipe else "- Recipe: none (configured in code or on the command line)",
        *_training_lines(trainer),
    ]
    return "\n".join(lines)


def build_card(trainer, info: CardInfo, stage: str, model_name: str | None = None, tags=None):
    """The huggingface_hub ModelCard of a ProFitSFTTrainer (stage "sft") or ProFitGRPOTrainer (stage "grpo")."""
    from huggingface_hub import ModelCard, ModelCardData

    from profit_rl import __version__

    output_dir = trainer.args.output_dir
    model_name = model_name or (trainer.args.hub_model_id or Path(output_dir).name).split("/")[-1]
    if stage == "sft":
        start = info.initial_checkpoint or getattr(trainer.model.config, "_name_or_path", None)
        facts = sft_facts(trainer)
        details = sft_details(trainer, info)
        trainer_name, paper = "ProFit SFT (profit-rl's ProFitSFTTrainer on TRL's SFTTrainer)", PROFIT_PAPER
        if facts["selection"] != "profit":
            trainer_name = f"SFT under the `{facts['selection']}` selection rule (profit-rl's ProFitSFTTrainer)"
            paper = {}
        citations = [("ProFit", PROFIT_PAPER["citation"])]
        rule_tag = facts["selection"]
    else:
        start = info.initial_checkpoint
        initial = read_card_metadata(start) if _is_local(start) else {}
        facts = {"stage": "grpo", "initial_checkpoint": start, "initial": initial.get("profit_rl") or None,
                 "rewards": list(getattr(trainer, "reward_func_names", []))}
        details = grpo_details(trainer, info, initial)
        trainer_name, paper = "GRPO (TRL's GRPOTrainer, through profit-rl)", type(trainer)._paper
        citations = [("GRPO", paper["citation"]), ("ProFit", PROFIT_PAPER["citation"])]
        rule_tag = (initial.get("profit_rl") or {}).get("selection")
    base_model, base_text = resolve_base_model(start)
    dataset_id, dataset_text = _dataset(info.dataset)
    facts.update(recipe=info.recipe, dataset=info.dataset, version=__version__)
    all_tags = ["profit-rl", *([rule_tag] if rule_tag else []), "trl", stage]
    extra = [tags] if isinstance(tags, str) else list(tags or [])
    all_tags += [t for t in extra if t not in all_tags]
    card_data = ModelCardData(
        base_model=base_model,
        datasets=dataset_id,
        library_name="transformers",
        licence="license",
        model_name=model_name,
        tags=all_tags,
        profit_rl={k: v for k, v in facts.items() if v is not None},
    )
    wandb_url = None
    try:
        import wandb

        wandb_url = wandb.run.url if wandb.run is not None else None
    except Exception:  # wandb not installed or not running
        pass
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE,
        model_name=model_name,
        base_model_text=base_text,
        dataset_text=dataset_text,
        model_ref=trainer.hub_model_id or os.path.abspath(output_dir),
        wandb_url=wandb_url,
        trainer_name=trainer_name,
        paper_title=paper.get("title"),
        paper_id=paper.get("id"),
        details=details,
        citations=[*citations, ("TRL", TRL_CITATION)],
        profit_rl_version=__version__,
        trl_version=_version("trl"),
        transformers_version=_version("transformers"),
        pytorch_version=_version("torch"),
        datasets_version=_version("datasets"),
        tokenizers_version=_version("tokenizers"),
    )


def _is_network_error(err: BaseException) -> bool:
    """A failure to reach the Hub: no connection, a timeout, offline mode (not a refused token or a bad repo id)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    kinds: tuple = (OfflineModeIsEnabled, ConnectionError, TimeoutError)
    try:  # huggingface_hub >= 1.0 talks httpx
        import httpx

        kinds += (httpx.TransportError,)
    except ImportError:
        pass
    try:  # older huggingface_hub talks requests
        import requests

        kinds += (requests.ConnectionError, requests.Timeout)
    except ImportError:
        pass
    seen = err
    while seen is not None:
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class CardMixin:
    """Trainer mixin: a profit-rl card in every saved folder, and a one-line error for a push that cannot reach the Hub.

    The subclass sets `_card_stage` ("sft" or "grpo") and `card_info` (a `CardInfo`)."""

    _card_stage = "sft"
    card_info: CardInfo | None = None

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None, **_):
        """TRL's `create_model_card`, with the profit-rl card: written to `args.output_dir/README.md`."""
        self.save_model_card(self.args.output_dir, model_name=model_name, dataset_name=dataset_name, tags=tags)

    def save_model_card(self, folder: str, model_name: str | None = None, dataset_name: str | None = None, tags=None):
        """Write the profit-rl card to `folder/README.md`, on the main process only; `dataset_name` fills in the data
        when `card_info` does not name it."""
        if not self.is_world_process_zero():
            return
        info = self.card_info or CardInfo()
        if dataset_name and not info.dataset:
            info = CardInfo(dataset_name, info.recipe, info.initial_checkpoint)
        os.makedirs(folder, exist_ok=True)
        card = build_card(self, info, self._card_stage, model_name=model_name, tags=tags)
        card.save(os.path.join(folder, "README.md"))

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """The Trainer's `save_model`, followed by the card in the same folder."""
        super().save_model(output_dir, _internal_call)
        self.save_model_card(output_dir or self.args.output_dir)

    def _unreachable(self, cause: str, saved: bool) -> HubUnreachableError:
        repo = self.args.hub_model_id or Path(self.args.output_dir).name
        folder = os.path.abspath(self.args.output_dir)
        if saved:
            text = (f"push_to_hub: cannot reach the Hugging Face Hub ({cause}); the model and its card are saved in "
                    f"{folder}. Push them when online: hf upload {repo} {folder}")
        else:
            text = (f"push_to_hub: cannot reach the Hugging Face Hub to create the repository {repo} ({cause}). Train "
                    f"without push_to_hub and push the folder when online (hf upload {repo} {folder}), or go online")
        error = HubUnreachableError(text)
        error.cause = cause
        return error

    def init_hf_repo(self, *args, **kwargs):
        """The Trainer's `init_hf_repo`; a network failure becomes a one-line HubUnreachableError, not a traceback."""
        try:
            return super().init_hf_repo(*args, **kwargs)
        except Exception as err:
            if not _is_network_error(err):
                raise
            failure = self._unreachable(type(err).__name__, saved=False)
        raise failure  # outside the except block: no network traceback chained to the one line

    def push_to_hub(self, *args, **kwargs):
        """The Trainer's `push_to_hub`; when the Hub cannot be reached, the model and card are saved locally and a
        one-line HubUnreachableError says where and how to upload them later."""
        try:
            return super().push_to_hub(*args, **kwargs)
        except HubUnreachableError as err:  # from init_hf_repo
            cause = err.cause
        except Exception as err:
            if not _is_network_error(err):
                raise
            cause = type(err).__name__
        self.save_model()  # what the push would have uploaded is on disk, where the message says
        raise self._unreachable(cause, saved=True)


def _grpo_trainer_class():
    from trl import GRPOTrainer

    class ProFitGRPOTrainer(CardMixin, GRPOTrainer):
        """TRL's GRPOTrainer whose saved folders carry a profit-rl card (initial checkpoint, rewards, data, recipe)."""

        _card_stage = "grpo"

        def __init__(self, *args, card_info: CardInfo | None = None, **kwargs):
            self.card_info = card_info
            super().__init__(*args, **kwargs)

    return ProFitGRPOTrainer


def __getattr__(name):
    if name == "ProFitGRPOTrainer":  # built on first use: importing TRL's GRPO is slow
        cls = _grpo_trainer_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module 'profit_rl.cards' has no attribute {name!r}")
