"""The pytest plugin netsim registers (entry point `pytest11`, name `netsim`): a cluster
for a test suite.

    def test_echo(netsim_cluster):               # a netsim.Cluster, up for the session
        netsim_cluster.apply("echo.yaml")
        ...

    @pytest.mark.netsim(nodes=1, proxy_mode="nftables")
    def test_nft(netsim_cluster): ...            # a cluster of its own kind (see below)

- `netsim_cluster` is session-scoped (`--netsim-scope module` for one per module): one
  cluster, a unique name (`t` + hex; `--netsim-name-prefix`) on a free LAN /24 (from
  192.168.208.0/20; `--netsim-lan` a /24 or a pool), brought up on first use and taken down
  at the end, also when tests fail or the run is interrupted (^C, SIGTERM).
- `@pytest.mark.netsim(nodes=..., proxy_mode=...)` on a test, class or module asks for
  another cluster; tests asking for the same one are run together (the cluster is the
  fixture's parameter, and pytest groups the tests by parameter) and share it, and each is
  taken down when its group is done. Options `--netsim-nodes`, `--netsim-proxy-mode` set
  the defaults. `nodes=1` is the control-plane node alone: tainted as kubeadm taints it,
  so pods need a toleration for node-role.kubernetes.io/control-plane.
- `--netsim-keep`: leave the clusters up; the summary says how to reach and remove them.
- A run that could not tear down (SIGKILL, the machine's OOM killer) leaves its clusters;
  the next run with the same name prefix removes them before it brings up its own (each
  cluster records the pytest process it belongs to; a kept cluster is left alone).
- Without root the tests using the fixture are skipped, saying why.

Nothing of netsim is imported until a test asks for a cluster: the plugin costs nothing in
a run that does not use it (netsim's own tests included).
"""

from __future__ import annotations

import json
import os
import signal

import pytest

PROXY_MODES = ("iptables", "nftables", "ipvs")
_KEY_ATTR = "_netsim_kept"
_REAPED_ATTR = "_netsim_reaped"
_RESTORE_ATTR = "_netsim_restore_sigterm"
OWNER_FILE = "pytest-owner.json"  # in /run/netsim/<cluster>/, removed with the cluster


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("netsim", "netsim clusters for tests (fixture netsim_cluster)")
    g.addoption("--netsim-nodes", type=int, default=None, metavar="N",
                help="nodes of the test cluster (default 3; a netsim marker may ask otherwise)")
    g.addoption("--netsim-proxy-mode", choices=PROXY_MODES, default=None,
                help="kube-proxy mode of the test cluster (default iptables)")
    g.addoption("--netsim-keep", action="store_true", default=False,
                help="leave the test clusters up at the end and say how to reach them")
    g.addoption("--netsim-lan", default=os.environ.get("NETSIM_PYTEST_LAN"), metavar="CIDR",
                help="the clusters' LAN: a /24, or a bigger network whose free /24s are "
                     "taken in turn (default 192.168.208.0/20; env NETSIM_PYTEST_LAN)")
    g.addoption("--netsim-name-prefix", default=os.environ.get("NETSIM_PYTEST_PREFIX", "t"),
                metavar="PREFIX", help="cluster names are PREFIX + random hex, 10 characters "
                                       "at most (default t; env NETSIM_PYTEST_PREFIX)")
    g.addoption("--netsim-scope", choices=("session", "package", "module", "class"),
                default="session", help="scope of the netsim_cluster fixture (default session)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netsim(nodes=3, proxy_mode='iptables'): the cluster netsim_cluster gives "
                   "these tests")
    setattr(config, _KEY_ATTR, [])
    setattr(config, _REAPED_ATTR, None)
    setattr(config, _RESTORE_ATTR, None)


def _defaults(config: pytest.Config) -> dict:
    return {"nodes": config.getoption("netsim_nodes") or 3,
            "proxy_mode": config.getoption("netsim_proxy_mode") or "iptables"}


