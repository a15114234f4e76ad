"""Svix signature checks (nextmavens/email/svix.py) against webhooks signed by the Resend stand-in's signer, which
shares no code with the checker; and the inbound worker's HMAC."""

from __future__ import annotations

import pytest

from devkit.standins.resend import new_signing_secret, svix_headers
from nextmavens.email import inboundauth, svix

BODY = b'{"type":"email.delivered","data":{"email_id":"e1"}}'
NOW = 1_800_000_000.0


def test_a_signed_webhook_passes() -> None:
    secret = new_signing_secret()
    headers = svix_headers(secret, "msg_1", BODY, NOW)
    assert svix.signature_problem(headers, BODY, svix.signing_key(secret), NOW) is None


def test_one_matching_signature_among_several_passes() -> None:
    old, new = new_signing_secret(), new_signing_secret()
    headers = svix_headers(old, "msg_1", BODY, NOW)
    headers["svix-signature"] = "v1,AAAA " + svix_headers(new, "msg_1", BODY, NOW)["svix-signature"] + " v2,zzz"
    assert svix.signature_problem(headers, BODY, svix.signing_key(new), NOW) is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda h, b: (h, b + b" "), "no v1 signature"),
        (lambda h, b: ({**h, "svix-id": "msg_2"}, b), "no v1 signature"),
        (lambda h, b: ({**h, "svix-timestamp": str(int(NOW) + 1)}, b), "no v1 signature"),
        (lambda h, b: ({**h, "svix-signature": h["svix-signature"].replace("v1,", "v2,")}, b), "no v1 signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "svix-signature"}, b), "missing"),
        (lambda h, b: ({**h, "svix-timestamp": "12ab"}, b), "malformed timestamp"),
    ],
)
def test_forged_or_altered_webhooks_are_refused(change: object, words: str) -> None:
    secret = new_signing_secret()
    headers, body = change(svix_headers(secret, "msg_1", BODY, NOW), BODY)  # type: ignore[operator]
    problem = svix.signature_problem(headers, body, svix.signing_key(secret), NOW)
    assert problem is not None and words in problem


def test_another_secret_is_refused() -> None:
    headers = svix_headers(new_signing_secret(), "msg_1", BODY, NOW)
    other = svix.signing_key(new_signing_secret())
    assert svix.signature_problem(headers, BODY, other, NOW) == "no v1 signature matches"


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_stale_and_future_timestamps_are_refused_even_when_signed(age: int) -> None:
    secret = new_signing_secret()
    headers = svix_headers(secret, "msg_1", BODY, NOW - age)
    assert "tolerance" in str(svix.signature_problem(headers, BODY, svix.signing_key(secret), NOW))
    assert svix.signature_problem(headers, BODY, svix.signing_key(secret), NOW - age + 1) is None


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_!!!", "whsec_c2hvcnQ="])
def test_unusable_secrets_are_named(secret: str) -> None:
    with pytest.raises(svix.SecretError):
        svix.signing_key(secret)


def test_the_inbound_signature() -> None:
    header = inboundauth.sign("s3cret", int(NOW), BODY)
    assert inboundauth.signature_problem(header, BODY, "s3cret", NOW) is None
    assert inboundauth.signature_problem(header, BODY + b"x", "s3cret", NOW) == "signature does not match"
    assert inboundauth.signature_problem(header, BODY, "other", NOW) == "signature does not match"
    assert "tolerance" in str(inboundauth.signature_problem(header, BODY, "s3cret", NOW + 301))
    assert inboundauth.signature_problem(None, BODY, "s3cret", NOW) == "no signature"
    assert inboundauth.signature_problem("t=1,v1=", BODY, "s3cret", NOW) == "malformed signature"
