"""Helpers shared by the repository's test suites (template, roles): Docker, base images,
the wheelhouse and rendering the Copier template from a tagged copy of the working tree."""
