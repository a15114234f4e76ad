"""NextMavens: many self-hosted Supabase projects on one host, described as code."""

__version__ = "0.1.0"
