"""The dashboard: server-rendered pages of the platform service for members, signed in with a password (and
TOTP). Its pages call the same functions as the /v1 routes (projectaccess, projectwrite, tokenops, whatsappops,
projectlogs), so authorization (authz.decide), the audit log and the write path are one."""
