"""MCP servers for AI tools (Claude Desktop, Claude Code, editors), speaking MCP over stdio with the official SDK.

They act only through the platform service's API, with the caller's token (NEXTMAVENS_URL and NEXTMAVENS_TOKEN,
else the stored login), on the one project they were started for; every guard that matters (one SQL statement,
the read-only role, timeouts, row caps, who may write) is the service's, so these are thin clients:

- common: the start (login, the project, what the token may do), tool errors a model can act on, the untrusted-data
  envelope, the per-minute limit;
- supabase: list_tables, list_extensions, list_migrations, apply_migration, execute_sql, get_logs,
  get_project_url, get_anon_key, generate_typescript_types;
- whatsapp: list_instances, get_status, get_qr, send_message;
- cli: `nextmavens mcp supabase|whatsapp --project ORG/REF [--read-only]` and `nextmavens mcp config ORG/REF`.

The SDK is imported only by the servers themselves (not at the command line's start).
"""
