"""The platform service: one authenticated HTTP API on the host for every client (CLI, MCP, dashboard).

Pure parts: authz (who may do what), tokens (format, hash, lifetime), ratelimit, catalog (the project view).
Service: app (FastAPI application, errors, limits), auth (the caller of a request), routes/. Command line: cli.
In the background: forwarder (stored WhatsApp rows to each project's app, as its owner role: forwardqueue).
"""
