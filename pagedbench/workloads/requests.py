"""Seeded, deterministic request mixes.

A request is prompt token ids plus a forced output length (EOS ignored), so
every engine does the same work on every run.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from pagedbench.errors import PagedBenchError

# Token ids stay clear of the low ids where special tokens live in most vocabularies.
FIRST_TOKEN_ID = 10


@dataclass(frozen=True)
class Request:
    prompt_token_ids: tuple[int, ...]
    output_len: int

    @property
    def prompt_len(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def total_len(self) -> int:
        """Tokens the sequence holds in KV once its last output token is appended."""
        return self.prompt_len + self.output_len


@dataclass(frozen=True)
class Workload:
    name: str
    requests: tuple[Request, ...]
    max_seq_len: int
    seed: int

    def __post_init__(self):
        if not self.requests:
            raise PagedBenchError(f"workload {self.name!r} is empty")
        for i, r in enumerate(self.requests):
            if r.prompt_len < 1 or r.output_len < 1:
                raise PagedBenchError(f"workload {self.name!r}: request {i} has prompt {r.prompt_len}, output {r.output_len}")
            if r.total_len > self.max_seq_len:
                raise PagedBenchError(f"workload {self.name!r}: request {i} holds {r.total_len} tokens > max_seq_len {self.max_seq_len}")

    def __len__(self) -> int:
        return len(self.requests)

    @property
    def prompt_lens(self) -> list[int]:
        return [r.prompt_len for r in self.requests]

    @property
    def total_lens(self) -> list[int]:
        return [r.total_len for r in self.requests]

    @property
    def total_tokens(self) -> int:
        return sum(self.total_lens)


def _ids(rng: random.Random, n: int, vocab_size: int) -> tuple[int, ...]:
    return tuple(rng.randrange(FIRST_TOKEN_ID, vocab_size) for _ in range(n))


def _check_vocab(vocab_size: int) -> None:
    if vocab_size <= FIRST_TOKEN_ID + 1:
        raise PagedBenchError(f"vocab_size {vocab_size} is too small for random prompts")


# The tutorial's 100 users: (count, nominal length). Each length is drawn +/-20 %
# around its nominal value so the last-block fill is not the same for every user.
SEED_MIX = ((50, 100), (30, 500), (20, 1500))


def seed_mix(seed: int = 0, vocab_size: int = 32000, max_seq_len: int = 2048, output_len: int = 2) -> Workload:
    """50 users x ~100 tokens, 30 x ~500, 20 x ~1500: the tutorial's variable-length users.

    The prompt carries the user's whole length; a short forced output (2 tokens)
    lets the block pool be read while every prompt sits in KV.
    """
    _check_vocab(vocab_size)
    rng = random.Random(seed)
    reqs = []
    for count, nominal in SEED_MIX:
        for _ in range(count):
            n = rng.randint(int(nominal * 0.8), int(nominal * 1.2))
            reqs.append(Request(_ids(rng, n, vocab_size), output_len))
    return Workload("seed-mix", tuple(reqs), max_seq_len, seed)


def long_tail(n: int = 300, seed: int = 0, vocab_size: int = 32000, max_seq_len: int = 2048,
              mean_len: int = 500, output_range: tuple[int, int] = (8, 64)) -> Workload:
    """Long-tailed lengths: total length ~ LogNormal(mu, sigma=0.8) scaled to mean `mean_len`,
    clipped to [output_max + 16, max_seq_len]; output ~ Uniform(output_range)."""
    _check_vocab(vocab_size)
    if n < 1:
        raise PagedBenchError("long_tail needs at least one request")
    rng = random.Random(seed)
    sigma = 0.8
    mu = math.log(mean_len) - sigma * sigma / 2
    reqs = []
    lo = output_range[1] + 16
    for _ in range(n):
        total = min(max_seq_len, max(lo, int(rng.lognormvariate(mu, sigma))))
        out = rng.randint(*output_range)
        reqs.append(Request(_ids(rng, total - out, vocab_size), out))
    return Workload("long-tail", tuple(reqs), max_seq_len, seed)


def uniform_io(n: int = 300, seed: int = 0, vocab_size: int = 32000, lo: int = 32, hi: int = 512,
               max_seq_len: int = 2048) -> Workload:
    """Input and output lengths each Uniform[lo, hi]: the variable-length throughput workload."""
    _check_vocab(vocab_size)
    rng = random.Random(seed)
    reqs = tuple(Request(_ids(rng, rng.randint(lo, hi), vocab_size), rng.randint(lo, hi)) for _ in range(n))
    return Workload(f"uniform-{lo}-{hi}", reqs, max_seq_len, seed)


def shared_prefix(n_users: int = 100, shared_len: int = 500, unique_len: int = 100, seed: int = 0,
                  vocab_size: int = 32000, max_seq_len: int = 2048, output_len: int = 2) -> Workload:
    """Every user's prompt = one shared system prompt + its own unique tokens."""
    _check_vocab(vocab_size)
    rng = random.Random(seed)
    system = _ids(rng, shared_len, vocab_size)
    reqs = tuple(Request(system + _ids(rng, unique_len, vocab_size), output_len) for _ in range(n_users))
    return Workload("shared-prefix", reqs, max_seq_len, seed)


