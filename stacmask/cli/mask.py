"""`stacmask mask` and `stacmask evaluate`: one scene from local files, and its score."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import typer

from stacmask.cli.app import app, fail
from stacmask.errors import StacmaskError, StacmaskWarning
from stacmask.methods.registry import DEFAULT_METHOD, METHODS


class PassProgress:
    """The rows of each pass over the scene on one bar: "hybrid mask, reading bands" while the
    bands are decoded into scratch, then "hybrid mask, pass 2:  45%" for each pass the method
    makes (one to three), not one count of rows that runs past the scene's height."""

    def __init__(self, bar: Any, label: str) -> None:
        self.bar, self.label, self.passes = bar, label, 1
        bar.bar_format = "{desc}{n_fmt} rows [{elapsed}, {rate_fmt}]"  # no total yet
        bar.set_description(f"{label}, reading bands")

    def start(self, height: int) -> None:
        """The scene's rows are the bar's total; pass 1 begins."""
        self.bar.bar_format = None
        self.bar.reset(total=height)
        self.bar.set_description(f"{self.label}, pass 1")

    def __call__(self, rows: int) -> None:
        total = self.bar.total
        if total and self.bar.n + rows > total:  # the rows of a new pass
            self.passes += 1
            self.bar.reset(total=total)
            self.bar.set_description(f"{self.label}, pass {self.passes}")
        self.bar.update(rows)


def check_band_method(value: str) -> str:
    """A mask method of four blue, green, red and NIR bands (the `mask` command)."""
    if value not in METHODS:
        raise typer.BadParameter(f"{value!r}: known methods are {', '.join(sorted(METHODS))}")
    return value


@app.command()
def mask(
    output: Path = typer.Argument(..., help="Mask COG to write."),
    bands: tuple[Path, Path, Path, Path] | None = typer.Option(
        None, "--bands", help="BLUE GREEN RED NIR band files (DN GeoTIFFs)."
    ),
    metadata: Path | None = typer.Option(
        None, "--metadata", help="INPE XML of the scene (gains, sun angles), with --bands."
    ),
    reflectance: Path | None = typer.Option(
        None,
        "--reflectance",
        help="A 4-band TOA reflectance GeoTIFF (blue, green, red, nir), instead of --bands.",
    ),
    scale: float = typer.Option(
        1.0, "--scale", help="With --reflectance: reflectance = stored value x SCALE."
    ),
    sun_elevation: float | None = typer.Option(
        None, "--sun-elevation", min=-90, max=90, help="Sun elevation, degrees."
    ),
    sun_azimuth: float | None = typer.Option(
        None, "--sun-azimuth", min=0, max=360, help="Sun azimuth, degrees clockwise from north."
    ),
    method: str = typer.Option(
        DEFAULT_METHOD, "--method", callback=check_band_method, help="Mask method."
    ),
    preview: Path | None = typer.Option(None, "--preview", help="Also write a preview PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print covers and inputs as JSON."),
) -> None:
    """Mask one scene from local files (the same engine as `build`)."""
    from stacmask.constants import DEFAULT_GAINS
    from stacmask.methods.registry import get_method
    from stacmask.pipeline.masking import mask_scene
    from stacmask.reading.rasters import RasterBandSource
    from stacmask.sensors.local import band_files_inputs, reflectance_stack_inputs

    if (bands is None) == (reflectance is None):
        raise fail("give either --bands BLUE GREEN RED NIR or --reflectance STACK.tif")
    mask_method = get_method(method)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StacmaskWarning)
            if reflectance is not None:
                inputs = reflectance_stack_inputs(
                    reflectance, scale, sun_elevation=sun_elevation, sun_azimuth=sun_azimuth
                )
            else:
                assert bands is not None
                inputs = band_files_inputs(
                    bands, metadata, sun_elevation=sun_elevation, sun_azimuth=sun_azimuth
                )
        from tqdm import tqdm

        with (
            tqdm(
                desc=f"{method} mask", unit=" rows", unit_scale=True, leave=False, disable=as_json
            ) as bar,
            RasterBandSource(
                inputs,
                progress=(passes := PassProgress(bar, f"{method} mask")),
                cache_bands=not mask_method.reads_bands_once,
            ) as source,
        ):
            passes.start(source.info.height)
            result = mask_scene(source, mask_method, output, preview)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        report = result.to_dict()
        report.update(
            output=str(output),
            bands=[band.href for band in source.main],
            metadata=str(metadata) if metadata else None,
            gains=None if reflectance is not None else list(inputs.gains),
            default_gains_used=inputs.gains == DEFAULT_GAINS,
            warnings=[str(w.message) for w in caught],
        )
        typer.echo(json.dumps(report, indent=2))
    else:
        for w in caught:
            typer.secho(f"warning: {w.message}", err=True, fg=typer.colors.YELLOW)
        typer.echo(
            f"{output}: cloud {result.cloud_cover:.2f}%, shadow {result.shadow_cover:.2f}%, "
            f"water {result.water_cover:.2f}% of {result.valid_pixels} valid pixels "
            f"({result.method} method, {result.calibration} calibration)"
        )


