"""What the pinned upstream programs (Kong, PostgREST, GoTrue, ...) accept, read from their sources at the pinned
tags (facts.py), and pure checks against it (checks.py). Standard library only: shipped into the stand-in image."""
