"""A model folder the OpenAI server can serve: the shipped config plus a word-level tokenizer.

The shipped configs hold no tokenizer, and `vllm serve` (and `vllm bench serve`, which
samples random token ids, decodes them and sends text) needs one. A WordLevel model over
``t0 … t{V-1}`` (V = the config's vocab_size) split on whitespace decodes ids to text and
encodes that text back to the same ids, so every prompt length the load generator asks
for is exactly what the server prefills. Nothing is downloaded; the files are made once per
folder and are the same bytes every time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pagedbench.errors import PagedBenchError

UNKNOWN = "<unk>"  # never produced: every id decodes to a known word


def word(i: int) -> str:
    return f"t{i}"


def has_tokenizer(model_dir: Path) -> bool:
    return any((Path(model_dir) / f).exists() for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json"))


def servable_model(model_dir: str | Path, dest: str | Path) -> Path:
    """`model_dir` itself when it has a tokenizer (real weights); else a copy of its config in
    `dest` with the word-level tokenizer beside it."""
    src = Path(model_dir)
    if has_tokenizer(src):
        return src
    cfg_path = src / "config.json"
    if not cfg_path.is_file():
        raise PagedBenchError(f"{src}: no config.json, so no model to serve")
    vocab_size = json.loads(cfg_path.read_text())["vocab_size"]
    out = Path(dest)
    if (out / "tokenizer.json").is_file() and (out / "config.json").read_bytes() == cfg_path.read_bytes():
        return out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cfg_path, out / "config.json")
    _word_level(vocab_size).save_pretrained(str(out))
    return out


def _word_level(vocab_size: int):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    # The last id is the unknown word's, so the vocabulary stays exactly the model's size.
    vocab = {word(i): i for i in range(vocab_size - 1)}
    vocab[UNKNOWN] = vocab_size - 1
    tok = Tokenizer(WordLevel(vocab, unk_token=UNKNOWN))
    tok.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=UNKNOWN, model_max_length=1 << 20)