@app.command()
def evaluate(
    predicted: Path = typer.Argument(..., help="Predicted mask (class codes)."),
    truth: Path = typer.Argument(..., help="Labelled truth (class codes, 255 unlabelled)."),
    labels: str = typer.Option(
        "full",
        "--labels",
        help="What the truth labels: full (every class), cloud (cloud only: 4 cloud, other "
        "codes not cloud) or shadow (shadow only: 2 shadow). One-class truth scores that "
        "class's precision, recall, F1 and cover error only.",
    ),
    complete: bool = typer.Option(
        False,
        "--complete",
        help="With --labels cloud/shadow: unlabelled truth (255) is not the class wherever the "
        "prediction has data (a painting taken as complete, e.g. Layton's shadow).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
) -> None:
    """Score a mask against a labelled truth: confusion, accuracy, kappa, F1, cover errors."""
    from stacmask.evaluate import LABELS, SCORED, evaluate_class_files, evaluate_files

    if labels not in LABELS:
        raise fail(f"--labels must be one of {', '.join(LABELS)}, not {labels!r}")
    try:
        if labels != "full":
            one = evaluate_class_files(
                predicted,
                truth,
                "cloud" if labels == "cloud" else "shadow",
                complete=complete,
            )
            if as_json:
                typer.echo(json.dumps(one.to_dict(), indent=2))
                return
            typer.echo(
                f"{one.pixels} {labels}-labelled pixels; {labels} precision {one.precision:.4f}"
                f"  recall {one.recall:.4f}  F1 {one.f1:.4f}\n"
                f"{labels} cover {one.cover_predicted:.2f}% (true {one.cover_true:.2f}%, "
                f"error {one.cover_error:+.2f})"
            )
            return
        scores = evaluate_files(predicted, truth)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(scores.to_dict(), indent=2))
        return
    typer.echo(f"{scores.pixels} labelled pixels; rows truth, columns predicted")
    typer.echo(f"{'':>8}" + "".join(f"{name:>12}" for name in SCORED))
    for name, row in zip(SCORED, scores.confusion, strict=True):
        typer.echo(f"{name:>8}" + "".join(f"{v:>12}" for v in row))
    typer.echo(
        f"overall accuracy {scores.overall_accuracy:.4f}  kappa {scores.kappa:.4f}\n"
        f"cloud  F1 {scores.cloud_f1:.4f}  cover {scores.cloud_cover_predicted:.2f}% "
        f"(true {scores.cloud_cover_true:.2f}%, error {scores.cloud_cover_error:+.2f})\n"
        f"shadow F1 {scores.shadow_f1:.4f}  cover {scores.shadow_cover_predicted:.2f}% "
        f"(true {scores.shadow_cover_true:.2f}%, error {scores.shadow_cover_error:+.2f})"
    )
