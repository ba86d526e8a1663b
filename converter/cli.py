"""The `tf2pt` command. Expected failures are caught here, once, and printed as one line."""

from __future__ import annotations

import os
import re
import signal
import sys
import traceback
from pathlib import Path

import click

from . import __version__, api
from .errors import BatchError, InputError, Tf2ptError, UsageError
from .plan.accounting_text import accounting_table, placement_text
from .plan.analysis import analyse
from .progress import Ticker
from .provenance import parse_patch, parse_settings
from .report.conversion import source_row
from .tables import load_table, table_names
from .tables.config_keys import family_tables, model_keys
from .tf_import import VERBOSE_ENV
from .write.dtypes import DEFAULT_DTYPE, OUTPUT_DTYPES
from .write.model_files import json_text

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


def _echo(message: str) -> None:
    click.echo(f"tf2pt: {message}", err=True)


def _say(message: str) -> None:
    """A progress line, through the command's Ticker (progress.py) when one runs."""
    context = click.get_current_context(silent=True)
    say = (context.obj or {}).get("say") if context is not None else None
    (say or _echo)(message)


def _size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in SIZE_UNITS:
        raise UsageError(f"cannot read size '{text}'", hint="write e.g. 5GB, 500MB or 1000000")
    return int(m.group(1)) * SIZE_UNITS[m.group(2).upper()]


def _print_json(data: object) -> None:
    click.echo(json_text(data))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tf2pt")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show tracebacks for errors, and TensorFlow's own start-up log lines.",
)
def cli(verbose: bool) -> None:
    """Convert TensorFlow/Keras transformer encoder checkpoints (every architecture and source
    layout `tf2pt archs` lists) to PyTorch, account for every weight, and prove parity by running
    both models."""


def _own_process() -> bool:
    """Whether this process is the `tf2pt` command's own (see main)."""
    obj = click.get_current_context().obj
    return bool(obj and obj.get("own_process"))


def _tolerance_options(command):
    """--atol/--rtol: replace the measured-noise gate with fixed bounds."""
    atol = click.option(
        "--atol",
        type=float,
        help="Fixed parity tolerance: max abs diff allowed per output (default: 10 × the "
        "float32 noise measured on the converted model; see docs/parity-and-diagnosis.md).",
    )
    rtol = click.option(
        "--rtol",
        type=float,
        help="Fixed relative term, × each output's largest magnitude (added to --atol).",
    )
    return atol(rtol(command))


def _config_option(command):
    """--config FILE: the source's config, read as if it were the file beside the weights."""
    return click.option(
        "--config",
        type=click.Path(path_type=Path),
        help="The source's config file (bert_config.json, config.json, …), read in the "
        "producer's terms in place of the one beside the weights (or where there is none); "
        "the TF reference is built from it too.",
    )(command)


def _diagnosis_option(command):
    """--no-diagnosis: when parity fails, do not try the known causes (diagnosis.py)."""
    return click.option(
        "--no-diagnosis",
        is_flag=True,
        help="When parity fails, do not try known causes on the converted model (they cost "
        "at most about one more verify; the best passing one is printed with its command).",
    )(command)


