"""Who is on the other end of a client connection, as the kernel told us.

The transport reads it at accept() (SO_PEERCRED, SO_PEERGROUPS) and checks it
against the access list; the service then authorises every request with the same
object (key ownership, grants, quotas, rate-limit buckets).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int  # primary group
    groups: tuple[int, ...] = ()  # supplementary groups (SO_PEERGROUPS), as the kernel saw them at connect()

    def in_group(self, gids) -> bool:
        return self.gid in gids or any(g in gids for g in self.groups)
