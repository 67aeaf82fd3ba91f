"""The settings a test's figures were measured with: what was asked of vLLM and what vLLM resolved.

A baseline keeps them per test. Figures measured with other settings asked for (the suite's code
changed a size or a setting) are other figures, not a regression or an improvement: the gate says
"baseline from other settings" and does not compare them. What vLLM resolved the same asked settings
to can move with a vLLM upgrade (a new default for the device): that is what an upgrade gate exists
to catch, so those figures are compared, and the row names what vLLM resolved differently.
"""

from __future__ import annotations

import dataclasses
import math

# Where the checkout or its logs lie and how long a start may take: nothing that changes a figure.
IGNORED = frozenset({"model", "served_name", "log_path", "start_timeout_s", "env"})


def _plain(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)


def describe(settings, resolved: dict | None = None) -> dict:
    """One engine or server start: the settings asked for (a dataclass) and, where the engine can
    tell, what vLLM resolved them to."""
    asked = {f.name: _plain(getattr(settings, f.name)) for f in dataclasses.fields(settings)
             if f.name not in IGNORED} if dataclasses.is_dataclass(settings) else {"label": str(settings)}
    out = {"kind": type(settings).__name__, "asked": asked}
    if resolved:
        out["resolved"] = _plain(resolved)
    return out


def differences(base: list[dict], now: list[dict], part: str = "asked") -> list[str]:
    """What differs in `part` ('asked' or 'resolved') between the starts a baseline was measured with
    and this run's, one phrase each ('max_num_seqs 256 -> 1024'); [] when they match."""
    if len(base) != len(now):
        return [f"{len(base)} engine start(s) -> {len(now)}"] if part == "asked" else []
    out = []
    for b, n in zip(base, now):
        bb, nn = b.get(part) or {}, n.get(part) or {}
        if part == "resolved" and not (bb and nn):
            continue  # one side could not read what vLLM resolved: the asked settings decide
        for key in sorted(bb.keys() | nn.keys()):
            if key in IGNORED or bb.get(key) == nn.get(key):
                continue
            out.append(f"{key} {bb.get(key, 'unset')} -> {nn.get(key, 'unset')}")
    return list(dict.fromkeys(out))
