"""Local sandbox host: a booted Debian 13 (trixie) guest under systemd-nspawn.

The guest lives in a network namespace of its own, joined to this machine only by a veth pair with private
/30 addresses. It has no default route and an empty resolv.conf; apt reaches Debian's mirror through a
tinyproxy on the host end of the veth that allows nothing else. See DESIGN.md section 9.

Layout: :mod:`.config` (names, addresses, paths), :mod:`.commands` (pure argv and file builders),
:mod:`.rootfs` (debootstrap cache and the working root), :mod:`.network` (netns, veth, proxy),
:mod:`.machine` (boot, stop, ssh), :mod:`.imagebuild` (local images inside the guest, built from the contexts
under ``images/``), :mod:`.npm` (postgres-meta's npm tree, installed on the host), :mod:`.sandbox`
(up/down/status), :mod:`.cli` (click group ``sandbox``).
"""
