"""Encrypted, chunked, restorable backups of every project database and the control database to Telegram."""
