"""``synthgen real ...``: import real face data into the row contract, or build the demo reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.text import Text

from synthgen.errors import DataError, SynthgenError

app = typer.Typer(
    help="Import real face data (image folders, UTKFace, FairFace, RAF-DB, gaze tables) into the row "
    "contract as Parquet, labelled where labels are missing; or build the offline demo reference.",
    no_args_is_help=True,
)
console = Console(stderr=True)

OUT = typer.Option(..., "--out", "-o", help="Parquet file to write (atomically)")
PARAMS = typer.Option(Path("params.yaml"), "--params", help="params.yaml whose label: section configures the labellers")
NO_LABEL = typer.Option(False, "--no-label", help="skip the labellers (only the labels the data set ships)")
QUIET = typer.Option(False, "--quiet", "-q", help="no progress bars")


def _label_params(params_path: Path, no_label: bool) -> Any | None:
    if no_label:
        return None
    from synthgen.config import load_params

    return load_params(params_path).label


def _check_out(out: Path) -> None:
    """Refuse an output path that cannot be written before any image is read or labelled."""
    if out.is_dir():
        raise DataError("is a directory", where=str(out), fix="pass a file path, e.g. -o real.parquet")
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise DataError("the output is Parquet", where=str(out), fix="end the path with .parquet")


def _report(result: Any) -> None:
    console.print(f"[green]wrote[/] {result.rows} rows to [bold]{result.path}[/]"
                  + ("" if result.labelled else " [yellow](not labelled)[/]"))
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)
    if result.bad:
        console.print(f"[yellow]{len(result.bad)} bad rows skipped:[/]")
        for b in result.bad[:50]:
            console.print(f"  {b}", highlight=False, soft_wrap=True, markup=False)
        if len(result.bad) > 50:
            console.print(f"  ... and {len(result.bad) - 50} more")


def _run(fn: Any, out: Path, params: Path, no_label: bool, *args: Any, **kwargs: Any) -> None:
    """Check the output and params first (one error line, exit 2, nothing written), then import."""
    try:
        _check_out(out)
        label = _label_params(params, no_label)
        _report(fn(*args, out=out, label_params=label, **kwargs))
    except SynthgenError as err:
        console.print(Text.assemble(("error: ", "bold red"), str(err)), soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


@app.command("import-folder")
def import_folder_cmd(
    folder: Path = typer.Argument(..., help="folder of images (searched recursively)"),
    out: Path = OUT,
    labels: Optional[Path] = typer.Option(None, "--labels", help="CSV/Parquet: a file column plus any of age, "
                                          "age_group, gender, expression, gaze_yaw, gaze_pitch, gaze_zone, head_*, split"),
    dataset: str = typer.Option("folder", help="data set name stored in every row"),
    params: Path = PARAMS, no_label: bool = NO_LABEL, quiet: bool = QUIET,
) -> None:
    """Import an image folder, with an optional label table."""
    from synthgen.real.importers import import_folder

    _run(import_folder, out, params, no_label, folder, labels=labels, dataset=dataset, progress=not quiet)


@app.command("import-utkface")
def import_utkface_cmd(
    folder: Path = typer.Argument(..., help="UTKFace folder (age_gender_race_date.jpg names)"),
    out: Path = OUT, params: Path = PARAMS, no_label: bool = NO_LABEL, quiet: bool = QUIET,
) -> None:
    """Import UTKFace: age and gender from the file names."""
    from synthgen.real.importers import import_utkface

    _run(import_utkface, out, params, no_label, folder, progress=not quiet)


@app.command("import-fairface")
def import_fairface_cmd(
    labels_csv: Path = typer.Argument(..., help="fairface_label_train.csv / _val.csv (file,age,gender,race)"),
    out: Path = OUT,
    image_root: Optional[Path] = typer.Option(None, help="folder the 'file' paths are relative to (default: the CSV's)"),
    params: Path = PARAMS, no_label: bool = NO_LABEL, quiet: bool = QUIET,
) -> None:
    """Import FairFace: age group and gender from its CSV."""
    from synthgen.real.importers import import_fairface

    _run(import_fairface, out, params, no_label, labels_csv, image_root=image_root, progress=not quiet)


@app.command("import-rafdb")
def import_rafdb_cmd(
    list_file: Path = typer.Argument(..., help="list_patition_label.txt ('train_00001.jpg 5' per line)"),
    image_dir: Path = typer.Argument(..., help="folder of the (aligned) images"),
    out: Path = OUT, params: Path = PARAMS, no_label: bool = NO_LABEL, quiet: bool = QUIET,
) -> None:
    """Import RAF-DB basic emotions (1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral)."""
    from synthgen.real.importers import import_rafdb

    _run(import_rafdb, out, params, no_label, list_file, image_dir, progress=not quiet)


@app.command("import-gaze")
def import_gaze_cmd(
    table: Path = typer.Argument(..., help="CSV/Parquet with an image file column and yaw/pitch columns"),
    out: Path = OUT,
    image_root: Optional[Path] = typer.Option(None, help="folder the file paths are relative to (default: the table's)"),
    yaw_column: str = typer.Option("yaw", help="gaze yaw column (camera frame, positive = subject's right)"),
    pitch_column: str = typer.Option("pitch", help="gaze pitch column (positive = up)"),
    file_column: Optional[str] = typer.Option(None, help="image file column (default: file/path/image/filename/name)"),
    radians: bool = typer.Option(False, help="the angles are in radians"),
    params: Path = PARAMS, no_label: bool = NO_LABEL, quiet: bool = QUIET,
) -> None:
    """Import a gaze table (yaw/pitch per image, degrees unless --radians)."""
    from synthgen.real.importers import import_gaze

    _run(import_gaze, out, params, no_label, table, image_root=image_root, yaw_column=yaw_column,
         pitch_column=pitch_column, file_column=file_column, radians=radians, progress=not quiet)


@app.command("demo")
def demo_cmd(
    out_dir: Optional[Path] = typer.Option(None, help="cache folder (default: <data_dir>/real/demo)"),
    params: Path = PARAMS, no_label: bool = NO_LABEL, quiet: bool = QUIET,
) -> None:
    """Build the small offline DEMO reference from face photos shipped in installed packages."""
    from synthgen.config import load_params
    from synthgen.real.demo import build_demo_reference

    try:
        p = build_demo_reference(load_params(params), out_dir, progress=not quiet, label=not no_label)
    except SynthgenError as err:
        console.print(Text.assemble(("error: ", "bold red"), str(err)), soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    console.print(f"[green]demo reference[/] (a DEMO, not a real evaluation set): [bold]{p}[/]")
