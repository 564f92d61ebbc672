"""`python -m netsim.dns --listen 0.0.0.0 --port 53 --metrics-port 9153 --config PATH`."""

import sys

from netsim.dns.server import main

sys.exit(main())
