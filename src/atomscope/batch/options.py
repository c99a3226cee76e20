"""Turn the analysis options given on a batch command line into keyword arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..errors import ParameterError

__all__ = ["parse_analysis_options"]


def _convert(text: str, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ParameterError(f"--{name} takes true or false, not {text!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, tuple):
        parts = [p for p in text.split(",") if p]
        try:
            return tuple(float(p) if "." in p or "e" in p.lower() else int(p) for p in parts)
        except ValueError:
            return tuple(parts)
    if text.lower() in ("none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_analysis_options(function: Callable[..., Any], args: list[str]) -> dict[str, Any]:
    """``--name value``, ``--flag`` and ``--no-flag`` tokens to keyword arguments of *function*.

    Every parameter after the first (the image) can be given, by name. Names use dashes or
    underscores; values are converted to the type of the parameter's default. Unknown names,
    and required parameters left out, raise :class:`ParameterError` naming them.
    """
    params = {
        p.name: p
        for i, p in enumerate(inspect.signature(function).parameters.values())
        if p.kind == p.KEYWORD_ONLY or (p.kind == p.POSITIONAL_OR_KEYWORD and i > 0)
    }
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--"):
            raise ParameterError(
                f"Unexpected argument {token!r}; analysis options look like --name value"
            )
        key = token[2:].replace("-", "_")
        value: str | None = None
        if "=" in key:
            key, value = key.split("=", 1)
        negated = False
        if key not in params and key.startswith("no_") and key[3:] in params:
            key, negated = key[3:], True
        if key not in params:
            raise ParameterError(
                f"Unknown option --{key.replace('_', '-')} for this analysis; it takes: "
                + ", ".join("--" + n.replace("_", "-") for n in params)
            )
        default = params[key].default
        if isinstance(default, bool) and value is None:
            out[key] = not negated
            i += 1
            continue
        if value is None:
            if i + 1 >= len(args):
                raise ParameterError(f"--{key.replace('_', '-')} needs a value")
            value = args[i + 1]
            i += 2
        else:
            i += 1
        out[key] = _convert(value, default, key)
    missing = [n for n, p in params.items() if p.default is p.empty and n not in out]
    if missing:
        raise ParameterError(
            "this analysis needs " + ", ".join("--" + n.replace("_", "-") for n in missing)
        )
    return out
