"""What is wrong with a configuration value, in words: pydantic's validation errors turned into messages that
name the key, the value found and the rule it breaks (a range, a type, the key it resembles).
"""

from __future__ import annotations

import difflib
from typing import Any, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic_core import ErrorDetails


def _model_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The section model that holds the key at the end of loc (loc without that key)."""
    current: Any = root
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = _unwrap(field.annotation)
        elif get_origin(current) is dict:
            current = _unwrap(get_args(current)[1])
        else:
            return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X."""
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is not dict and len(args) == 1:
        return args[0]
    return annotation


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bounds(model: type[BaseModel] | None, key: str) -> str | None:
    """'must be between 1 and 100' and the like, from the field's constraints."""
    if model is None or key not in model.model_fields:
        return None
    low = high = ""
    for rule in model.model_fields[key].metadata:
        if isinstance(rule, annotated_types.Ge):
            low = f"at least {_number(rule.ge)}"
        elif isinstance(rule, annotated_types.Gt):
            low = f"more than {_number(rule.gt)}"
        elif isinstance(rule, annotated_types.Le):
            high = f"at most {_number(rule.le)}"
    if low.startswith("at least") and high:
        return f"must be between {low.removeprefix('at least ')} and {high.removeprefix('at most ')}"
    return "must be " + " and ".join(part for part in (low, high) if part) if low or high else None


def explain(error: ErrorDetails, root: type[BaseModel]) -> tuple[str, str]:
    """The key path, and what is wrong with it (with the value found)."""
    loc = error["loc"]
    where = ".".join(str(part) for part in loc) or "(top level)"
    parent = _model_at(root, loc[:-1])
    kind = error["type"]
    if kind == "extra_forbidden":
        known = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        return where, "unknown key; " + (f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        problem = "must be a mapping of keys"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        problem = _bounds(parent, str(loc[-1])) or error["msg"]
    else:
        problem = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    found = repr(error["input"])
    # A validator's own message may already quote the value ("cannot read memory size 'lots'").
    quoted = kind == "value_error" and found in problem
    return where, problem if quoted else f"{problem}, got {found}"
