"""The repository's own tooling: ``new-project`` adds a project or service."""
