"""Sleep until SIGTERM: busybox/alpine/debian/ubuntu without a command, and `pause`.

Usage: python -m netsim.images.sleep [ignored args]
"""

import signal

try:
    from . import _common as c
except ImportError:  # run as a script: python -S .../netsim/images/sleep.py
    import _common as c


def main() -> None:
    c.install_signals()
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