@cli.command("convert")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--head", help="Model head (default: detected from the weights and config).")
@click.option("--arch", help="Architecture table to use (default: the config's model_type).")
@click.option("--num-labels", type=int, help="Trust the classifier's weights over config.json.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--no-verify", is_flag=True, help="Skip the parity check (no TF/PyTorch import).")
@_tolerance_options
@_diagnosis_option
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
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A value for the converted model's config.json, in transformers' terms (e.g. "
    "hidden_act=gelu_new), over the source config and the table's defaults; the TF reference "
    "keeps the source's value (it takes yours only where the table guessed), so parity tests "
    "it. Repeatable.",
)
@_config_option
@click.option(
    "--patch",
    "patches",
    multiple=True,
    metavar="OP=TENSOR[,TENSOR…]",
    help="A weight-layout fix applied to the converted tensors (PyTorch names) before they are "
    "written: transpose (a square weight), swap (two tensors of one shape), permute_heads (a "
    "q/k/v weight's [heads, head_dim] rows to [head_dim, heads]), zero (a bias). Repeatable.",
)
@click.option(
    "--tokenizer-style",
    type=click.Choice(["faithful", "canonical"]),
    default="faithful",
    show_default=True,
    help="faithful: the source's own tokenization rules; canonical: the family's Hugging Face "
    "tokenizer, reported as a chosen deviation where the two differ.",
)
@click.option(
    "--dtype",
    type=click.Choice(list(OUTPUT_DTYPES)),
    default=DEFAULT_DTYPE,
    show_default=True,
    help="Write every floating tensor in this dtype (rounded to nearest even); parity runs the "
    "converted model in it and judges it against that dtype's own measured noise.",
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
    rtol,
    no_diagnosis,
    texts,
    max_shard_size,
    tokenizer,
    settings,
    config,
    patches,
    tokenizer_style,
    dtype,
    as_json,
):
    """Convert the checkpoint SRC into the PyTorch directory OUT (then verify parity)."""
    if tokenizer is not None and not tokenizer.exists():
        raise InputError("no such file or directory", tokenizer, "check the --tokenizer path")
    overrides = parse_settings(settings)
    fixes = tuple(parse_patch(p) for p in patches)
    if not no_verify:
        _needs(
            "verify",
            "convert (which verifies parity unless --no-verify)",
            instead="pass --no-verify to convert without the parity check",
        )
    result = api.convert(
        src,
        out,
        head=head,
        arch=arch,
        num_labels=num_labels,
        force=force,
        verify=not no_verify,
        atol=atol,
        rtol=rtol,
        texts=texts,
        max_shard_bytes=_size(max_shard_size),
        tokenizer=tokenizer,
        settings=overrides,
        config=config,
        patches=fixes,
        tokenizer_style=tokenizer_style,
        dtype=dtype,
        progress=_say,
        own_process=_own_process(),
        diagnose=not no_diagnosis,
    )
    if as_json:
        _print_json(result.report)
    counts = result.report["counts"]
    _say(
        f"wrote {out} ({result.report['class']}, {counts['parameters']:,} {dtype} parameters; "
        f"{counts['mapped']} mapped, {counts['duplicates']} duplicate, {counts['ignored']} "
        f"ignored, {counts['tied']} tied, {counts['synthesized']} synthesized)"
    )
    _say(f"report: {out / 'conversion_report.json'}")


@cli.command("verify")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@_tolerance_options
@_diagnosis_option
@click.option("--text", "texts", multiple=True, help="Real text for parity (needs a tokenizer).")
@click.option("--arch", help="Architecture table to use (default: the config's model_type).")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print the parity report as JSON.")
def verify_cmd(src, out, atol, rtol, no_diagnosis, texts, arch, config, as_json):
    """Run SRC's TF model and the converted model in OUT on the same inputs; compare.

    (No --set or --patch: they change what OUT is, and OUT is already written; verify checks
    it as it is against the source, whose config --config may give.)"""
    _needs("verify", "verify")
    from .report.parity import MD_FILE

    result = api.verify(
        src,
        out,
        arch=arch,
        atol=atol,
        rtol=rtol,
        texts=texts,
        config=config,
        progress=_say,
        own_process=_own_process(),
        diagnose=not no_diagnosis,
    )
    if as_json:
        _print_json(result.to_dict())
    _say(f"{api.parity_line(result)}; report: {out / MD_FILE}")
    failure = result.failure()
    if failure is not None:
        raise failure


