# SPDX-License-Identifier: MIT
"""The Python package over libcmv's JSON entry (run by ctest: host_python)."""
import json
import os

import pytest

import cmv

SSE = ("event: message_start\ndata: " + json.dumps({"type": "message_start", "message": {
    "type": "message", "role": "assistant", "content": [], "usage": {"input_tokens": 1000, "output_tokens": 1}}}) +
       "\n\ndata: " + json.dumps({"type": "content_block_start", "index": 0, "content_block": {
           "type": "tool_use", "id": "tu1", "name": "cmv_recall", "input": {}}}) +
       "\n\ndata: " + json.dumps({"type": "content_block_delta", "index": 0, "delta": {
           "type": "input_json_delta", "partial_json": "{\"id\": \"abc"}}) +
       "\n\ndata: " + json.dumps({"type": "content_block_delta", "index": 0, "delta": {
           "type": "input_json_delta", "partial_json": "def0\"}"}}) +
       "\n\ndata: " + json.dumps({"type": "content_block_stop", "index": 0}) +
       "\n\ndata: " + json.dumps({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                  "usage": {"output_tokens": 9}}) + "\n\n")


@pytest.fixture
def store(tmp_path):
    with cmv.Store(str(tmp_path / "a" / "b" / ".cmv")) as s:
        yield s


def test_store_and_branch_are_created(tmp_path, store):
    assert os.path.isdir(tmp_path / "a" / "b" / ".cmv")
    b = store.branch("main")
    assert b.head is None
    head = b.append([{"role": "user", "content": "hello"}], format="openai-chat")
    assert len(head) == 32 and b.head == head
    assert store.branch("main").head == head  # the same branch, not a new one


def test_materialize_tools_and_budget(store):
    b = store.branch("m")
    b.append({"role": "user", "content": "list the files"}, format="anthropic")
    tools = [{"name": "shell", "description": "run", "input_schema": {"type": "object", "properties": {}}}]
    body, report = b.materialize("claude-sonnet-4-5", tools=tools, recall_tool=True, max_tokens=2000)
    assert [t["name"] for t in body["tools"]] == ["shell", "cmv_recall"]
    assert body["max_tokens"] == 2000 and body["messages"][0]["role"] == "user"
    assert report["fits"] and report["tools_tokens"] > 0 and report["signature"] == "anthropic/claude-sonnet-4-5"
    body, _ = b.materialize("gpt-4o", tools=tools, format="openai-chat")
    assert body["tools"][0]["function"]["name"] == "shell"


def test_switch_usage_and_cost(store):
    b = store.branch("s")
    b.append({"role": "user", "content": "hi"})
    r = b.switch("gpt-4o")
    assert r["changed"] and r["event"] and r["signature"] == "openai/gpt-4o"
    # the same model by its descriptor: one segment
    assert not b.switch({"provider": "openai", "model": "gpt-4o"})["event"]
    b.switch("claude-sonnet-4-5")
    # a call to gpt-4o is booked to gpt-4o, whatever the branch runs on
    assert b.record_usage("gpt-4o", input_tokens=1_000_000)["cost_usd"] > 0
    b.record_usage(input_tokens=10, output_tokens=5)  # the branch's model
    u = b.usage()
    sigs = [t["signature"] for t in u["totals"]]
    assert sigs == ["openai/gpt-4o", "anthropic/claude-sonnet-4-5"]
    assert u["totals"][0]["input_tokens"] == 1_000_000 and u["cost_usd"] > 2
    with pytest.raises(cmv.Budget) as e:
        b.switch("gpt-4o", budget=5)
    assert "cannot switch" in e.value.message and e.value.code == -30004


