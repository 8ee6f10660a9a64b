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
@click.option("--force", is_flag=True, help="Replace OUT if it holds an earlier bundle.")
def bundle(out: str, zip_path: str | None, no_exe: bool, force: bool) -> None:
    """Write a self-contained adapter directory to OUT.

    \b
    OUT works as CUMULUS_MESSAGE_ADAPTER_DIR and as a Lambda layer's content:
      python OUT stream              # any Python of the version it was built with
      sys.path.insert(0, OUT)        # in-process: from message_adapter.message_adapter ...
      OUT/cma_bin/cma stream         # no Python needed (Node runtimes)
    Sizes are reported against Lambda's limits (50 MB zipped, 250 MB unzipped); a bundle
    over either limit is an error.
    """
    from message_adapter.bundle import BundleError, BundleTooLarge, build_bundle

    def log(text: str) -> None:
        click.echo(text, err=True)

    try:
        report = build_bundle(out, zip_path, executable=not no_exe, force=force, log=log)
    except BundleTooLarge as error:
        for line in error.report.lines() if error.report else []:
            click.echo(line, err=True)
        raise click.ClickException(f"the bundle is too large for Lambda: {error}") from None
    except BundleError as error:
        raise click.ClickException(str(error)) from None
    for line in report.lines():
        click.echo(line)
