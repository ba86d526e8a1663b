"""Readable paths for the variables of a TF2 object-based checkpoint, from its object graph alone.

A TF2 checkpoint (and a SavedModel's `variables/`) stores each tensor under a checkpoint key such
as `encoder/layer_with_weights-4/_attention_layer/_query_dense/kernel/.ATTRIBUTES/VARIABLE_VALUE`
or, for a Keras SavedModel, just `variables/7/.ATTRIBUTES/VARIABLE_VALUE`. The entry
`_CHECKPOINTABLE_OBJECT_GRAPH` is a serialized `TrackableObjectGraph`: nodes with named children
and the checkpoint keys of their attributes. Walking the children breadth-first from the root (in
stored order, the order TF itself walks) gives every variable the shortest path of object
attribute names that reaches it, which is what this module returns. Edges are preferred in three
tiers: an object's own attributes (`_transformer_layers/0/_attention_layer`) first; then a Keras
functional model's numbering of its layers (`layer_with_weights-4`, `layer-5`), which shifts when
a layer is added; last the edges that only aggregate variables already owned by a layer
(`variables/7`, `trainable_variables/7`, `keras_api/…`), so a Keras SavedModel's `variables/7` gets
its layer's path. The same network therefore gets the same paths whether it was saved as a
functional or a subclassed model, in a checkpoint or in a SavedModel.
No graph is run and no model class is needed.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from . import wire

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
VALUE_ATTRIBUTE = "VARIABLE_VALUE"
ATTRIBUTES_MARK = "/.ATTRIBUTES/"

# Children that only list variables owned elsewhere (Keras' weight lists, the SavedModel's
# `variables` collection, optimizer bookkeeping); a path through them is used only as a last resort.
AGGREGATE_EDGES = frozenset(
    {
        "variables",
        "trainable_variables",
        "non_trainable_variables",
        "_variables",
        "_trainable_weights",
        "_non_trainable_weights",
        "keras_api",
        "_self_saveable_object_factories",
        "signatures",
        "_default_save_signature",
    }
)


FUNCTIONAL_NUMBERING = re.compile(r"layer(_with_weights)?-[0-9]+")


class DamagedObjectGraph(ValueError):
    """The object graph cannot be parsed or does not describe a tree of objects."""


@dataclass(frozen=True)
class GraphTensor:
    """One stored tensor as the object graph names it."""

    path: str  # readable object path: `encoder/_transformer_layers/0/_attention_layer/…/kernel`
    checkpoint_key: str  # the key in the tensor bundle
    full_name: str  # the variable's own name when it was created (`transformer/layer_0/…`)


@dataclass(frozen=True)
class Child:
    """`ObjectReference`: node_id 1, local_name 2."""

    node_id: int
    local_name: str


@dataclass(frozen=True)
class Attribute:
    """`SerializedTensor`: name 1, full_name 2, checkpoint_key 3."""

    name: str
    full_name: str
    checkpoint_key: str


@dataclass(frozen=True)
class Slot:
    """`SlotVariableReference`: original_variable_node_id 1, slot_name 2,
    slot_variable_node_id 3."""

    original_variable_node_id: int
    slot_name: str
    slot_variable_node_id: int


@dataclass(frozen=True)
class Node:
    """`TrackableObject`: children 1, attributes 2, slot_variables 3 (others unused here)."""

    children: tuple[Child, ...]
    attributes: tuple[Attribute, ...]
    slot_variables: tuple[Slot, ...]


@dataclass(frozen=True)
class Graph:
    """`TrackableObjectGraph`: nodes 1."""

    nodes: tuple[Node, ...]


def _strings(buf: bytes, numbers: tuple[int, ...]) -> dict[int, str]:
    found = {n: "" for n in numbers}
    for number, value in wire.fields(buf):
        if number in found:
            found[number] = wire.text(value)
    return found


def _ints(buf: bytes, numbers: tuple[int, ...]) -> dict[int, int]:
    found = dict.fromkeys(numbers, 0)
    for number, value in wire.fields(buf):
        if number in found:
            found[number] = wire.signed64(value)
    return found


def _node(buf: bytes) -> Node:
    children, attributes, slots = [], [], []
    for number, value in wire.fields(buf):
        if number == 1:
            child = wire.message(value)
            children.append(Child(_ints(child, (1,))[1], _strings(child, (2,))[2]))
        elif number == 2:
            names = _strings(wire.message(value), (1, 2, 3))
            attributes.append(Attribute(names[1], names[2], names[3]))
        elif number == 3:
            slot = wire.message(value)
            ids = _ints(slot, (1, 3))
            slots.append(Slot(ids[1], _strings(slot, (2,))[2], ids[3]))
    return Node(tuple(children), tuple(attributes), tuple(slots))


def parse(serialized: bytes) -> Graph:
    """The `TrackableObjectGraph` proto, decoded from its wire format (no TensorFlow)."""
    try:
        graph = Graph(tuple(_node(wire.message(v)) for n, v in wire.fields(serialized) if n == 1))
    except wire.WireError as exc:
        raise DamagedObjectGraph(f"cannot parse the object graph ({exc})") from None
    if not graph.nodes:
        raise DamagedObjectGraph("the object graph has no nodes")
    return graph


def _skip_none(name: str) -> bool:
    return False


def _skip_aggregates(name: str) -> bool:
    return name in AGGREGATE_EDGES


def _skip_numbering(name: str) -> bool:
    return name in AGGREGATE_EDGES or FUNCTIONAL_NUMBERING.fullmatch(name) is not None


def _walk(graph, skip) -> dict[int, str]:
    """Breadth-first paths from the root (node 0), in stored child order, not using edges for
    which `skip(local_name)` holds."""
    paths = {0: ""}
    queue = deque([0])
    count = len(graph.nodes)
    while queue:
        node = queue.popleft()
        for child in graph.nodes[node].children:
            if not 0 <= child.node_id < count:
                raise DamagedObjectGraph(f"a child refers to node {child.node_id} of {count}")
            if child.node_id in paths or skip(child.local_name):
                continue
            prefix = paths[node]
            paths[child.node_id] = f"{prefix}/{child.local_name}" if prefix else child.local_name
            queue.append(child.node_id)
    return paths


def _attribute_key(attribute) -> str:
    return "" if attribute.name == VALUE_ATTRIBUTE else "/" + attribute.name


def tensors(graph) -> list[GraphTensor]:
    """Every stored tensor the graph names, with its readable path."""
    tiers = [_walk(graph, skip) for skip in (_skip_numbering, _skip_aggregates, _skip_none)]
    paths: dict[int, str] = {}
    for tier in reversed(tiers):
        paths.update(tier)
    out: dict[str, GraphTensor] = {}
    for node_id, node in enumerate(graph.nodes):
        base = paths.get(node_id)
        if base is None:
            continue  # unreachable from the root: TF would not restore it either
        for attribute in node.attributes:
            key = attribute.checkpoint_key
            path = base + _attribute_key(attribute)
            out.setdefault(key, GraphTensor(path, key, attribute.full_name))
    # Optimizer slots hang off the optimizer node, named by the variable they belong to.
    for node in graph.nodes:
        for slot in node.slot_variables:
            if not 0 <= slot.slot_variable_node_id < len(graph.nodes):
                raise DamagedObjectGraph(f"a slot refers to node {slot.slot_variable_node_id}")
            owner = paths.get(
                slot.original_variable_node_id, f"node_{slot.original_variable_node_id}"
            )
            for attribute in graph.nodes[slot.slot_variable_node_id].attributes:
                key = attribute.checkpoint_key
                path = f"{owner}/.OPTIMIZER_SLOT/{slot.slot_name}" + _attribute_key(attribute)
                out[key] = GraphTensor(path, key, attribute.full_name)
    paths = [t.path for t in out.values()]
    if len(set(paths)) != len(paths):
        raise DamagedObjectGraph("two stored tensors get the same object path")
    return list(out.values())
