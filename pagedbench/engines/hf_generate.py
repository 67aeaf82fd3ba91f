"""The HuggingFace generate() baseline: the same model, no paging.

Dynamic cache: HF's default, grown by concatenation as tokens arrive.
Static cache: every sequence pre-allocates max_cache_len slots up front, the
contiguous pre-allocation the PagedAttention tutorial describes.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from pagedbench.engines.device_timer import DeviceTimer
from pagedbench.errors import PagedBenchError
from pagedbench.workloads.requests import Workload


@dataclass(frozen=True)
class HFSettings:
    model: str            # folder with config.json (and weights when load_weights)
    device: str           # "cuda" or "cpu"
    load_weights: bool = False
    dtype: str = "bfloat16"

    def start(self) -> HFEngine:
        return HFEngine(self)


@dataclass
class GenerateResult:
    seconds: float          # device time of the whole generate() call
    new_tokens: int
    kv_cache_bytes: int     # bytes the cache object holds at the end
    peak_alloc_bytes: int   # torch.cuda.max_memory_allocated during the call (0 on CPU)


def attention_impl(device: str) -> str:
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


class HFEngine:
    def __init__(self, settings: HFSettings):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        self.settings = settings
        self.torch = torch
        dtype = getattr(torch, settings.dtype)
        self.attn = attention_impl(settings.device)
        if settings.load_weights:
            self.model = AutoModelForCausalLM.from_pretrained(
                settings.model, dtype=dtype, device_map=settings.device, attn_implementation=self.attn)
        else:
            config = AutoConfig.from_pretrained(settings.model)
            # Random weights made on the device itself: no 16 GB host-side init for 8B.
            with torch.device(settings.device):
                self.model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=self.attn)
        self.model.eval()
        self.vocab_size = self.model.config.vocab_size

    def generate(self, workload: Workload, cache: str, max_cache_len: int = 2048) -> GenerateResult:
        """One batch: every request's prompt (equal lengths) and forced output length."""
        torch = self.torch
        from transformers import DynamicCache, StaticCache

        lens = {r.prompt_len for r in workload.requests}
        outs = {r.output_len for r in workload.requests}
        if len(lens) != 1 or len(outs) != 1:
            raise PagedBenchError("HF generate() runs one batch of equal prompt and output lengths")
        (new_tokens,) = outs
        ids = torch.tensor([r.prompt_token_ids for r in workload.requests], device=self.settings.device)
        if cache == "static":
            past = StaticCache(config=self.model.config, max_cache_len=max_cache_len)
        elif cache == "dynamic":
            past = DynamicCache(config=self.model.config)
        else:
            raise PagedBenchError(f"unknown cache kind {cache!r} (dynamic or static)")
        cuda = self.settings.device.startswith("cuda")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode(), DeviceTimer(self.settings.device) as timer:
            out = self.model.generate(
                ids, attention_mask=torch.ones_like(ids), past_key_values=past,
                max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                pad_token_id=0, eos_token_id=None,
                # Compiling static-cache decoding is a separate benchmark; here a first call at a
                # new shape would put minutes of compilation inside the timing.
                disable_compile=True,
            )
        produced = (out.shape[1] - ids.shape[1]) * ids.shape[0]
        if produced != new_tokens * ids.shape[0]:
            raise PagedBenchError(f"generate() made {produced} tokens, expected {new_tokens * ids.shape[0]}")
        kv = sum(t.numel() * t.element_size() for layer in past.layers
                 for t in (getattr(layer, "keys", None), getattr(layer, "values", None)) if t is not None)
        peak = torch.cuda.max_memory_allocated() if cuda else 0
        return GenerateResult(timer.seconds, produced, kv, peak)

    def shutdown(self) -> None:
        self.model = None
        import gc
        gc.collect()
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()
