"""``network: false``: run an attempt in a network namespace of its own, with only loopback.

Python 3.11 has no ``os.unshare`` (3.12 adds it), so this calls ``unshare(2)`` through
``ctypes``. A new network namespace has one interface, ``lo``, and it starts down: it is
brought up with the ``SIOCSIFFLAGS`` ioctl, so a task may still talk to itself on 127.0.0.1
but reaches nothing else. Creating one needs ``CAP_SYS_ADMIN`` (root), or unprivileged user
namespaces (then a user namespace is created first, mapping the caller to itself).

Level 3 (pool): imports only gxo.errors.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import socket
import struct

from gxo.errors import GxoError

__all__ = ["NetnsUnavailable", "isolate_network", "network_isolation_supported"]

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


class NetnsUnavailable(GxoError, OSError):
    """The kernel refused a new network namespace; the message says why (an OSError too, as
    what the kernel refused)."""


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _write_map(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def isolate_network() -> None:
    """Move the calling process into a new network namespace with loopback up.

    Call it in the attempt's fresh process, before any module code runs (it changes the
    calling process for good). Raises :class:`NetnsUnavailable` with the reason.
    """
    try:
        _unshare(CLONE_NEWNET)
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise NetnsUnavailable(f"unshare(CLONE_NEWNET) failed: {exc.strerror}") from None
        _unshare_as_user()
    _loopback_up()


def _unshare_as_user() -> None:
    """Without CAP_SYS_ADMIN: a user namespace first (if the kernel allows unprivileged ones)."""
    uid, gid = os.getuid(), os.getgid()
    try:
        _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    except OSError as exc:
        raise NetnsUnavailable(
            "a network namespace needs root or unprivileged user namespaces "
            f"(kernel.unprivileged_userns_clone); unshare failed: {exc.strerror}",
        ) from None
    _write_map("/proc/self/setgroups", "deny")
    _write_map("/proc/self/uid_map", f"{uid} {uid} 1")
    _write_map("/proc/self/gid_map", f"{gid} {gid} 1")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def network_isolation_supported() -> str:
    """Empty when ``network: false`` can be enforced here, else the reason it cannot.

    Tries it for real in a short-lived child (the only reliable test: container runtimes
    and sysctls may refuse what the capabilities suggest).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        message = b""
        try:
            isolate_network()
        except (OSError, GxoError) as exc:
            message = str(exc).encode() or b"unshare failed"
        os.write(write_fd, message)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        why = reader.read().decode(errors="replace")
    os.waitpid(pid, 0)
    return why
