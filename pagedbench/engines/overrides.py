"""Engine and server settings given on the command line (`--engine-override KEY=VALUE`), applied to
every engine or `vllm serve` a test starts: how an A/B run compares two settings of one build with the
suite's own tests, instead of a copy of a test per setting.

A key is a field of EngineSettings (the offline engine) or ServerSettings (`vllm serve`); it applies to
each engine or server that has that field and leaves the others as they are, so a selection that starts
none of them measures nothing different (the A/B table then shows no change).
"""

from __future__ import annotations

import dataclasses

from pagedbench.engines.server_api import plain
from pagedbench.errors import PagedBenchError

# A value is a JSON-like scalar; anything else stays a string (a backend name, a dtype).
_WORDS = {"true": True, "false": False, "none": None, "null": None}


def _fields() -> dict[str, set[str]]:
    from pagedbench.engines.engine_settings import EngineSettings
    from pagedbench.engines.vllm_server import ServerSettings

    return {cls.__name__: {f.name for f in dataclasses.fields(cls)} - {"model", "served_name", "log_path"}
            for cls in (EngineSettings, ServerSettings)}


def parse_value(text: str):
    """'2048' -> 2048, 'false' -> False, 'none' -> None, anything else as it is (server_api.plain, with the
    words in any case, as a shell user types them)."""
    word = text.lower()
    return _WORDS[word] if word in _WORDS else plain(text)


def parse(items: list[str] | None) -> dict:
    """KEY=VALUE items into {key: value}; PagedBenchError naming the item that is not one."""
    known = set().union(*_fields().values())
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PagedBenchError(f"engine override {item!r}: expected KEY=VALUE")
        if key not in known:
            raise PagedBenchError(f"engine override {item!r}: {key!r} is no engine or server setting "
                                  f"(one of {', '.join(sorted(known))})")
        out[key] = parse_value(value.strip())
    return out


def apply(settings, overrides: dict):
    """settings with the overrides that name one of its fields; other kinds of settings unchanged."""
    if not overrides or not dataclasses.is_dataclass(settings):
        return settings
    names = {f.name for f in dataclasses.fields(settings)}
    mine = {k: v for k, v in overrides.items() if k in names}
    return dataclasses.replace(settings, **mine) if mine else settings
