"""Clients of the shared services' admin APIs: read, compare, write only differences."""
