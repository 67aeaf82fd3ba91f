"""Errors a user can act on: each names the input that is wrong and why."""


class PagedBenchError(ValueError):
    """Bad input to the suite (model config, workload, budget, baseline file)."""


class ConfigError(PagedBenchError):
    """A model config.json that cannot describe a KV cache."""


class BaselineError(PagedBenchError):
    """A baselines/<gpu>.json that is unreadable or fails validation."""
