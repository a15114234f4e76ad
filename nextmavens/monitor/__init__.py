"""Disk alerts with safe pruning, container and endpoint health, the daily summary and `status`."""
