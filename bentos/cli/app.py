"""`modelguard`: bring your own XGBoost model -- infer its schema, package it, validate it.

The model side's command line: it writes the BentoML model store, and talks to the monitor
only over HTTP, against its URL (`candidate`, `status`, `chunks`, `decisions`, `audit`,
`report`, `known-good set`, `clear-rejection`: bentos/cli/monitor_commands.py). Bad input
exits with code 2 and a message naming the file, column or field; a monitor that cannot be
reached, with 1. Walkthrough: docs/your-model.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bentos.cli import monitor_commands
from bentos.cli.candidate import candidate_app
from bentos.cli.errors import EXIT_BAD_INPUT, BadInputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
schema_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Feature schemas.")
app.add_typer(schema_app, name="schema")
app.add_typer(candidate_app, name="candidate")
monitor_commands.add_to(app)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
T = TypeVar("T")


@contextmanager
def refusals() -> Iterator[None]:
    """BadInputError -> its message on stderr and exit code 2."""
    try:
        yield
    except BadInputError as exc:
        err.print(Text(f"error: {exc}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc


def step(message: str, work: Callable[[], T]) -> T:
    """Run `work` behind a spinner: reading and scoring a big file takes a while."""
    with err.status(message):
        return work()


@schema_app.command("infer")
def schema_infer(
    data: Path = typer.Argument(..., help="CSV or Parquet file of labelled rows"),
    label: str = typer.Option(..., "--label", help="The 0/1 label column"),
    time: str = typer.Option(..., "--time", help="The time column (ISO-8601 text)"),
    segment: str | None = typer.Option(
        None, "--segment", help="A text column whose values the monitor analyses as slices"
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="A column that is not a feature (repeatable)"
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the YAML here (default: print it)"
    ),
) -> None:
    """Infer a feature schema from data and write it as commented, editable YAML."""
    from bentos.cli import schema_file
    from bentos.cli.tables import read_table

    with refusals():
        frame = step(f"reading {data}", lambda: read_table(data))
        inferred = schema_file.infer(
            frame, label=label, time=time, segment=segment, exclude=exclude, source=str(data)
        )
        text = schema_file.render(inferred, data.name)
    if output is None:
        out.print(text, markup=False, soft_wrap=True, end="")
        return
    output.write_text(text)
    s = inferred.file.schema
    kinds = ", ".join(f"{f.name} ({f.dtype})" for f in s.features)
    out.print(
        Text(f"{len(s.features)} features: {kinds}; label {s.label.name}; wrote {output}"),
        soft_wrap=True,
    )


@app.command()
def package(
    model: Path = typer.Argument(..., help="XGBoost booster file, .json or .ubj"),
    schema: Path = typer.Option(..., "--schema", help="Schema YAML (modelguard schema infer)"),
    reference: Path = typer.Option(
        ..., "--reference", help="Labelled hold-out (CSV/Parquet) the model never trained on"
    ),
    name: str = typer.Option(..., "--name", help="Model name in the store, e.g. flight_delay"),
    threshold: str = typer.Option(
        "auto", "--threshold", help="Decision threshold in (0, 1), or auto: best F1 on the hold-out"
    ),
    release: str = typer.Option(
        "", "--release", help="Release name; the version is <release>-<booster hash>"
    ),
    description: str = typer.Option("", "--description", help="Stored with the model"),
    min_auc: float = typer.Option(
        0.55, "--min-auc", help="Refuse a reference ROC AUC below this (chance is 0.5)"
    ),
) -> None:
    """Check MODEL against the schema, score the hold-out, save it to the BentoML store.

    The last line printed is the tag NAME:VERSION.
    """
    from bentos.cli import package as pkg
    from bentos.cli import schema_file
    from bentos.cli.tables import read_table

    with refusals():
        cut = _threshold(threshold)
        file = schema_file.load(schema)
        booster = pkg.load_booster(model)
        frame = step(f"reading {reference}", lambda: read_table(reference))
        assessed = step(
            "scoring the reference",
            lambda: pkg.assess(
                booster,
                file.schema,
                frame,
                threshold=cut,
                time_column=file.time_column if file.time_column in frame.columns else None,
                source=str(reference),
                min_auc=min_auc,
            ),
        )
        tag = step(
            "saving to the BentoML store",
            lambda: pkg.save(
                name,
                booster,
                assessed,
                release=release,
                description=description,
                provenance={"model_file": model.name, "reference_source": reference.name},
            ),
        )
    m = assessed.metrics["reference"]
    table = Table(title=f"{tag}: hold-out metrics ({reference.name})")
    for col in ("rows", "positive rate", "ROC AUC", "PR AUC", "F1", "threshold", "Brier"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{m['rows']:.0f}",
        f"{m['positive_rate']:.3f}",
        f"{m['roc_auc']:.3f}",
        f"{m['pr_auc']:.3f}",
        f"{m['f1']:.3f}",
        f"{assessed.schema.threshold:.2f}",
        f"{m['brier']:.4f}",
    )
    out.print(table)
    top = sorted(assessed.importance.items(), key=lambda kv: -kv[1])[:5]
    out.print(Text("top features (gain share): " + ", ".join(f"{k} {v:.2f}" for k, v in top)))
    out.print(Text(f"threshold: {assessed.threshold_rule}"), soft_wrap=True)
    print(tag)  # the last line: what PREDICTOR_MODEL_TAG takes


def _threshold(value: str) -> float | None:
    if value == "auto":
        return None
    try:
        cut = float(value)
    except ValueError:
        cut = -1.0
    if not 0 < cut < 1:
        raise BadInputError(f"--threshold {value!r}: a number in (0, 1) or auto")
    return cut


@app.command()
def validate(
    tag: str = typer.Argument(..., help="NAME or NAME:VERSION in the BentoML store"),
) -> None:
    """Check a store model against the contract the predictor and the monitor rely on."""
    from bentos.cli.validate import validate as check

    with refusals():
        full, problems = step(f"checking {tag}", lambda: check(tag))
        if problems:
            raise BadInputError(f"{full} does not meet the contract:\n- " + "\n- ".join(problems))
    out.print(Text(f"{full} meets the contract"))


@app.command()
def credentials(
    model: str = typer.Argument(..., help="The model's name, as its records name it"),
    tokens_file: Path = typer.Option(
        ...,
        "--tokens-file",
        help="Local copy of the monitor's MONITOR_MODEL_TOKENS_FILE (created if absent)",
    ),
    namespace: str = typer.Option("default", "--namespace", "-n", help="The Secrets' namespace"),
    replace: bool = typer.Option(False, "--replace", help="New tokens for a listed model"),
    global_tokens_too: bool = typer.Option(
        False, "--global-tokens-too", help="Keep the global tokens working for it (migration)"
    ),
) -> None:
    """Make a model's own predictor and labels tokens: their digests go into --tokens-file,
    the model's two Secrets are printed as YAML for `kubectl apply -f -`
    (docs/monitor.md#per-model-credentials)."""
    from bentos.cli.credentials import make

    with refusals():
        manifests = make(
            model,
            tokens_file,
            namespace=namespace,
            replace=replace,
            global_tokens_too=global_tokens_too,
        )
    print(manifests, end="")
    err.print(
        Text(
            f"{tokens_file}: {model} added. Update the monitor's Secret with it, e.g. kubectl"
            f" -n {namespace} create secret generic modelguard-model-tokens"
            f" --from-file=model-tokens.json={tokens_file} --dry-run=client -o yaml"
            " | kubectl apply -f -"
        ),
        soft_wrap=True,
    )
