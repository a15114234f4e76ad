"""The database engine: desired state from manifests, observed state from the catalog, a typed plan, apply."""