def _marker_kwargs(marker) -> dict:
    kw = dict(marker.kwargs)
    unknown = set(kw) - {"nodes", "proxy_mode"}
    if unknown or marker.args:
        raise pytest.UsageError(f"@pytest.mark.netsim takes nodes= and proxy_mode= only, got "
                                f"{', '.join(sorted(unknown)) or marker.args}")
    if "proxy_mode" in kw and kw["proxy_mode"] not in PROXY_MODES:
        raise pytest.UsageError(f"@pytest.mark.netsim: proxy_mode must be one of "
                                f"{', '.join(PROXY_MODES)}, not {kw['proxy_mode']!r}")
    return kw


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The cluster a test asks for (its netsim marker over the options) is the fixture's
    parameter: pytest then groups the tests by cluster, brings each up once and takes it
    down when its group is done (the ids say which: `test_x[netsim-3-iptables]`)."""
    if "netsim_cluster" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("netsim")
    want = {**_defaults(metafunc.config), **(_marker_kwargs(marker) if marker else {})}
    key = (want["nodes"], want["proxy_mode"])
    metafunc.parametrize("netsim_cluster", [key], indirect=True,
                         ids=[f"netsim-{key[0]}-{key[1]}"],
                         scope=metafunc.config.getoption("netsim_scope"))


def _scope(fixture_name: str, config: pytest.Config) -> str:
    return config.getoption("netsim_scope")


@pytest.fixture(scope=_scope)
def netsim_cluster(request: pytest.FixtureRequest):
    """A running netsim.Cluster (see netsim.library.plugin), taken down after its scope."""
    if os.geteuid() != 0:
        pytest.skip("netsim needs root (network namespaces): run the tests as root, e.g. "
                    "sudo python -m pytest")
    config = request.config
    nodes, proxy_mode = getattr(request, "param", None) or tuple(_defaults(config).values())
    from netsim.library import Cluster  # noqa: PLC0415 - only when a test wants a cluster
    keep = config.getoption("netsim_keep")
    prefix = config.getoption("netsim_name_prefix")
    if getattr(config, _REAPED_ATTR) is None:
        setattr(config, _REAPED_ATTR, reap_orphans(prefix))
    cluster = Cluster(nodes=nodes, proxy_mode=proxy_mode, lan=config.getoption("netsim_lan"),
                      keep=keep, name_prefix=prefix)
    if getattr(config, _RESTORE_ATTR) is None:  # from the first cluster to the run's end
        setattr(config, _RESTORE_ATTR, _sigterm_as_interrupt())
    try:
        with cluster:
            _record_owner(cluster.name, keep)
            yield cluster
    finally:
        if keep and cluster.is_up:
            getattr(config, _KEY_ATTR).append(cluster)


def pytest_unconfigure(config: pytest.Config) -> None:
    restore = getattr(config, _RESTORE_ATTR, None)
    if restore is not None:
        restore()


def _record_owner(name: str, keep: bool) -> None:
    from netsim.kubelet.runtime import proc_starttime  # noqa: PLC0415
    from netsim.net.ledger import run_dir  # noqa: PLC0415
    path = os.path.join(run_dir(name), OWNER_FILE)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump({"pid": os.getpid(), "starttime": proc_starttime(os.getpid()),
                   "keep": keep}, f)


def reap_orphans(prefix: str) -> list[str]:
    """Take down the clusters named PREFIX... whose pytest run is gone without taking them
    down (not kept ones, not ones still being made: those have no owner record yet).
    Returns their names."""
    from netsim.kubelet.runtime import proc_starttime  # noqa: PLC0415
    from netsim.net.ledger import RUN_ROOT  # noqa: PLC0415
    reaped = []
    names = sorted(os.listdir(RUN_ROOT)) if os.path.isdir(RUN_ROOT) else []
    for name in names:
        if not name.startswith(prefix):
            continue
        try:
            with open(os.path.join(RUN_ROOT, name, OWNER_FILE)) as f:
                owner = json.load(f)
        except (OSError, ValueError):
            continue  # not a plugin's cluster, or one being brought up now
        if owner.get("keep") or proc_starttime(int(owner.get("pid", 0))) == owner.get("starttime"):
            continue
        from netsim.cluster import lifecycle  # noqa: PLC0415
        try:
            lifecycle.down(name, quiet=True)
        except lifecycle.ClusterError:
            continue
        reaped.append(name)
    return reaped


def _sigterm_as_interrupt():
    """While a cluster is up, SIGTERM (a CI's timeout, `kill`) ends the run as ^C does, so
    the fixture's teardown runs. Returns what puts the old handler back."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return lambda: None  # someone handles it already: theirs

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt("SIGTERM")
    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    tr = terminalreporter
    reaped = getattr(config, _REAPED_ATTR, None)
    if reaped:
        tr.section("netsim")
        tr.write_line("removed clusters an earlier run left up when it was killed: "
                      + ", ".join(reaped))
    kept = getattr(config, _KEY_ATTR, [])
    if not kept:
        return
    tr.section("netsim clusters kept (--netsim-keep)")
    for c in kept:
        tr.write_line(f"cluster {c.name}: LAN {c.lan}, {c.nodes} nodes, {c.proxy_mode}")
        tr.write_line(f"  netsim --cluster {c.name} get pods -A -o wide")
        tr.write_line(f"  KUBECONFIG={c.kubeconfig} kubectl get pods -A")
        tr.write_line(f"  python: netsim.Cluster.attach({c.name!r})")
        tr.write_line(f"  remove: netsim cluster down --name {c.name}")
