-- A TOTP code is good for one use (issue 14): the time step of the member's last accepted code. A code of that step
-- or an earlier one is refused, so a code seen over a shoulder or in a proxy's log cannot be used again within its
-- window. NULL: none accepted yet (or the second factor was set again).
ALTER TABLE member_credentials ADD COLUMN totp_last_step bigint;
GRANT UPDATE (totp_last_step) ON member_credentials TO nextmavens_platform;
