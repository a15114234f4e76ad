"""Host convergence support for pyinfra: validated host data, custom facts and operations, renderers.

Only `facts.py`, `operations.py` and `tasks/` import pyinfra; `hostdata.py`, `commands.py` and `render.py`
are plain Python so they can be tested with plain values.
"""
