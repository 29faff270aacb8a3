from workflow.cli import cli

cli()
