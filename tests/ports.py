"""Loopback ports for the servers the tests start (moto, LocalStack).

A port found free and then bound by another process a moment later can be taken in
between. The kernel hands out ports only from its ephemeral range (to ``bind(0)`` and
to outgoing connections), so picking below that range leaves only servers that choose
their port explicitly to collide with, and the probe rules out those already running.
"""

import random
import socket

_FALLBACK_EPHEMERAL_LOW = 32768
_SPAN = 10000


def port_is_free(port: int) -> bool:
    """True when nothing is bound to 127.0.0.1:port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A free loopback port that the kernel will not hand to anybody else meanwhile."""
    low = _ephemeral_low()
    if low - _SPAN >= 1024:
        for _ in range(50):
            port = random.randrange(low - _SPAN, low)
            if port_is_free(port):
                return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as limits:
            return int(limits.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_LOW
