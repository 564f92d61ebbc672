"""Container log rotation (netsim.kubelet.logrotate, upstream's container log manager):
past the size the log is copied aside and truncated; at most five files are kept."""

from __future__ import annotations

import os

from netsim.kubelet import logrotate


def test_a_log_past_the_size_is_copied_aside_and_truncated(tmp_path):
    log = tmp_path / "0.log"
    log.write_bytes(b"a" * 10)
    log.chmod(0o600)
    assert not logrotate.rotate(str(log), now=0, max_size=10)  # not larger: stays
    with open(log, "ab", buffering=0) as f:  # as the container writes it: O_APPEND
        f.write(b"b")
        assert logrotate.rotate(str(log), now=0, max_size=10)
        f.write(b"new")
    assert log.read_bytes() == b"new"
    assert (tmp_path / "0.log.19700101-000000").read_bytes() == b"a" * 10 + b"b"
    assert (tmp_path / "0.log.19700101-000000").stat().st_mode & 0o777 == 0o600


def test_at_most_max_files_are_kept_the_oldest_go(tmp_path):
    log = tmp_path / "0.log"
    (tmp_path / "0.exit").write_text("0\n")  # the exit file is not a rotated log
    for i in range(7):
        log.write_bytes(b"%d" % i * 20)
        assert logrotate.rotate(str(log), now=i, max_size=10, max_files=5)
        os.utime(f"{log}.19700101-00000{i}", (i, i))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["0.exit", "0.log", "0.log.19700101-000003", "0.log.19700101-000004",
                    "0.log.19700101-000005", "0.log.19700101-000006"]


def test_twice_in_a_second_keeps_both(tmp_path):
    log = tmp_path / "0.log"
    for content in (b"first-one", b"second-one"):
        log.write_bytes(content)
        assert logrotate.rotate(str(log), now=5, max_size=3)
    assert (tmp_path / "0.log.19700101-000005").read_bytes() == b"first-one"
    assert (tmp_path / "0.log.19700101-000005.1").read_bytes() == b"second-one"
