"""KV-cache arithmetic from an HF model config.

Everything here is exact integer arithmetic on token counts and bytes: the
predictions that vLLM's block pool is measured against.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ConfigError, PagedBenchError

CONFIG_DIR = Path(__file__).parent / "configs"
SHIPPED_MODELS = tuple(sorted(p.name for p in CONFIG_DIR.iterdir() if (p / "config.json").is_file()))

DTYPE_BYTES = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
    "float8_e4m3fn": 1, "float8_e5m2": 1, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "int8": 1,
}

# HF configs name the same field differently per architecture family.
_ALIASES = {
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
}


@dataclass(frozen=True)
class ModelShape:
    """The parts of a model config that size its KV cache."""

    name: str
    num_layers: int
    num_q_heads: int
    num_kv_heads: int
    head_dim: int
    dtype: str
    path: Path | None = None

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    def with_kv_dtype(self, kv_cache_dtype: str) -> ModelShape:
        """The shape whose KV cache is stored as `kv_cache_dtype` ("auto": the model's dtype)."""
        if kv_cache_dtype == "auto":
            return self
        if kv_cache_dtype not in DTYPE_BYTES:
            raise PagedBenchError(f"unknown KV cache dtype {kv_cache_dtype!r}; known: {', '.join(sorted(DTYPE_BYTES))}")
        return replace(self, dtype=kv_cache_dtype)

    def kv_heads_per_gpu(self, tp: int = 1) -> int:
        """KV heads one GPU stores at tensor-parallel degree `tp`.

        vLLM splits KV heads across ranks and replicates them when there are
        fewer heads than ranks.
        """
        _positive_int("tensor parallel size", tp)
        if self.num_kv_heads >= tp:
            if self.num_kv_heads % tp:
                raise PagedBenchError(f"{self.num_kv_heads} KV heads do not split over TP={tp}")
            return self.num_kv_heads // tp
        if tp % self.num_kv_heads:
            raise PagedBenchError(f"TP={tp} is not a multiple of {self.num_kv_heads} KV heads")
        return 1

    def kv_bytes_per_token(self, tp: int = 1) -> int:
        """K and V, every layer, for one token, on one GPU."""
        return 2 * self.num_layers * self.kv_heads_per_gpu(tp) * self.head_dim * self.dtype_bytes

    def kv_bytes_per_block(self, block_size: int, tp: int = 1) -> int:
        _positive_int("block size", block_size)
        return block_size * self.kv_bytes_per_token(tp)


def _positive_int(what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PagedBenchError(f"{what} must be a positive integer, got {value!r}")
    return value


def _field(cfg: dict, key: str, source: str):
    for alias in _ALIASES.get(key, (key,)):
        if cfg.get(alias) is not None:
            return cfg[alias]
    raise ConfigError(f"{source}: missing '{key}' (also looked for {', '.join(_ALIASES.get(key, (key,)))})")


def shape_from_config(cfg: dict, name: str = "model", source: str = "config", dtype: str | None = None) -> ModelShape:
    """Read a ModelShape from an HF config dict (any architecture that has attention)."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {type(cfg).__name__}")
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers keep the LM in text_config
        cfg = {**cfg["text_config"], **{k: v for k, v in cfg.items() if k in ("torch_dtype", "dtype")}}
    layers = _field(cfg, "num_hidden_layers", source)
    q_heads = _field(cfg, "num_attention_heads", source)
    if cfg.get("num_key_value_heads") is not None:
        kv_heads = cfg["num_key_value_heads"]
    elif cfg.get("multi_query"):
        kv_heads = 1
    else:
        kv_heads = cfg.get("num_kv_heads") or cfg.get("n_head_kv") or q_heads
    if cfg.get("head_dim") is not None:
        head_dim = cfg["head_dim"]
    else:
        hidden = _field(cfg, "hidden_size", source)
        if not isinstance(hidden, int) or not isinstance(q_heads, int) or q_heads <= 0 or hidden % q_heads:
            raise ConfigError(f"{source}: hidden_size {hidden!r} is not a multiple of num_attention_heads {q_heads!r}")
        head_dim = hidden // q_heads
    for field, value in (("num_hidden_layers", layers), ("num_attention_heads", q_heads),
                         ("num_key_value_heads", kv_heads), ("head_dim", head_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{source}: '{field}' must be a positive integer, got {value!r}")
    raw_dtype = dtype or cfg.get("torch_dtype") or cfg.get("dtype") or "float32"  # HF's own default
    dtype_name = str(raw_dtype).replace("torch.", "")
    if dtype_name not in DTYPE_BYTES:
        raise ConfigError(f"{source}: unknown dtype {raw_dtype!r} (known: {', '.join(sorted(DTYPE_BYTES))})")
    return ModelShape(name, layers, q_heads, kv_heads, head_dim, dtype_name)


def resolve_model_dir(model: str | Path) -> Path:
    """A shipped model name ('llama-3.1-8b') or a folder holding config.json."""
    if isinstance(model, str) and model in SHIPPED_MODELS:
        return CONFIG_DIR / model
    path = Path(model).expanduser()
    if path.is_file() and path.name == "config.json":
        path = path.parent
    if not (path / "config.json").is_file():
        raise ConfigError(f"{model}: no config.json there (shipped models: {', '.join(SHIPPED_MODELS)})")
    return path


def load_config(model: str | Path) -> dict:
    """config.json of a shipped model name or a local HF checkpoint folder."""
    cfg_file = resolve_model_dir(model) / "config.json"
    try:
        return json.loads(cfg_file.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{cfg_file}: cannot read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{cfg_file}: not valid JSON ({exc})") from exc


def load_shape(model: str | Path, dtype: str | None = None) -> ModelShape:
    """ModelShape of a shipped model name or a local HF checkpoint folder."""
    path = resolve_model_dir(model)
    shape = shape_from_config(load_config(path), name=path.name, source=str(path / "config.json"), dtype=dtype)
    return ModelShape(**{**shape.__dict__, "path": path})


# ---- pre-allocation vs paging -------------------------------------------------

@dataclass(frozen=True)
class Allocation:
    """KV bytes a scheme reserves for a set of sequences, and how many hold tokens."""

    allocated_bytes: int
    used_bytes: int

    @property
    def wasted_bytes(self) -> int:
        return self.allocated_bytes - self.used_bytes

    @property
    def waste_pct(self) -> float:
        return 100.0 * self.wasted_bytes / self.allocated_bytes if self.allocated_bytes else 0.0


def check_lengths(lengths: Sequence[int], max_seq_len: int | None = None) -> list[int]:
    lengths = list(lengths)
    if not lengths:
        raise PagedBenchError("empty workload: no sequence lengths given")
    for n in lengths:
        _positive_int("sequence length", n)
        if max_seq_len is not None and n > max_seq_len:
            raise PagedBenchError(f"sequence length {n} exceeds max_seq_len {max_seq_len}")
    return lengths


def blocks_for(num_tokens: int, block_size: int) -> int:
    _positive_int("block size", block_size)
    return -(-num_tokens // block_size)


def contiguous_allocation(lengths: Sequence[int], max_seq_len: int, bytes_per_token: int) -> Allocation:
    """Every request reserves max_seq_len slots up front (HF static cache, pre-vLLM servers)."""
    _positive_int("max_seq_len", max_seq_len)
    lengths = check_lengths(lengths, max_seq_len)
    return Allocation(len(lengths) * max_seq_len * bytes_per_token, sum(lengths) * bytes_per_token)


def paged_allocation(lengths: Sequence[int], block_size: int, bytes_per_token: int) -> Allocation:
    """Every request holds ceil(len / block_size) blocks: waste is the last block's empty slots."""
    lengths = check_lengths(lengths)
    blocks = sum(blocks_for(n, block_size) for n in lengths)
    return Allocation(blocks * block_size * bytes_per_token, sum(lengths) * bytes_per_token)


def pool_blocks(budget_bytes: int, block_size: int, bytes_per_token: int) -> int:
    """Blocks a KV budget holds: floor(budget / block bytes), as vLLM sizes its pool."""
    _positive_int("KV budget (bytes)", budget_bytes)
    block_bytes = _positive_int("block size", block_size) * bytes_per_token
    if budget_bytes < block_bytes:
        raise PagedBenchError(f"KV budget of {budget_bytes} bytes is smaller than one block ({block_bytes} bytes)")
    return budget_bytes // block_bytes


def max_users_contiguous(budget_bytes: int, max_seq_len: int, bytes_per_token: int) -> int:
    _positive_int("KV budget (bytes)", budget_bytes)
    return budget_bytes // (_positive_int("max_seq_len", max_seq_len) * bytes_per_token)


def max_users_paged(budget_bytes: int, avg_len: int, block_size: int, bytes_per_token: int) -> int:
    """Users of average length avg_len that fit when each holds only the blocks it fills."""
    return pool_blocks(budget_bytes, block_size, bytes_per_token) // blocks_for(_positive_int("average length", avg_len), block_size)


def max_users_tp(per_gpu_budget_bytes: int, avg_len: int, block_size: int, shape: ModelShape, tp: int) -> int:
    """Paged users at tensor-parallel degree tp: each GPU holds its share of the KV heads for every
    user, so the per-GPU budget and per-GPU bytes per token decide (the pool is the same on every rank)."""
    return max_users_paged(per_gpu_budget_bytes, avg_len, block_size, shape.kv_bytes_per_token(tp))


@dataclass(frozen=True)
class PrefixSharing:
    """KV held by n users that share one prompt prefix: tokens unshared and ideally shared, blocks
    unshared and shared through vLLM's prefix cache (full blocks only)."""

    tokens_unshared: int     # every user stores the whole prompt
    tokens_ideal: int        # the prefix stored once, token-exact
    blocks_unshared: int
    blocks_shared: int

    @property
    def ideal_savings_pct(self) -> float:
        return 100.0 * (1 - self.tokens_ideal / self.tokens_unshared)

    @property
    def block_savings_pct(self) -> float:
        return 100.0 * (1 - self.blocks_shared / self.blocks_unshared)


def cached_prefix_blocks(shared_len: int, unique_len: int, block_size: int) -> int:
    """Blocks of a shared prefix a later request finds in vLLM's prefix cache: full blocks only, and
    never the last prompt token (a hit covers at most prompt length - 1 tokens)."""
    return min(shared_len, shared_len + unique_len - 1) // block_size


def prefix_hit_tokens(readers: int, shared_len: int, unique_len: int, block_size: int) -> int:
    """Prompt tokens `readers` requests take from the prefix cache once the shared prefix is cached."""
    return readers * cached_prefix_blocks(shared_len, unique_len, block_size) * block_size


def prefix_sharing(n_users: int, shared_len: int, unique_len: int, block_size: int) -> PrefixSharing:
    _positive_int("number of users", n_users)
    _positive_int("shared prefix length", shared_len)
    if isinstance(unique_len, bool) or not isinstance(unique_len, int) or unique_len < 0:
        raise PagedBenchError(f"unique length must be a non-negative integer, got {unique_len!r}")
    total = shared_len + unique_len
    shared_blocks = cached_prefix_blocks(shared_len, unique_len, block_size)
    per_user_blocks = blocks_for(total, block_size)
    tail_blocks = blocks_for(total - shared_blocks * block_size, block_size)
    blocks_shared = shared_blocks + n_users * tail_blocks
    return PrefixSharing(
        tokens_unshared=n_users * total,
        tokens_ideal=shared_len + n_users * unique_len,
        blocks_unshared=n_users * per_user_blocks,
        blocks_shared=blocks_shared,
    )


def fragmentation(lengths: Iterable[int], block_size: int) -> tuple[int, float]:
    """Empty slots in the last block of each sequence: (tokens, % of allocated)."""
    lengths = check_lengths(list(lengths))
    allocated = sum(blocks_for(n, block_size) for n in lengths) * block_size
    wasted = allocated - sum(lengths)
    return wasted, 100.0 * wasted / allocated


# Binary units, defined once for the package (meters and the report import them from here).
GIB = 1 << 30
MIB = 1 << 20