def repeated_name(n, output_len) -> str:
    """repeated_prompt's workload name: the report pairs vLLM's run of it with HF's batch of n."""
    return f"repeat-{n}x{output_len}"


def repeated_prompt(n: int = 16, prompt_len: int = 8, output_len: int = 128, seed: int = 0,
                    vocab_size: int = 32000, max_seq_len: int = 2048) -> Workload:
    """The lab's workload: n copies of one short prompt, output_len new tokens each."""
    _check_vocab(vocab_size)
    prompt = _ids(random.Random(seed), prompt_len, vocab_size)
    return Workload(repeated_name(n, output_len), tuple(Request(prompt, output_len) for _ in range(n)), max_seq_len, seed)


def sharegpt(path: str | Path, n: int | None = None, seed: int = 0, vocab_size: int = 32000,
             max_seq_len: int = 2048, tokens_per_word: float = 1.3) -> Workload:
    """Lengths from a ShareGPT-format JSON ([{"conversations": [{"from", "value"}, ...]}, ...]).

    The first human turn gives the prompt length and the next turn the output
    length, in words x tokens_per_word (no tokenizer is needed); token ids are
    random because only lengths matter to memory and speed.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PagedBenchError(f"{path}: cannot read ShareGPT JSON ({exc})") from exc
    if not isinstance(data, list):
        raise PagedBenchError(f"{path}: expected a JSON list of conversations")
    rng = random.Random(seed)
    reqs = []
    for conv in data:
        turns = conv.get("conversations") if isinstance(conv, dict) else None
        if not isinstance(turns, list) or len(turns) < 2:
            continue
        p = max(1, int(len(str(turns[0].get("value", "")).split()) * tokens_per_word))
        o = max(1, int(len(str(turns[1].get("value", "")).split()) * tokens_per_word))
        if p + o > max_seq_len:
            continue
        reqs.append(Request(_ids(rng, p, vocab_size), o))
        if n is not None and len(reqs) >= n:
            break
    if not reqs:
        raise PagedBenchError(f"{path}: no usable conversations (need >= 2 turns within {max_seq_len} tokens)")
    return Workload(f"sharegpt:{path.name}", tuple(reqs), max_seq_len, seed)


def single_prompt(prompt_len: int, output_len: int, seed: int = 0, vocab_size: int = 32000,
                  max_seq_len: int = 2048) -> Workload:
    """One request of exactly prompt_len random tokens: the long-context cases."""
    _check_vocab(vocab_size)
    return Workload(f"prompt-{prompt_len}", (Request(_ids(random.Random(seed), prompt_len, vocab_size), output_len),),
                    max_seq_len, seed)
