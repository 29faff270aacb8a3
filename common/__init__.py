"""What every package here shares: settings from template.yaml, artefact files, errors, the CLI runner."""
