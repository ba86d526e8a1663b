"""The `tf2pt` command. Expected failures are caught here, once, and printed as one line."""

from __future__ import annotations

import json
import re
import signal
import sys
import traceback
from pathlib import Path

import click

from . import __version__
from .convert import Analysis, ConvertOptions, analyse, convert, open_with_table, plan_source
from .errors import BatchError, InputError, Tf2ptError, UsageError
from .mapping import load_table, table_names
from .plan import accounting_table
from .writer import json_text

ATOL_DEFAULT = 1e-5
SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
}


def _say(message: str) -> None:
    click.echo(f"tf2pt: {message}", err=True)


def _size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in SIZE_UNITS:
        raise UsageError(f"cannot read size '{text}'", hint="write e.g. 5GB, 500MB or 1000000")
    return int(m.group(1)) * SIZE_UNITS[m.group(2).upper()]


def _print_json(data: object) -> None:
    click.echo(json_text(data))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tf2pt")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for errors.")
def cli(verbose: bool) -> None:
    """Convert TensorFlow/Keras RoBERTa- and BERT-family checkpoints to PyTorch, account for
    every weight, and prove parity by running both models."""


def _parity_hook(atol: float, texts: tuple[str, ...], out: Path):
    def run(analysis: Analysis, staged: Path):
        from .verify.parity import run_parity
        from .verify.report import write_reports

        result = run_parity(analysis, staged, atol, texts, progress=_say, published_as=out)
        write_reports(result, staged)
        _say(
            f"parity {'passed' if result.passed else 'FAILED'}: max abs diff "
            f"{result.max_abs_diff:.3g} (atol {atol:g})"
        )
        return result.failure()

    return run


@cli.command("convert")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--head", help="Model head (default: detected from the weights and config).")
@click.option("--arch", help="Architecture table to use (default: the config's model_type).")
@click.option("--num-labels", type=int, help="Trust the classifier's weights over config.json.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--no-verify", is_flag=True, help="Skip the parity check (no TF/PyTorch import).")
@click.option(
    "--atol",
    type=float,
    default=ATOL_DEFAULT,
    show_default=True,
    help="Parity tolerance: max abs diff allowed per output.",
)
@click.option("--text", "texts", multiple=True, help="Real text for parity (needs a tokenizer).")
@click.option(
    "--max-shard-size",
    default="5GB",
    show_default=True,
    help="Split model.safetensors above this size.",
)
@click.option(
    "--tokenizer",
    type=click.Path(path_type=Path),
    help="Tokenizer to convert when it is not beside the weights: a keras-hub preset or assets "
    "dir, a .keras file, an HF tokenizer dir or a vocab.txt.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the conversion report as JSON.")
def convert_cmd(
    src,
    out,
    head,
    arch,
    num_labels,
    force,
    no_verify,
    atol,
    texts,
    max_shard_size,
    tokenizer,
    as_json,
):
    """Convert the checkpoint SRC into the PyTorch directory OUT (then verify parity)."""
    if tokenizer is not None and not tokenizer.exists():
        raise InputError("no such file or directory", tokenizer, "check the --tokenizer path")
    options = ConvertOptions(
        head=head,
        arch=arch,
        num_labels=num_labels,
        force=force,
        max_shard_bytes=_size(max_shard_size),
        tokenizer=tokenizer,
        texts=texts,
    )
    verify = None if no_verify else _parity_hook(atol, texts, out)
    result = convert(src, out, options, progress=_say, verify=verify)
    if as_json:
        _print_json(result.report)
    counts = result.report["counts"]
    _say(
        f"wrote {out} ({result.report['class']}, {counts['parameters']:,} parameters; "
        f"{counts['mapped']} mapped, {counts['duplicates']} duplicate, {counts['ignored']} "
        f"ignored, {counts['tied']} tied, {counts['synthesized']} synthesized)"
    )
    _say(f"report: {out / 'conversion_report.json'}")


