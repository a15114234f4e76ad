"""Metrics with history, uptime, error tracking and custom-domain onboarding (issue 18)."""
