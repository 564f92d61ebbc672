"""The store's resourceVersion survives a restart: it never goes back, whether the newest
change was a write (its version is in the object's row) or a delete (recorded apart). And
the text a write stored is what the API answers it with."""

from __future__ import annotations

from netsim.api.store import Store


def _cm(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}}


def test_the_version_after_a_restart_is_the_newest_write_or_delete(tmp_path):
    path = str(tmp_path / "store.db")
    s = Store(path)
    s.bootstrap()
    s.create(_cm("a"))
    b = s.create(_cm("b"))
    b["data"] = {"k": "w"}
    s.update(b)
    after_writes = s.resource_version
    s.close()
    s = Store(path)
    assert s.resource_version == after_writes
    assert int(s.create(_cm("c"))["metadata"]["resourceVersion"]) == after_writes + 1
    s.delete("configmaps", "c", "default")
    s.delete("configmaps", "b", "default")
    after_deletes = s.resource_version
    s.close()
    s = Store(path)
    assert s.resource_version == after_deletes  # above every row left
    assert int(s.create(_cm("d"))["metadata"]["resourceVersion"]) == after_deletes + 1
    s.close()


def test_the_text_of_a_write_is_the_stored_json_of_the_object_it_returned(tmp_path):
    import json
    import threading
    s = Store(str(tmp_path / "store.db"))
    s.bootstrap()
    a = s.create(_cm("a"))
    assert json.loads(s.text_of(a)) == a == s.get("configmaps", "a", "default")
    b = s.create(_cm("b"))
    assert s.text_of(a) is None and s.text_of(b) is not None  # only the last write's
    assert s.text_of(dict(b)) is None  # an equal object is not the one written
    seen = []
    t = threading.Thread(target=lambda: seen.append(s.text_of(b)))
    t.start()
    t.join()
    assert seen == [None]  # another thread's last write is its own
    s.close()
