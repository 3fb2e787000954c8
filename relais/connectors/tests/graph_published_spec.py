"""Meta's published Graph API object specs, read through its business SDK (facebook-business).

Each Graph object class in ``facebook_business.adobjects`` is generated from Meta's per-object
specs (its codegen repository): ``_field_types`` names every field of the node and its type, and
each ``get_<edge>`` method names an edge and the class of what it lists (``target_class``). The
contract tests check every ``fields=`` list the connectors send, and every key of the Graph
fixtures, against them; the SDK's version is the Graph version they describe (``API_VERSION``).

Two shapes have no class in the SDK: a message of a conversation (the ``messages`` edge of
``UnifiedThread`` lists plain objects) and the ``from`` of posts and comments (typed ``Object``).
They are checked against the fields the Graph reference documents for them (``UNTYPED``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from facebook_business import apiconfig
from facebook_business.adobjects.abstractcrudobject import AbstractCrudObject

GRAPH_VERSION = str(apiconfig.ads_api_config["API_VERSION"])

# Graph reference: "Message" (a Messenger/Instagram Direct message) and the sender ``from`` of
# posts, comments and messages; Send API and comments' answers (not Graph objects).
UNTYPED: dict[str, frozenset[str]] = {
    "message": frozenset(
        {"id", "message", "created_time", "from", "to", "attachments", "tags", "sticker", "shares"}
    ),
    "sender": frozenset({"id", "name", "email", "username"}),
}
EDGE_WRAPPERS = frozenset({"data", "paging", "summary"})
MODIFIERS = frozenset({"filter", "order", "limit", "summary", "since", "until"})

Shape = type[AbstractCrudObject] | str  # an SDK class, or a key of UNTYPED


def sdk_class(name: str) -> type[AbstractCrudObject] | None:
    """``facebook_business.adobjects.<name lowercased>.<name>``, if the SDK has it."""
    try:
        module = importlib.import_module(f"facebook_business.adobjects.{name.lower()}")
    except ImportError:
        return None
    found = getattr(module, name, None)
    if not isinstance(found, type) or not issubclass(found, AbstractCrudObject):
        return None
    return None if found is AbstractCrudObject else found  # the SDK's "any object"


_EDGES: dict[str, dict[str, Shape | None]] = {}


def edges(cls: type[AbstractCrudObject]) -> dict[str, Shape | None]:
    """Edge name -> what it lists (None: the SDK does not say), from the ``get_*`` methods."""
    if cls.__name__ not in _EDGES:
        _EDGES[cls.__name__] = _read_edges(cls)
    return _EDGES[cls.__name__]


def _read_edges(cls: type[AbstractCrudObject]) -> dict[str, Shape | None]:
    found: dict[str, Shape | None] = {}
    for name, method in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("get_"):
            continue
        source = inspect.getsource(method)
        endpoint = re.search(r"endpoint='/(\w+)'", source)
        target = re.search(r"target_class=(\w+)", source)
        if endpoint and target:
            found[endpoint.group(1)] = sdk_class(target.group(1))
    if "messages" in found and found["messages"] is None:
        found["messages"] = "message"
    return found


def child_shape(shape: Shape, name: str) -> tuple[bool, Shape | None]:
    """Whether ``name`` exists on ``shape`` (field or edge), and the shape of its value."""
    if isinstance(shape, str):
        known = name in UNTYPED[shape]
        return known, ("sender" if name in {"from", "to"} else None)
    types_ = shape._field_types
    if name in types_:
        declared = re.sub(r"^list<(.+)>$", r"\1", str(types_[name]))
        if name == "from" and declared == "Object":
            return True, "sender"
        return True, sdk_class(declared)
    if name in edges(shape):
        return True, edges(shape)[name]
    return False, None


def shape_name(shape: Shape) -> str:
    return shape if isinstance(shape, str) else shape.__name__


def split_fields(spec: str) -> list[str]:
    """Top-level items of a ``fields`` value: commas inside ``{}`` or ``()`` do not split."""
    items, depth, current = [], 0, ""
    for char in spec:
        if char in "{(":
            depth += 1
        elif char in "})":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [*items, current] if current else items


def field_problems(spec: str, shape: Shape) -> list[str]:
    """Every requested field exists on the node, modifiers are documented, nested sets too."""
    problems = []
    for item in split_fields(spec):
        match = re.fullmatch(r"(\w+)((?:\.\w+\([^)]*\))*)(?:\{(.*)\})?", item)
        if not match:
            problems.append(f"{shape_name(shape)}: cannot read field {item!r}")
            continue
        name, modifiers, nested = match.groups()
        known, child = child_shape(shape, name)
        if not known:
            problems.append(f"{shape_name(shape)} has no field {name!r}")
            continue
        problems += [
            f"{shape_name(shape)}.{name}: modifier {m!r} is not documented"
            for m in re.findall(r"\.(\w+)\(", modifiers or "")
            if m not in MODIFIERS
        ]
        if nested is not None:
            if child is None:
                problems.append(f"{shape_name(shape)}.{name} has no fields to expand")
            else:
                problems += field_problems(nested, child)
    return problems


def object_problems(data: Any, shape: Shape, where: str = "") -> list[str]:
    """Keys of a Graph answer (recursively) that its node's spec does not declare."""
    if not isinstance(data, dict):
        return []
    problems = []
    for key, value in data.items():
        known, child = child_shape(shape, key)
        if not known:
            problems.append(f"{where}{shape_name(shape)} has no field {key!r}")
        elif not scalar_fits(shape, key, value):
            problems.append(f"{where}{shape_name(shape)}.{key} is not {shape._field_types[key]}")  # type: ignore[union-attr]
        elif child is not None:
            problems += edge_or_object_problems(value, child, f"{where}{key}.")
    return problems


SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "datetime": (str, int),  # ISO 8601 in answers, epoch seconds in some webhooks
    "int": (int,),
    "unsigned int": (int,),
    "bool": (bool,),
}


def scalar_fits(shape: Shape, key: str, value: Any) -> bool:
    """A value of a field the spec types as a scalar has that type (ids are strings)."""
    if isinstance(shape, str):
        return True
    wanted = SCALARS.get(str(shape._field_types.get(key)))
    if wanted is None:
        return True
    if bool not in wanted and isinstance(value, bool):
        return False
    return isinstance(value, wanted)


def edge_or_object_problems(value: Any, shape: Shape, where: str) -> list[str]:
    """An edge's ``{"data": [...], "paging", "summary"}``, a list, or one nested object."""
    if isinstance(value, list):
        return [p for row in value for p in object_problems(row, shape, where)]
    if isinstance(value, dict) and "data" in value and set(value) <= EDGE_WRAPPERS:
        return edge_or_object_problems(value["data"], shape, where)
    return object_problems(value, shape, where)


def edge_parameters(cls: type[AbstractCrudObject], method: str) -> frozenset[str]:
    """The parameters the spec gives an edge call (``IGUser.create_media``'s ``param_types``)."""
    source = inspect.getsource(getattr(cls, method))
    block = re.search(r"param_types = \{(.*?)\}", source, re.S)
    return frozenset(re.findall(r"'(\w+)':", block.group(1) if block else ""))


def form_problems(form: dict[str, str], cls: type[AbstractCrudObject], method: str) -> list[str]:
    allowed = edge_parameters(cls, method)
    return [
        f"{key} is not a parameter of {cls.__name__}.{method}" for key in form if key not in allowed
    ]
