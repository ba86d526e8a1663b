"""Which table converts a source: by the config's model_type or --arch, else by how well each
table of the layout fits the source's tensor names (a TF1 checkpoint names no architecture)."""

from __future__ import annotations

from ..errors import InputError
from .load import load_table, table_names
from .model import Table


def _fit(table: Table, names: list[str]) -> tuple[int, int]:
    """(source names no head of `table` places, names its rules map). A name is placed by a
    rule, a stored-copy declaration or an ignore rule (the table's or a head's)."""
    heads = [table.compiled(h) for h in table.heads]
    mapped = ignored = 0
    for n in names:
        if any(c.rules_for(n) or c.duplicates_for(n) for c in heads):
            mapped += 1
        elif any(c.ignore_reason(n) is not None for c in heads):
            ignored += 1
    return len(names) - mapped - ignored, mapped


def _needs_config(table: Table, by_name: dict[str, Table]) -> bool:
    """A variant of another layout's table (a Keras save_weights checkpoint of a transformers
    class) takes its sizes from that class's config.json: it is never chosen without one."""
    parent = by_name.get(table.extends) if table.extends else None
    return parent is not None and parent.layout != table.layout


def _select_by_fit(layout: str, tables: list[Table], names: list[str]) -> Table:
    """A config-less source (a TF2 checkpoint) picks its table by its tensor names, as a head is
    picked: the one table that places every name, else the one that maps the most; a tie is an
    error rather than a guess."""
    fits = {t.name: _fit(t, names) for t in tables}
    complete = [t for t in tables if fits[t.name][0] == 0 and fits[t.name][1] > 0]
    if len(complete) == 1:
        return complete[0]
    pool = complete or [t for t in tables if fits[t.name][1] > 0]
    best = max((fits[t.name][1] for t in pool), default=0)
    top = [t for t in pool if fits[t.name][1] == best]
    if len(top) == 1:
        return top[0]
    if not top:
        raise InputError(
            f"no {layout} mapping table recognises any of its {len(names)} tensor names",
            hint="unknown producer; tf2pt inspect lists the names, tf2pt archs the known layouts",
        )
    raise InputError(
        f"its tensor names fit several {layout} tables equally: " + ", ".join(t.name for t in top),
        hint="choose one with --arch",
    )


def _refuse_variant_without_config(
    layout: str, tables: list[Table], of_layout: list[Table], names: list[str]
) -> None:
    """Tensor names that only a variant table places (one that `extends:` another and takes its
    sizes from the config, e.g. a Keras save_weights checkpoint) came without their config."""

    def places_all(table: Table) -> bool:
        unplaced, mapped = _fit(table, names)
        return unplaced == 0 and mapped > 0

    if any(places_all(t) for t in of_layout):
        return
    variants = [t for t in tables if t.layout == layout and t.extends and places_all(t)]
    if variants:
        raise InputError(
            f"its tensor names are those of {variants[0].description}, "
            "which needs the model's config.json and none is next to it",
            hint="put the config.json of the model beside the checkpoint "
            "(model.config.save_pretrained(dir) writes one)",
        )


def select_table(
    layout: str,
    model_type: str | None,
    arch: str | None = None,
    names: list[str] | None = None,
    tables: list[Table] | None = None,
) -> Table:
    """The table for this layout whose architecture (or accepted model_types) fits; without a
    config naming one, the layout's only table, or (given the source's tensor `names`) the
    table that fits them. `tables`: the candidates (default: every shipped table)."""
    wanted = arch or model_type
    if tables is None:
        tables = [load_table(n) for n in table_names()]
    by_name = {t.name: t for t in tables}
    if wanted is None:  # no config names it (a TF1 checkpoint): the layout's own architecture
        of_layout = [t for t in tables if t.layout == layout and not _needs_config(t, by_name)]
        if len(of_layout) == 1:
            return of_layout[0]
        if names is not None and of_layout:
            _refuse_variant_without_config(layout, tables, of_layout, names)
            return _select_by_fit(layout, of_layout, names)
        if of_layout:
            raise InputError(
                f"no config names the architecture, and {len(of_layout)} {layout} tables "
                f"could convert it: {', '.join(t.name for t in of_layout)}",
                hint="choose one with --arch",
            )
    of_arch = [t for t in tables if t.layout == layout and t.serves(wanted)]
    if len(of_arch) > 1 and names is not None:
        return _select_by_fit(layout, of_arch, names)
    if of_arch:
        return of_arch[0]
    raise InputError(
        f"model_type '{wanted}' is not a supported architecture for {layout} checkpoints",
        hint=f"supported: {'; '.join(_supported(tables, layout)) or 'none'}",
    )


def _supported(tables: list[Table], layout: str) -> list[str]:
    """Each architecture the layout's tables convert, by the model_types a config names it with,
    and the source classes its heads take where the tables name them (keras-hub's)."""
    lines = []
    for table in sorted((t for t in tables if t.layout == layout), key=lambda t: t.model_types):
        classes = sorted({h.source_class for h in table.heads.values() if h.source_class})
        names = ", ".join(table.model_types)
        line = f"{names} ({', '.join(classes)})" if classes else names
        if line not in lines:  # a layout's variants of one architecture (save_weights tables)
            lines.append(line)
    return lines
