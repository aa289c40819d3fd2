"""The ``synthgen`` command line: one subcommand per stage, ``run`` for the whole job, ``query``."""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from synthgen.errors import DataError, SynthgenError

app = typer.Typer(
    help="Synthetic in-cabin face data: plan, generate, label, curate, publish, analyze, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()

ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="params.yaml to read (missing = defaults)")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="override a parameter, e.g. --set plan.n=50 (repeatable)"),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="also show the face models' native "
                                                                  "(MediaPipe, TFLite, absl) start-up logs")]


def _native_logs(verbose: bool) -> None:
    if not verbose:
        from synthgen.native_logs import quiet_native_logs

        quiet_native_logs()

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Print user errors as one clear message and exit 2, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SynthgenError as err:
            console.print(Text.assemble(("error: ", "bold red"), str(err)), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            full = SynthgenError(
                f"no space left on the device ({err.strerror})",
                where=err.filename or "the output folder",
                fix="free some space (or point data_dir at a larger disk) and re-run: finished files "
                    "are kept and nothing half-written is left visible",
            )
            console.print(Text.assemble(("error: ", "bold red"), str(full)), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: finished shards are kept; re-run to resume[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _params(path: Path, overrides: list[str] | None) -> Any:
    from synthgen.config import load_params
    from synthgen.logs import configure

    configure()  # stage summaries at INFO on stderr

    return load_params(path, overrides or [])


@app.command()
@friendly
def plan(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Sample scene specs from the distributions in params.yaml (deterministic from the seed)."""
    from synthgen.stages import run_plan

    p = _params(params, set_)
    path = run_plan(p)
    console.print(f"planned {p.plan.n} specs -> {path}")


@app.command()
@friendly
def generate(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, quiet: QuietOpt = False,
) -> None:
    """Render every planned spec with the configured backend (resumes: finished shards are kept)."""
    from synthgen.stages import run_generate

    r = run_generate(_params(params, set_), progress=not quiet)
    console.print(f"generated {len(r.written)} shards ({len(r.skipped)} already done) -> {r.out_dir}")


@app.command()
@friendly
def label(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, quiet: QuietOpt = False,
          verbose: VerboseOpt = False) -> None:
    """Auto-label generated images with independent face models (adds meas_* columns)."""
    from synthgen.stages import run_label

    _native_logs(verbose)
    r = run_label(_params(params, set_), progress=not quiet)
    console.print(f"labelled {len(r.written)} shards ({len(r.skipped)} already done) -> {r.out_dir}")


@app.command()
@friendly
def curate(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, quiet: QuietOpt = False) -> None:
    """Accept or reject every labelled image, always with a reason; write the controllability report.

    With curate.topup.enabled (the default), bins accepted below the plan's share are first topped
    up: extra specs are planned, rendered and labelled in bounded rounds (see docs/labelling.md)."""
    from synthgen.stages import run_curate
    from synthgen.tracking import export_metrics

    p = _params(params, set_)
    r = run_curate(p, progress=not quiet)
    export_metrics(p, "curate")
    console.print(f"curated {len(r.shards)} shards -> {r.out_dir}")


@app.command()
@friendly
def publish(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    source: Annotated[str, typer.Option("--from", help="stage folder whose shards are published: curated, "
                                                        "labelled or generated")] = "curated",
    to: Annotated[Optional[str], typer.Option(
        "--to", help="also upload the version to a dataset URL, e.g. s3://bucket/datasets/incabin-faces "
                     "(manifest last: readers skip unfinished uploads)")] = None,
) -> None:
    """Write the versioned Parquet dataset (hive folders, manifest with hashes, dataset card)."""
    from synthgen.stages import run_publish

    if source not in ("curated", "labelled", "generated"):
        raise SynthgenError(f"--from {source!r} is not a stage folder", where="synthgen publish",
                            fix="pass curated, labelled or generated")
    r = run_publish(_params(params, set_), source_stage=source)
    console.print(f"published {r.rows} rows ({r.accepted} accepted), version {r.version} -> {r.version_dir}")
    if to:
        from synthgen.storage import upload_version

        console.print(f"uploaded -> {upload_version(r.version_dir, to)}")


@app.command()
@friendly
def analyze(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, quiet: QuietOpt = False) -> None:
    """Distribution shift of the synthetic dataset against real data: metrics, HTML report, gaps."""
    from synthgen.stages import run_analyze
    from synthgen.tracking import export_metrics

    p = _params(params, set_)
    r = run_analyze(p, progress=not quiet)
    export_metrics(p, "analyze")
    console.print(f"shift report -> {r.files['report']}; gaps -> {r.files['gaps']}")


@app.command()
@friendly
def train(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, quiet: QuietOpt = False) -> None:
    """Train the multi-task model (gaze, head pose, age, expression, gender) on the published version."""
    from synthgen.stages import run_train
    from synthgen.tracking import export_metrics

    p = _params(params, set_)
    r = run_train(p, progress=not quiet)
    export_metrics(p, "train")
    console.print(r.summary())


@app.command()
@friendly
def run(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    record: Annotated[bool, typer.Option(help="record the version with DVC when done (dvc.lock, and the headline metrics in metrics/)")] = True,
    analyze: Annotated[bool, typer.Option(help="analyse the shift against real data")] = True,
    train: Annotated[bool, typer.Option(help="train the downstream model in this run (--no-train leaves "
                                           "`train` pending in `dvc status`)")] = True,
    save_params: Annotated[bool, typer.Option(
        "--save-params", help="write the params this run used (--set, -p FILE) into params.yaml so that "
                              "dvc.lock records them; without it such a run is not recorded")] = False,
    runner: Annotated[str, typer.Option(help="where shard tasks run: process (local pool), thread, or dask")] = "process",
    workers: Annotated[int, typer.Option(help="pool processes or local Dask workers; 0 = generate.workers")] = 0,
    dask_address: Annotated[Optional[str], typer.Option(
        help="a running Dask scheduler, e.g. tcp://host:8786 (implies --runner dask; env SYNTHGEN_DASK_ADDRESS)")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """The main job: the Prefect flow over every stage, on params.yaml, recorded in dvc.lock."""
    _native_logs(verbose)
    from flows.generate_dataset import generate_dataset

    summary = generate_dataset(params_path=str(params), overrides=list(set_ or []), record=record,
                               analyze=analyze, train=train, runner=runner, workers=workers,
                               dask_address=dask_address, save_params=save_params)
    _print_summary(summary)
    refused = (summary.get("recorded") or {}).get("not_recorded")
    if refused:
        console.print(f"[yellow]not recorded in dvc.lock:[/] {refused}", highlight=False, soft_wrap=True)


def _print_summary(s: dict[str, Any]) -> None:
    t = Table(title="synthgen run", show_header=False)
    for key in ("dataset", "version", "path", "rows", "accepted", "splits", "report", "train"):
        if key in s:
            t.add_row(key, str(s[key]))
    rec = s.get("recorded")
    if rec is not None:
        t.add_row("recorded", ", ".join(rec.get("dvc_committed") or []) or "not recorded")
    out.print(t)
    name = s.get("dataset", "incabin-faces")
    out.print(
        "Query it:\n"
        f"  synthgen query {name} --where \"accepted\" --group-by req_expression\n"
        f"  synthgen query {name} --reasons\n"
        f"  python -c \"import synthgen.query as q; print(q.scan('{name}').head().collect())\""
    )


@app.command()
@friendly
def query(
    dataset: Annotated[str, typer.Argument(help="dataset name (under data/datasets), folder, or s3:// URL")] = "incabin-faces",
    where: Annotated[Optional[str], typer.Option(help="SQL condition, e.g. \"accepted AND req_age > 60\"")] = None,
    select: Annotated[Optional[str], typer.Option(help="comma-separated columns")] = None,
    group_by: Annotated[Optional[str], typer.Option("--group-by", help="comma-separated columns: counts per group")] = None,
    sql: Annotated[Optional[str], typer.Option(help="a SELECT over the table `dataset` (overrides the above)")] = None,
    reasons: Annotated[bool, typer.Option("--reasons", help="rows per reject reason")] = False,
    schema: Annotated[bool, typer.Option("--schema", help="list the columns and their types")] = False,
    version: Annotated[Optional[str], typer.Option(help="read this version (default: the latest complete one)")] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions", help="mix every version (the `version` column tells them apart)")] = False,
    split: Annotated[Optional[str], typer.Option(help="one split only (train, val, test)")] = None,
    limit: Annotated[int, typer.Option(help="rows to print")] = 20,
    export: Annotated[Optional[Path], typer.Option(help="write all matching rows to .csv or .parquet (keeps the images)")] = None,
    data_dir: Annotated[Path, typer.Option(help="root of the data folder")] = Path("data"),
    clip: Annotated[Optional[str], typer.Option(help="one clip (sequence_id), its frames in order")] = None,
    mp4: Annotated[Optional[Path], typer.Option(help="with --clip: write an MP4 preview of the clip")] = None,
) -> None:
    """Filter and select over one published version with SQL (polars), print a table or export it.

    Reads the latest complete version unless --version or --all-versions says otherwise, and says
    which on stderr."""
    from synthgen import query as q

    if limit < 0:
        raise SynthgenError(f"--limit {limit} is negative", where="synthgen query", fix="pass 0 or more rows")
    from synthgen import storage

    if storage.is_url(dataset):  # an object store: versions whose upload finished (manifest last)
        lf = q.scan(dataset, version=version, split=split, all_versions=all_versions)
    else:
        sel = q.select(dataset, data_dir, version=version, split=split, all_versions=all_versions)
        console.print(sel.describe(), highlight=False)
        lf = q.scan_selection(sel)
    if clip is not None:
        from synthgen.video import clip_frames, write_mp4

        lf = clip_frames(lf, clip)
        if mp4 is not None:
            rows = q.collect(lf, "--clip").to_dicts()
            fps = 1000.0 / float(rows[1]["t_ms"] - rows[0]["t_ms"]) if len(rows) > 1 else 10.0
            write_mp4(rows, mp4, fps)
            console.print(f"wrote {len(rows)} frames -> {mp4}")
    elif mp4 is not None:
        raise DataError("--mp4 needs --clip", where="synthgen query", fix="pass --clip <sequence_id>")
    if schema:
        t = Table("column", "type")
        for name, dtype in lf.collect_schema().items():
            t.add_row(name, str(dtype))
        out.print(t)
        return
    if reasons:
        df = q.reject_summary(lf)
    elif sql:
        df = q.collect(q.sql(lf, sql), sql)
    else:
        cols = [c.strip() for c in select.split(",")] if select else None
        keys = [c.strip() for c in group_by.split(",")] if group_by else None
        if cols is None and keys is None and export is None:
            cols = [c for c in lf.collect_schema().names() if c not in q.IMAGE_COLUMNS]
        df = q.collect(q.select_where(lf, where, cols, keys), "--where/--select/--group-by")
    if export:
        q.export(df, export)
        console.print(f"wrote {q.summary(df)} -> {export}", highlight=False)
        return
    shown = q.displayable(df.head(limit))
    t = Table(*shown.columns, caption=f"{min(limit, df.height)} of {df.height} rows")
    for row in shown.iter_rows():
        t.add_row(*["" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))[:60] for v in row])
    out.print(t)


@app.command()
@friendly
def verify(
    dataset: Annotated[str, typer.Argument(help="dataset name (under data/datasets) or its folder")] = "incabin-faces",
    version: Annotated[Optional[str], typer.Option(help="one version only (default: every complete version)")] = None,
    data_dir: Annotated[Path, typer.Option(help="root of the data folder")] = Path("data"),
) -> None:
    """Check published files against the manifest (SHA-256 and row counts); exit 2 on any difference."""
    from synthgen.stages import verify_dataset

    folder = Path(dataset) if Path(dataset).is_dir() else data_dir / "datasets" / dataset
    versions, problems = verify_dataset(folder, version)
    for line in problems:
        console.print(Text.assemble(("bad: ", "bold red"), line), highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)
    console.print(f"ok: {len(versions)} version(s) match their manifests ({', '.join(v.name for v in versions)})")


@app.command()
@friendly
def serve(
    params: ParamsOpt = Path("params.yaml"),
    cron: Annotated[str, typer.Option(help="cron schedule of the generate flow")] = "0 3 * * *",
    with_training: Annotated[bool, typer.Option(help="also serve the training deployment")] = True,
) -> None:
    """Serve the Prefect deployments (scheduled generation; training triggered by each publish).

    Needs a running Prefect server: schedules and event triggers live there, so a temporary one
    would forget them when this process ends."""
    from flows.runtime import require_api

    require_api()
    from flows.deploy import serve_all

    serve_all(params_path=str(params.resolve()), cron=cron, with_training=with_training)


def _mount_optional() -> None:
    try:
        from synthgen.cli_real import app as real_app
    except ImportError:
        return
    app.add_typer(real_app, name="real", help="Import real face data into the row contract.")


_mount_optional()


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
