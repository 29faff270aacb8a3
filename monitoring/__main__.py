from monitoring.cli import cli

cli()
