"""The control database (`nextmavens`): projects, encrypted secrets, key history, audit log."""
