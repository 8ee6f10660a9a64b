"""``cumulus-message-adapter bundle OUT [--zip FILE]``: build the layer directory."""

import click


@click.command()
@click.argument("out", type=click.Path(file_okay=False, writable=True))
@click.option(
    "--zip",
    "zip_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the bundle as a Lambda layer zip to FILE.",
)
@click.option(
    "--no-exe",
    is_flag=True,
    help="Skip the PyInstaller executable cma_bin/cma (only Python clients can "
    "use the bundle then).",
)
@click.option(
    "--portable",
    is_flag=True,
    help="Build cma_bin/cma with a CPython compiled on an old glibc, so it starts on every "
    "Lambda runtime (glibc >= 2.26). Needs root and x86_64; the first build takes a few "
    "minutes, later ones seconds (cached under ~/.cache/cumulus-message-adapter, or "
    "$CMA_CACHE). What scripts/release builds.",
)
@click.option("--force", is_flag=True, help="Replace OUT if it holds an earlier bundle.")
def bundle(out: str, zip_path: str | None, no_exe: bool, portable: bool, force: bool) -> None:
    """Write a self-contained adapter directory to OUT.

    \b
    OUT works as CUMULUS_MESSAGE_ADAPTER_DIR and as a Lambda layer's content:
      python OUT stream              # any Python of the version it was built with
      sys.path.insert(0, OUT)        # in-process: from message_adapter.message_adapter ...
      OUT/cma_bin/cma stream         # no Python needed (Node runtimes)
    Sizes are reported against Lambda's limits (50 MB zipped, 250 MB unzipped); a bundle
    over either limit is an error. Without --portable, cma_bin/cma needs this machine's
    glibc (fine for local work); with it, the layer starts on Lambda:
      sudo cumulus-message-adapter bundle build/cma --portable --zip build/layer.zip
    """
    from message_adapter.bundle import BundleError, BundleTooLarge, build_bundle

    def log(text: str) -> None:
        click.echo(text, err=True)

    if portable and no_exe:
        raise click.UsageError("--portable builds the executable; it cannot go with --no-exe")
    try:
        if portable:
            from message_adapter.portable import build_portable_bundle

            report = build_portable_bundle(out, zip_path, force=force, log=log)
        else:
            report = build_bundle(out, zip_path, executable=not no_exe, force=force, log=log)
    except BundleTooLarge as error:
        for line in error.report.lines() if error.report else []:
            click.echo(line, err=True)
        raise click.ClickException(f"the bundle is too large for Lambda: {error}") from None
    except BundleError as error:
        raise click.ClickException(str(error)) from None
    for line in report.lines():
        click.echo(line)
