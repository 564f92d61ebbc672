"""`python -m netsim.ingress [flags]`: the ingress controller of an ingress-nginx pod.

Accepts (and ignores) the flags of the real controller images, so upstream manifests such
as ingress-nginx 0.30.0's mandatory.yaml run unchanged (`/nginx-ingress-controller
--configmap=... --publish-service=... --annotations-prefix=...`).

`python -m netsim.ingress golden [--check]` regenerates (or checks) rules/ingress/.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading


def _bool(v: str) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="netsim-ingress", allow_abbrev=False)
    ap.add_argument("--cluster", default=os.environ.get("NETSIM_CLUSTER", "netsim"))
    ap.add_argument("--ingress-class", default="nginx",
                    help="IngressClass name (and kubernetes.io/ingress.class value) served")
    ap.add_argument("--controller-class", default="k8s.io/ingress-nginx")
    ap.add_argument("--http-port", type=int, default=80)
    ap.add_argument("--https-port", type=int, default=443)
    ap.add_argument("--healthz-port", type=int, default=10254)
    ap.add_argument("--state-dir", default=None,
                    help="default /var/lib/netsim/<cluster>/ingress/<pod-name>")
    ap.add_argument("--nginx", default="nginx", help="nginx binary")
    ap.add_argument("--publish-status-address", default="",
                    help="comma-separated IPs for status.loadBalancer instead of node IPs")
    ap.add_argument("--watch-ingress-without-class", type=_bool, default=True)
    ap.add_argument("--update-status", type=_bool, default=True)
    ap.add_argument("--create-ingress-class", type=_bool, default=True)
    ap.add_argument("--sync-period", type=float, default=0.05,
                    help="debounce between a change and the render (seconds)")
    # Workers as root by default: their temp files (request bodies and responses larger
    # than the buffers) live in the pod's state folder under /var/lib/netsim/<cluster>,
    # which is root's only (0700); as nginx's default `nobody` they could not open them.
    ap.add_argument("--user", default="root", help="nginx worker user (default: root)")
    ap.add_argument("-v", "--v", dest="verbose", default="1")
    args, unknown = ap.parse_known_args(argv)
    args.ignored = unknown
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "golden":
        from netsim.ingress.golden import main as golden_main
        return golden_main(argv[1:])
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("netsim.ingress")
    if os.geteuid() != 0:
        print("netsim ingress controller must run as root", file=sys.stderr)
        return 1
    if args.ignored:
        log.info("ignoring ingress-nginx flags: %s", " ".join(args.ignored))
    from netsim.api.client import HttpClient
    from netsim.ingress.controller import IngressController, serve_health

    pod = os.environ.get("NETSIM_POD_NAME") or os.environ.get("POD_NAME") or ""
    ns = os.environ.get("NETSIM_POD_NAMESPACE") or os.environ.get("POD_NAMESPACE") or ""
    ctrl = IngressController(
        HttpClient(args.cluster), cluster=args.cluster, pod_name=pod, pod_namespace=ns,
        node_name=os.environ.get("NETSIM_NODE_NAME", ""), class_name=args.ingress_class,
        controller_class=args.controller_class, state_dir=args.state_dir,
        http_port=args.http_port, https_port=args.https_port, nginx_binary=args.nginx,
        publish_ips=[a for a in args.publish_status_address.split(",") if a] or None,
        watch_without_class=args.watch_ingress_without_class, debounce=args.sync_period,
        user=args.user, create_class=args.create_ingress_class,
        update_status=args.update_status)

    def on_signal(signum, _frame) -> None:
        log.info("received signal %d, shutting down", signum)
        threading.Thread(target=ctrl.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.healthz_port:
        serve_health(ctrl, args.healthz_port)
    log.info("ingress controller for class %s (%s) in %s", args.ingress_class,
             args.controller_class, ctrl.dir)
    ctrl.run()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
