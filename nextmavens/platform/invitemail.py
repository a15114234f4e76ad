"""An invite link sent by email (`nextmavens members invite`, when the platform has email configured: the Resend key
file and an invite sender). The message is pure text built here; the sending is the email issue's Resend client,
with the invite's id as the idempotency key, so a retried send never mails a second copy."""

from __future__ import annotations

from html import escape

from nextmavens.email.resend import Outgoing, ResendClient
from nextmavens.platform.invites import Invite


def invite_email(invite: Invite, link: str, sender: str) -> Outgoing:
    """The message: the link, when it expires and what it does. Pure."""
    expires = f"{invite.expires_at:%Y-%m-%d %H:%M} UTC"
    text = (
        "You have been given access to the NextMavens dashboard.\n\n"
        f"Set your password here (single use, until {expires}):\n{link}\n\n"
        "If you already have a password, this link replaces it and signs you out everywhere.\n"
        "If you did not expect this email, ignore it.\n"
    )
    html = (
        "<p>You have been given access to the NextMavens dashboard.</p>"
        f'<p><a href="{escape(link, quote=True)}">Set your password</a> (single use, until {escape(expires)}).</p>'
        "<p>If you already have a password, this link replaces it and signs you out everywhere.</p>"
        "<p>If you did not expect this email, ignore it.</p>"
    )
    subject = "Your NextMavens dashboard invite"
    return Outgoing(sender=sender, to=(invite.member,), subject=subject, html=html, text=text)


def send_invite(client: ResendClient, invite: Invite, link: str, sender: str) -> str:
    """Resend's id of the sent invite; ResendError when it was not taken."""
    return client.send(invite_email(invite, link, sender), f"nextmavens-invite/{invite.id}")