@cli.command("verify")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--atol", type=float, default=ATOL_DEFAULT, show_default=True)
@click.option("--text", "texts", multiple=True, help="Real text for parity (needs a tokenizer).")
@click.option("--arch", help="Architecture table to use (default: the config's model_type).")
@click.option("--json", "as_json", is_flag=True, help="Print the parity report as JSON.")
def verify_cmd(src, out, atol, texts, arch, as_json):
    """Run SRC's TF model and the converted model in OUT on the same inputs; compare."""
    from .verify.parity import run_parity
    from .verify.report import MD_FILE, write_reports

    config_path = out / "config.json"
    try:
        out_config = json.loads(config_path.read_text())
        class_name = out_config["architectures"][0]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise InputError(
            "not a converted model directory (no readable config.json with architectures)", out
        ) from None
    source, table = open_with_table(src, arch)
    head = table.head_for_class(class_name)
    if head is None:
        raise InputError(f"{class_name} is not a {table.architecture} class", out)
    labels = out_config.get("id2label")
    options = ConvertOptions(arch=arch, head=head, num_labels=len(labels) if labels else None)
    analysis = plan_source(source, table, options)
    result = run_parity(analysis, out, atol, texts, progress=_say)
    write_reports(result, out)
    tokenizer_failure = _verify_tokenizer(source, out, texts)  # tokenizer parity (issue 18)
    if as_json:
        _print_json(result.to_dict())
    _say(
        f"parity {'passed' if result.passed else 'FAILED'}: max abs diff "
        f"{result.max_abs_diff:.3g} (atol {atol:g}); report: {out / MD_FILE}"
    )
    failure = result.failure() or tokenizer_failure
    if failure is not None:
        raise failure


def _verify_tokenizer(source, out: Path, texts: tuple[str, ...]):
    """Compare the source's tokenizer with OUT's; the section joins parity_report.md."""
    from .tokenizers import append_markdown, parity_failure, verify_tokenizer

    result = verify_tokenizer(source, out, texts)
    if result is None:
        return None
    append_markdown(out, result.markdown_lines())
    _say(
        f"tokenizer parity {'passed' if result.passed else 'FAILED'}: "
        f"{result.equal}/{result.rows} rows identical"
    )
    return parity_failure(result, out)


@cli.command("inspect")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--head", help="Account under this head instead of the detected one.")
@click.option("--arch", help="Architecture table to use.")
@click.option("--json", "as_json", is_flag=True)
def inspect_cmd(src, head, arch, as_json):
    """Show the source's format, architecture, head, config and every tensor's fate."""
    analysis = analyse(src, ConvertOptions(head=head, arch=arch))
    source, plan = analysis.source, analysis.plan
    fates = {
        m.src: f"→ {m.dst}" + "".join(f" [{o.describe()}]" for o in m.ops) for m in plan.mapped
    }
    fates |= {
        d.src: f"= copy of {d.same_as} (checked equal when converting)" for d in plan.duplicates
    }
    fates |= {i.src: f"ignored: {i.reason}" for i in plan.ignored}
    fates |= {u.name: "UNEXPECTED" for u in plan.unexpected}
    fates |= {m.src: f"SHAPE MISMATCH → {m.dst}" for m in plan.mismatched}
    keys = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
        "type_vocab_size",
        "num_labels",
        "layer_norm_eps",
        "hidden_act",
    )
    if as_json:
        _print_json(
            {
                "layout": source.layout,
                "table": plan.table.name,
                "head": plan.head,
                "class": plan.class_name,
                "config": {k: plan.dims.get(k) for k in keys},
                "tensors": [
                    {
                        "name": t.name,
                        "shape": list(t.shape),
                        "dtype": t.dtype.name,
                        "fate": fates.get(t.name, ""),
                    }
                    for t in source.tensors
                ],
                "clean": plan.clean,
                "notes": plan.notes,
            }
        )
        return
    click.echo(f"source:  {source.path} ({source.layout}; {len(source.weight_files)} file(s))")
    click.echo(f"table:   {plan.table.name}")
    click.echo(f"head:    {plan.head} → {plan.class_name}")
    click.echo("config:  " + ", ".join(f"{k}={plan.dims.get(k)}" for k in keys))
    for note in plan.notes:
        click.echo(f"note:    {note}")
    width = max((len(t.name) for t in source.tensors), default=0)
    for t in source.tensors:
        click.echo(f"  {t.name:<{width}} {str(list(t.shape)):<14} {fates.get(t.name, '')}")
    if not plan.clean:
        click.echo(accounting_table(plan))


