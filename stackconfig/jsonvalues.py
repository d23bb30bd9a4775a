"""Structured config as the engine hands it to the program: a JSON string, or the value already parsed."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel


def json_object(value: Any, model: type[BaseModel], what: str, example: str) -> Any:
    """A section that is an object: the model itself, or a dict from JSON; anything else names
    what it must be and an example."""
    if isinstance(value, model):
        return value
    value = json_value(value, f"valid JSON: {what}")
    if not isinstance(value, dict):
        raise ValueError(f"{what}, e.g. {example}")
    return value


def json_value(value: Any, allowed: str) -> Any:
    """Structured config as the engine hands it to the program: a JSON string (or already parsed)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(allowed) from exc
    return value

