"""`python -m netsim.netpol golden [--check]`: regenerate (or check) rules/netpol-*.rules."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["golden"]:
        from netsim.netpol.golden import main as golden_main
        return golden_main(argv[1:])
    print("usage: python -m netsim.netpol golden [--check]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