@cli.command("summarize")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option(
    "--sources",
    type=click.Path(path_type=Path),
    help="The batch's SRC_DIR, so sources that were never converted are listed too.",
)
def summarize_cmd(out_dir, sources):
    """Write OUT_DIR/summary.json and summary.md for a batch conversion (make convert-all).

    Exits 1 when any source failed or did not run."""
    from .summary import SUMMARY_MD, write_summary

    if not out_dir.is_dir():
        raise InputError("not a directory", out_dir, "run make convert-all first")
    if sources is not None and not sources.is_dir():
        raise InputError("not a directory", sources)
    rows = write_summary(out_dir, sources)
    click.echo((out_dir / SUMMARY_MD).read_text())
    bad = [r["name"] for r in rows if r["status"] != "ok"]
    _say(
        f"{len(rows) - len(bad)} of {len(rows)} sources converted and verified; "
        f"summary: {out_dir / SUMMARY_MD}"
    )
    if bad:
        raise BatchError(
            f"{len(bad)} source(s) failed or did not run: {', '.join(bad)}",
            out_dir,
            "see summary.md and each <name>.log",
        )


@cli.command("doctor")
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="Model dir or config.json to load into (default: the config.json beside CKPT).",
)
@click.option("--arch", help="Architecture, when there is no config (roberta, bert, …).")
@click.option("--head", help="Model head (default: the config's class, else the best fit).")
@click.option("--num-labels", type=int, help="Build the model with this many labels.")
@click.option("--drop-head", is_flag=True, help="Re-initialise a head that does not fit.")
@click.option(
    "--fix",
    "fix_out",
    type=click.Path(path_type=Path),
    help="Write the repaired checkpoint to this save_pretrained-style directory.",
)
@click.option("--force", is_flag=True, help="Replace an existing --fix directory.")
@click.option("--max-shard-size", default="5GB", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
def doctor_cmd(
    ckpt, model, arch, head, num_labels, drop_head, fix_out, force, max_shard_size, as_json
):
    """Explain why the PyTorch checkpoint CKPT does (not) load cleanly into a transformers
    model, and with --fix write a repaired copy. Exit 0 when it loads (as is or after
    repair), 1 when it cannot load without losing weights."""
    from .doctor import examine
    from .doctor.diagnose import LOSSY
    from .doctor.fix import REPORT_FILE, write_fixed
    from .doctor.report import render

    max_shard_bytes = _size(max_shard_size)
    found = examine(ckpt, model, arch, head, num_labels, drop_head)
    diagnosis = found.diagnosis
    if as_json:
        _print_json(diagnosis.to_dict())
    else:
        for line in render(diagnosis):
            click.echo(line)
    if fix_out is not None:
        files = write_fixed(
            found.checkpoint, found.target, diagnosis, fix_out, force, max_shard_bytes
        )
        _say(f"wrote {fix_out} ({len(files)} files; report: {fix_out / REPORT_FILE})")
    elif diagnosis.verdict == LOSSY:
        sys.exit(1)


@cli.command("archs")
def archs_cmd():
    """List the mapping tables: architecture, source layout and heads."""
    for name in table_names():
        table = load_table(name)
        heads = ", ".join(f"{h} ({table.class_name(h)})" for h in table.heads)
        variant = f" (extends {table.extends})" if table.extends else ""
        click.echo(
            f"{name}{variant}: {table.description}\n  layout: {table.layout}; model_types: "
            f"{', '.join(table.model_types)}\n  heads: {heads}"
        )


class _Terminated(Exception):
    """SIGTERM, raised as an exception so staged output is cleaned up on the way out."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(args=argv, prog_name="tf2pt", standalone_mode=False)
    except Tf2ptError as exc:
        if exc.details:
            click.echo(exc.details, err=True)
        if verbose:
            traceback.print_exc()
        click.echo(f"tf2pt: error: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except (KeyboardInterrupt, click.Abort, _Terminated):
        click.echo("tf2pt: interrupted; no output was written", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