@cli.command("inspect")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--head", help="Account under this head instead of the detected one.")
@click.option("--arch", help="Architecture table to use.")
@_config_option
@click.option("--json", "as_json", is_flag=True)
def inspect_cmd(src, head, arch, config, as_json):
    """Show the source's format, architecture, head, config (with every value the source does
    not state, and why) and every tensor's fate."""
    analysis = analyse(src, head=head, arch=arch, config_file=config)
    source, plan = analysis.source, analysis.plan
    placements = plan.placements()
    keys = model_keys(plan.table, family_tables(plan.table.architecture))
    if as_json:
        _print_json(
            {
                "layout": source.layout,
                "table": plan.table.name,
                "head": plan.head,
                "class": plan.class_name,
                "config": {k: plan.dims.get(k) for k in keys},
                "tensors": [
                    source_row(t, placements[t.name]) | {"text": placement_text(placements[t.name])}
                    for t in source.tensors
                ],
                "clean": plan.clean,
                "notes": plan.notes,
                "assumptions": [a.to_dict() for a in analysis.assumptions],
            }
        )
        return
    click.echo(f"source:  {source.path} ({source.layout}; {len(source.weight_files)} file(s))")
    click.echo(f"table:   {plan.table.name}")
    click.echo(f"head:    {plan.head} → {plan.class_name}")
    click.echo("config:  " + ", ".join(f"{k}={plan.dims.get(k)}" for k in keys))
    for note in plan.notes:
        click.echo(f"note:    {note}")
    for assumption in analysis.assumptions:
        click.echo(f"config:  {assumption.line()}")
    width = max((len(t.name) for t in source.tensors), default=0)
    for t in source.tensors:
        text = placement_text(placements[t.name])
        click.echo(f"  {t.name:<{width}} {str(list(t.shape)):<14} {text}")
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
    from .report.summary import SUMMARY_MD, write_summary

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
    "--config",
    "model",
    type=click.Path(path_type=Path),
    help="Model dir or config.json to load into (default: the config.json beside CKPT).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A config value the weights do not show (e.g. num_attention_heads=12); repeatable.",
)
@click.option(
    "--accept-assumed",
    is_flag=True,
    help="Exit 0 and let --fix write even when a config value had to be guessed.",
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
    ckpt,
    model,
    settings,
    accept_assumed,
    arch,
    head,
    num_labels,
    drop_head,
    fix_out,
    force,
    max_shard_size,
    as_json,
):
    """Explain why the PyTorch checkpoint CKPT (safetensors, torch.save files of any name such
    as Lightning's .ckpt, fairseq's model.pt) does (not) load cleanly into a transformers model,
    and with --fix write a repaired copy. Exit 0 when it loads (as is or after repair), 1 when
    it cannot load without losing weights or rests on a guessed config value (unless
    --accept-assumed)."""
    from .doctor.diagnose import LOSSY
    from .doctor.fix import REPORT_FILE
    from .doctor.report import render

    _needs("doctor", "doctor")
    max_shard_bytes = _size(max_shard_size)
    overrides = parse_settings(settings)
    found = api.doctor(
        ckpt,
        model=model,
        arch=arch,
        head=head,
        num_labels=num_labels,
        drop_head=drop_head,
        settings=overrides,
        max_shard_bytes=max_shard_bytes,
    ).examination
    diagnosis = found.diagnosis
    if as_json:
        _print_json(diagnosis.to_dict())
    else:
        for line in render(diagnosis):
            click.echo(line)
    if fix_out is not None:
        files = api.repair(
            found,
            fix_out,
            force=force,
            accept_assumed=accept_assumed,
            model=model,
            max_shard_bytes=max_shard_bytes,
            progress=_say,
        )
        _say(f"wrote {fix_out} ({len(files)} files; report: {fix_out / REPORT_FILE})")
    elif diagnosis.verdict == LOSSY:
        sys.exit(1)
    elif diagnosis.assumed and not accept_assumed:
        _say(
            f"the verdict rests on guessed config values ({', '.join(sorted(diagnosis.assumed))})"
            " — pass --model DIR_OR_CONFIG or --set KEY=VALUE, or --accept-assumed"
        )
        sys.exit(1)


@cli.command("sweep")
@click.argument("directories", nargs=-1, required=True, type=click.Path(path_type=Path))
def sweep_cmd(directories):
    """Remove the hidden partial outputs (.NAME.tf2pt-partial-PID) that killed runs left in
    DIRECTORIES, never a live run's. convert and doctor --fix do this for their own output;
    make convert-all does it for OUT_DIR."""
    from .write.staging import sweep_stale

    for directory in directories:
        if not directory.is_dir():
            raise InputError("not a directory", directory)
        for line in sweep_stale(directory):
            _say(line)


def _needs(capability: str, command: str, instead: str | None = None) -> None:
    """Stop `command` before any work, in one line naming the extra, when a framework the
    capability needs is missing (converter/capabilities.py knows which)."""
    from .capabilities import BY_NAME, require

    require(BY_NAME[capability], command, instead=instead)


@cli.command("env")
@click.option("--json", "as_json", is_flag=True, help="Print the same as JSON.")
def env_cmd(as_json):
    """Show which optional frameworks this environment has, their versions, and which
    commands they make available (and the pip extra for the others)."""
    from .capabilities import environment

    found = environment()
    if as_json:
        _print_json(found)
        return
    click.echo(f"tf2pt {found['tf2pt']}, python {found['python']}")
    click.echo("optional frameworks:")
    for name, version in found["modules"].items():
        click.echo(f"  {name:<13} {version or 'not installed'}")
    click.echo("capabilities:")
    for cap in found["capabilities"]:
        mark = "yes" if cap["available"] else "no "
        click.echo(f"{mark} {cap['name']:<14} {cap['enables']}")
        if not cap["available"]:
            click.echo(f"    needs {', '.join(cap['missing'])} — {cap['install']}")
    if found["modules"]["torch"] is None:
        click.echo(f"install torch's CPU build first, then the extra: {found['torch_first']}")
    verify = next(c for c in found["capabilities"] if c["name"] == "verify")
    for runner, missing in found["verify_by_runner"].items():
        if verify["available"] and missing:
            click.echo(f"    the {runner} reference also needs {', '.join(missing)}")


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
    """The console script (argv None: this process is the command's own, so parity may run
    PyTorch in a child process) or an embedding caller such as the tests (argv given)."""
    own_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with Ticker(_echo).running() as ticker:
            cli.main(
                args=argv,
                prog_name="tf2pt",
                standalone_mode=False,
                obj={"own_process": own_process, "say": ticker},
            )
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
