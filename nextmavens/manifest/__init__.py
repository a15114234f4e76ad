"""Project and organization manifests: models, loading with line numbers, validation across files."""
