"""Every query on the control database's tables, named for what it does, one module per table group.

Nothing outside this package (and the migrations in nextmavens.control.db) names a control table in SQL;
tests/unit/control/test_control_store_owner.py checks it.
"""
