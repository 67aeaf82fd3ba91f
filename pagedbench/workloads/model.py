"""A model as the suite sees it: its folder (shipped config or local checkpoint) and the parts of its
config that size its KV cache. The measuring side and the prediction track both start here."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from pagedbench.errors import ConfigError, PagedBenchError

CONFIG_DIR = Path(__file__).parents[1] / "configs"
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
        positive_int("tensor parallel size", tp)
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
        positive_int("block size", block_size)
        return block_size * self.kv_bytes_per_token(tp)


def positive_int(what: str, value) -> int:
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


def pool_blocks(budget_bytes: int, block_size: int, bytes_per_token: int) -> int:
    """Blocks a KV budget holds: floor(budget / block bytes), as vLLM sizes its pool."""
    positive_int("KV budget (bytes)", budget_bytes)
    block_bytes = positive_int("block size", block_size) * bytes_per_token
    if budget_bytes < block_bytes:
        raise PagedBenchError(f"KV budget of {budget_bytes} bytes is smaller than one block ({block_bytes} bytes)")
    return budget_bytes // block_bytes


# Binary units, defined once for the package (meters and the report import them from here).
GIB = 1 << 30
MIB = 1 << 20