def test_append_response_body_and_stream_chunks(store):
    b = store.branch("r")
    b.append({"role": "user", "content": "go"})
    r = b.append_response({"choices": [{"message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 100, "completion_tokens": 3}}, format="openai-chat",
                          model="gpt-4o")
    assert r["text"] == "fine" and r["usage"]["input_tokens"] == 100 and r["cost_usd"] > 0
    b.append({"role": "user", "content": "more"})
    chunks = [SSE[i:i + 13].encode() for i in range(0, len(SSE), 13)]
    r = b.append_response(iter(chunks), format="anthropic", model="claude-sonnet-4-5")
    assert r["tool_calls"] == [{"id": "tu1", "name": "cmv_recall", "input": {"id": "abcdef0"}}]
    assert r["stop_reason"] == "tool_use" and r["usage"]["output_tokens"] == 9
    text, is_error = b.recall_tool(r["tool_calls"][0]["input"])
    assert is_error and text.startswith("error:")  # the model's mistake, told to the model
    with pytest.raises(cmv.Invalid):
        b.append_response({"error": {"message": "rate limited"}}, format="anthropic")


def test_request_anchored_on_the_last_bill(store):
    # the reply's usage is what the request was billed: the next request holding it is counted from it
    b = store.branch("bill")
    b.append({"role": "user", "content": "go " * 300})
    raw, first = b.request("gpt-4o")
    assert first["anchored"] is False
    billed = 2 * first["tokens"]
    b.append_response({"choices": [{"message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": billed, "completion_tokens": 3}}, format="openai-chat", model="gpt-4o")
    b.append({"role": "user", "content": "more"})
    raw, nxt = b.request("gpt-4o")
    assert nxt["anchored"] is True and nxt["correction"] == billed - first["tokens"]
    assert nxt["tokens"] > billed


def test_snapshot_branch_from_recall_search(store):
    b = store.branch("main")
    b.append({"role": "user", "content": "the password of the vault is purple-elephant"})
    store.snapshot("s1", "main")
    c = store.branch("alt", from_="s1")
    assert c.head == b.head
    with pytest.raises(cmv.Exists):
        store.branch("alt", from_="s1")
    hits = store.search("elephant")
    assert hits and "elephant" in hits[0]["snippet"]
    assert "elephant" in store.recall(hits[0]["blob"][:12])
    with pytest.raises(cmv.NotFound):
        store.recall("0123456789abcdef")
    b.switch("gpt-4o")
    assert "purple-elephant" in b.search("vault", budget=2000)


def test_models_and_errors(store):
    m = store.model("claude-sonnet-4-5-20250929")
    assert m["signature"] == "anthropic/claude-sonnet-4-5" and m["context_window"] > 100000
    with pytest.raises(cmv.NotFound):
        store.model("no-such-model-x")
    with pytest.raises(cmv.Invalid) as e:
        store.model({"model": "gpt-4o", "api_key": "sk-123"})
    assert "secret" in str(e.value)


def test_no_object_outlives_its_store(tmp_path):
    s = cmv.Store(str(tmp_path / ".cmv"))
    b = s.branch("x")
    s.close()
    with pytest.raises(cmv.Error):
        b.append({"role": "user", "content": "late"})
    s.close()  # twice is harmless


def test_readonly_store_materializes(tmp_path):
    path = str(tmp_path / ".cmv")
    with cmv.Store(path) as s:
        s.branch("main").append({"role": "user", "content": "hi"})
    with cmv.Store(path, readonly=True) as ro:
        body, report = ro.branch("main").materialize("gpt-4o")
        assert body["messages"] and report["fits"]
        with pytest.raises(cmv.Invalid):
            ro.branch("main").append({"role": "user", "content": "no"})


def test_request_bytes_are_the_materialized_dict(store):
    b = store.branch("q")
    b.append({"role": "user", "content": "ünïcode and \"quotes\" in ,\"request\": text"}, format="anthropic")
    tools = [{"name": "shell", "description": "run", "input_schema": {"type": "object", "properties": {}}}]
    raw, report = b.request("gpt-4o", tools=tools, recall_tool=True)
    assert isinstance(raw, bytes) and "paged_out" not in report and report["tools"] == 2
    body, full = b.materialize("gpt-4o", tools=tools, recall_tool=True)
    assert json.loads(raw) == body and "ünïcode" in body["messages"][0]["content"]
    assert full["paged_out"] == [] and full["tokens"] == report["tokens"]
    assert "stream" not in body
    # stream=True: what each API needs to stream, usage included
    chat = json.loads(b.request("gpt-4o", stream=True)[0])
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    msgs = json.loads(b.request("claude-sonnet-4-5", stream=True)[0])
    assert msgs["stream"] is True and "stream_options" not in msgs
    gem = json.loads(b.request("gemini-2.5-pro", stream=True)[0])
    assert "stream" not in gem  # Gemini streams by its URL


def test_stream_is_fed_as_it_arrives(store):
    b = store.branch("inc")
    b.append({"role": "user", "content": "go"})
    fed = []

    def arriving():
        for i in range(0, len(SSE), 7):
            fed.append(i)
            yield SSE[i:i + 7].encode()

    r = b.append_response(arriving(), format="anthropic", model="claude-sonnet-4-5")
    assert r["tool_calls"][0]["input"] == {"id": "abcdef0"} and len(fed) > 10

    # a bad event fails at its chunk: nothing after it is read, nothing is appended
    head = b.head

    def broken():
        yield b"data: {not json}\n\n"
        raise AssertionError("read past the bad event: the chunks were joined, not fed")

    with pytest.raises(cmv.Invalid):
        b.append_response(broken(), format="anthropic")
    assert b.head == head


def test_reply_stream_object(tmp_path):
    s = cmv.Store(str(tmp_path / ".cmv"))
    b = s.branch("x")
    b.append({"role": "user", "content": "go"})
    with b.reply_stream("anthropic") as rs:
        for i in range(0, len(SSE), 5):
            rs.feed(SSE[i:i + 5])  # text chunks too
        r = rs.finish()
    assert r["stop_reason"] == "tool_use" and b.head == r["head"]
    with pytest.raises(cmv.Error):
        rs.feed(b"data: {}\n\n")  # finished
    # dropped unfinished: nothing appended, its id is gone
    rs = b.reply_stream("openai-chat")
    rs.feed(b"data: {\"choices\": []}\n\n")
    rs.close()
    assert b.head == r["head"]
    with pytest.raises(cmv.NotFound):
        s.call("append_response", branch="x", stream=rs._id or 12345)
    # a stream outliving its store: refused, and the store's close freed it (valgrind: no leak)
    rs = b.reply_stream("anthropic")
    s.close()
    with pytest.raises(cmv.Error):
        rs.feed(b"data: {}\n\n")
    del rs
    with pytest.raises(cmv.Invalid):
        cmv.Store(str(tmp_path / ".cmv")).call("stream_open", format="cohere")


def test_restore_then_switch_in_one_step(store):
    b = store.branch("main")
    b.append({"role": "user", "content": "x " * 3000})
    store.snapshot("s", "main")
    head = b.head
    c = store.branch("retry", from_="s", model="claude-sonnet-4-5")
    # made at the snapshot, with the switch event on it; main untouched
    assert c.head != head and b.head == head
    assert [s["signature"] for s in c.usage()["segments"]] == ["anthropic/claude-sonnet-4-5"]
    body, _ = c.materialize()  # the branch's model now
    assert "max_tokens" in body and body["messages"][0]["role"] == "user"
    # refused to fit: nothing is made
    with pytest.raises(cmv.Budget):
        store.call("switch", branch="tiny", model="gpt-4o", budget=10, **{"from": "s"})
    with pytest.raises(cmv.NotFound):
        store.call("head", branch="tiny")


def test_calls_release_the_gil(store):
    # a CDLL's foreign calls run without the GIL (a PyDLL's would hold it)
    import ctypes
    lib = cmv._load()
    assert not isinstance(lib, ctypes.PyDLL)
    assert not lib.cmv_host_call._flags_ & ctypes._FUNCFLAG_PYTHONAPI
    # and a store is used by one thread at a time: calls from several threads are serialized, not corrupted
    import threading
    b = store.branch("t")
    errors = []

    def work(k):
        try:
            for i in range(20):
                b.append({"role": "user", "content": "thread %d message %d" % (k, i)})
                b.request("gpt-4o")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    body = json.loads(b.request("gpt-4o", budget=100000)[0])
    text = json.dumps(body)  # consecutive user messages render as one: count what they said
    assert all("thread %d message %d\"" % (k, i) in text for k in range(4) for i in range(20))


def test_ledger_check_and_classify(store):
    b = store.branch("l")
    b.append([{"role": "user", "content": "run the tests"},
              {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash",
                                                 "input": {"command": "npm test", "description": "run them"}}]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
              {"role": "assistant", "content": [{"type": "tool_use", "id": "t2", "name": "mcp__x__lookup",
                                                 "input": {"q": "a"}}]}])
    led = b.ledger()
    assert led["counts"]["calls"] == 2 and led["counts"]["committed"] == 1 and led["counts"]["in_flight"] == 1
    assert led["counts"]["unclassified"] == 1  # unknown counts with side effects until classified
    bash, mcp = led["calls"]
    assert (bash["name"], bash["state"], bash["effect"], bash["result"]) == ("Bash", "committed", "side_effects", "ok")
    assert (mcp["state"], mcp["effect"], mcp["result_node"]) == ("in_flight", "unknown", None)
    # the same call from another model: its own commentary, its keys in another order; committed, so not run again
    c = b.ledger_check("Bash", {"description": "again", "command": "  npm test"})
    assert c["committed"] and c["key"] == bash["key"] and c["result_node"] == bash["result_node"]
    assert c["result"] == "ok"
    assert not b.ledger_check("Bash", '{"command": "rm -rf build"}')["committed"]
    # a snapshot's ledger is the branch's (the keys never depend on the ref)
    store.snapshot("before", "l")
    assert [x["key"] for x in store.ledger("before")["calls"]] == [bash["key"], mcp["key"]]
    # the user's classification comes first, is kept in the store, and "unset" removes it
    assert store.tool_classification() == {}
    assert store.classify_tools("mcp__x__*", "none") == {"mcp__x__*": "none"}
    mcp = b.ledger()["calls"][1]
    assert (mcp["effect"], mcp["effect_source"]) == ("none", "config")
    assert b.ledger()["counts"]["unclassified"] == 0
    assert store.classify_tools("mcp__x__*", "unset") == {}
    with pytest.raises(cmv.Invalid) as e:
        store.classify_tools("Bash", "sometimes")
    assert "expected none, side_effects or unset" in e.value.message
    with pytest.raises(cmv.Invalid):
        store.classify_tools("a*b", "none")
    with pytest.raises(cmv.NotFound):
        store.ledger("no-such-ref")


def test_ledger_reads_the_branch_tool_annotations(store):
    b = store.branch("ann")
    b.set_tools([{"name": "lookup", "description": "look up", "input_schema": {"type": "object"},
                  "annotations": {"readOnlyHint": True}}])
    b.append([{"role": "user", "content": "find a"},
              {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "mcp__srv__lookup",
                                                 "input": {"q": "a"}}]}])
    call = b.ledger()["calls"][0]
    assert (call["effect"], call["effect_source"]) == ("none", "mcp")
    # by ref alone no branch's tools count: unknown, as side effects
    assert store.ledger("ann")["calls"][0]["effect"] == "unknown"
