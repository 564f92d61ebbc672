"""The ledger's reading: what `cluster down` undoes (forgotten records dropped, duplicates
merged, creation order kept, a torn last line skipped)."""

from __future__ import annotations

from netsim.net.ledger import Ledger


def test_records_drop_forgotten_merge_duplicates_keep_order(tmp_path):
    led = Ledger("t", root=str(tmp_path))
    led.add("netns", name="a")
    led.add("dir", path="/x")
    led.add("netns", name="a")  # recorded twice (an agent restarted): one record
    led.add("netns", name="b")
    led.forget("netns", name="a")
    led.add("netns", name="c")
    led.add("netns", name="a")  # made again after it was removed: now last
    with open(led.path, "a") as f:
        f.write('{"kind": "netns", "na')  # torn by a SIGKILL mid-write
    assert led.records() == [{"kind": "dir", "path": "/x"}, {"kind": "netns", "name": "b"},
                             {"kind": "netns", "name": "c"}, {"kind": "netns", "name": "a"}]


def test_a_forget_matches_whatever_the_key_order(tmp_path):
    """Records are matched by content: a hand-written line with its keys in another order
    is still forgotten (the reader compares canonical JSON)."""
    led = Ledger("t", root=str(tmp_path))
    with open(led.path, "w") as f:
        f.write('{"pid": 7, "kind": "process", "role": "agent/n1", "starttime": 9}\n')
        f.write('{"kind": "forget", "what": {"starttime": 9, "role": "agent/n1", "kind": '
                '"process", "pid": 7}}\n')
    assert led.records() == []
