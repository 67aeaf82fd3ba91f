"""Errors a user can act on: each names the input that is wrong and why."""


class PagedBenchError(ValueError):
    """Bad input to the suite (model config, workload, budget, baseline file)."""


# Refusals vLLM gives for a block size or layout the attention backend cannot take:
# those become skips quoting vLLM, everything else is a failure. The block-size ones are
# also what a test expects where a backend is known to refuse a size (Hopper and 8).
BLOCK_SIZE_REFUSALS = ("No common block size", "block_size not supported")
UNSUPPORTED_MARKERS = ("No valid attention backend", *BLOCK_SIZE_REFUSALS,
                       "FP8 KV cache on CPU requires", "kv_cache_dtype not supported", "does not support fp8",
                       "does not match the q_data_type")  # FlashInfer on Hopper with an e5m2 cache (vLLM 0.26)


class StartError(PagedBenchError):
    """An engine or a server did not start; `unsupported` marks vLLM refusing the settings themselves."""

    def __init__(self, message: str, evidence: str = ""):
        super().__init__(message)
        self.unsupported = any(m in f"{message}\n{evidence}" for m in UNSUPPORTED_MARKERS)


class ConfigError(PagedBenchError):
    """A model config.json that cannot describe a KV cache."""


class BaselineError(PagedBenchError):
    """A baselines/<gpu>.json that is unreadable or fails validation."""
