"""The production VPS. Values that are not secret but differ per operator come from the environment
(or replace the os.environ lookups with literals in your fork); a missing one stops the run by name.
"""

import os
import re

# Deploys connect as the admin user and use sudo; the first run on a fresh VPS connects as root
# (NEXTMAVENS_PROD_USER=root), which needs no sudo (minimal images may not have it yet).
_sudo = os.environ.get("NEXTMAVENS_PROD_USER", "nextmavens") != "root"

# NEXTMAVENS_DOMAIN: the operator's main domain; the API, Studio and platform service names default to api.,
# studio. and platform. below it.
api_domain = os.environ.get("NEXTMAVENS_API_DOMAIN") or (
    f"api.{os.environ['NEXTMAVENS_DOMAIN']}" if os.environ.get("NEXTMAVENS_DOMAIN") else None
)
studio_domain = os.environ.get("NEXTMAVENS_STUDIO_DOMAIN") or (
    f"studio.{os.environ['NEXTMAVENS_DOMAIN']}" if os.environ.get("NEXTMAVENS_DOMAIN") else None
)
# Studio for a project replaces the operator's basic-auth Studio on the Studio name (group_data/all.py says how).
project_studio_domain = studio_domain
platform_service_domain = os.environ.get("NEXTMAVENS_PLATFORM_DOMAIN") or (
    f"platform.{os.environ['NEXTMAVENS_DOMAIN']}" if os.environ.get("NEXTMAVENS_DOMAIN") else None
)
admin_email = os.environ.get("NEXTMAVENS_ADMIN_EMAIL")
# One public key per line in the file NEXTMAVENS_ADMIN_PUBKEYS points at (e.g. ~/.ssh/id_ed25519.pub).
admin_ssh_public_keys = (
    [
        line.strip()
        for line in open(os.path.expanduser(os.environ["NEXTMAVENS_ADMIN_PUBKEYS"]), encoding="utf-8")
        if line.strip() and not line.startswith("#")
    ]
    if os.environ.get("NEXTMAVENS_ADMIN_PUBKEYS")
    else None
)
evolution_server_url = (
    f"https://evolution.{os.environ['NEXTMAVENS_DOMAIN']}"
    if os.environ.get("NEXTMAVENS_DOMAIN")
    else "http://127.0.0.1:8080"
)

# The DNS check before each certificate compares against this address: NEXTMAVENS_PROD_HOST when it is an IPv4
# literal; with a host name there, set NEXTMAVENS_PUBLIC_IPV4 (without either, no certificate is requested).
edge_host_ipv4 = os.environ.get("NEXTMAVENS_PUBLIC_IPV4") or next(
    (h for h in [os.environ.get("NEXTMAVENS_PROD_HOST", "")] if re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", h)), ""
)

# Cloudinary's cloud name (not a secret; its api_key:api_secret is the host secrets file's CLOUDINARY_KEY).
cloudinary_cloud = os.environ.get("NEXTMAVENS_CLOUDINARY_CLOUD") or None
