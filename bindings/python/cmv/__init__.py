# SPDX-License-Identifier: MIT
"""cmv for Python: the agent-host loop over libcmv's JSON entry (include/cmv/host.h).

    import cmv
    with cmv.Store("/tmp/s/.cmv") as store:           # created when missing
        b = store.branch("main")                     # created when missing
        b.append([{"role": "user", "content": "hi"}], format="openai-chat")
        body, report = b.materialize("gpt-4o", tools=[...], recall_tool=True)
        ...send body...
        reply = b.append_response(response_json_or_sse_chunks, format="openai-chat", model="gpt-4o")

Every call is one libcmv call (ctypes releases the GIL while it runs); a failure
raises an Error subclass named after its CMV_E* code, with libcmv's message. A
Branch keeps its Store alive; a closed Store refuses every call.
"""
import ctypes
import ctypes.util
import json
import os
import threading

__all__ = ["Store", "Branch", "ReplyStream", "Error", "NotFound", "Exists", "Ambiguous", "Budget", "Modified", "Locked",
           "Mismatch", "Transport", "Invalid", "NoMemory", "IOError_", "Corrupt", "Unsupported", "TooBig",
           "Version", "library_path"]


class Error(Exception):
    """A libcmv failure: .code is the CMV_E* code (negative), .message its message."""
    code = -1

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


def _err(name, code):
    return type(name, (Error,), {"code": code})


NotFound = _err("NotFound", -30001)
Exists = _err("Exists", -30002)
Ambiguous = _err("Ambiguous", -30003)
Budget = _err("Budget", -30004)
Modified = _err("Modified", -30005)
Locked = _err("Locked", -30006)
Mismatch = _err("Mismatch", -30007)
Transport = _err("Transport", -30008)
Invalid = _err("Invalid", -30009)
NoMemory = _err("NoMemory", -30010)
IOError_ = _err("IOError", -30011)
Corrupt = _err("Corrupt", -30012)
Unsupported = _err("Unsupported", -30013)
TooBig = _err("TooBig", -30014)
Version = _err("Version", -30017)
_BY_CODE = {c.code: c for c in (NotFound, Exists, Ambiguous, Budget, Modified, Locked, Mismatch, Transport, Invalid,
                                NoMemory, IOError_, Corrupt, Unsupported, TooBig, Version)}

_CREATE, _READONLY = 1, 4
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_METHODS = {m: m.encode() for m in ("branch", "head", "append", "append_response", "request", "switch", "record_usage",
                                   "usage", "tools_set", "ledger", "ledger_check", "ledger_classify", "search", "recall", "recall_tool", "snapshot", "model",
                                   "stream_open", "stream_close")}
# request's result is exactly {"report":R,"request":B} (host/json.c, invariant 3): B is sliced out, never parsed
_REQ_HEAD, _REQ_MID = b'{"report":', b',"request":'


class _ErrorStruct(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char_p)]


def library_path():
    """Where libcmv is loaded from: $CMV_LIBRARY, the build in this source tree, or the system's."""
    env = os.environ.get("CMV_LIBRARY")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for build in ("build", "build-asan"):
        p = os.path.join(here, "..", "..", "..", build, "libcmv.so")
        if os.path.exists(p):
            return os.path.normpath(p)
    found = ctypes.util.find_library("cmv")
    if not found:
        raise ImportError("libcmv not found: build it (cmake --build build) or set CMV_LIBRARY")
    return found


_lib = None
_lib_lock = threading.Lock()


def _load():
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = ctypes.CDLL(library_path())
            lib.cmv_host_open.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_uint]
            lib.cmv_host_open.restype = ctypes.c_int
            lib.cmv_host_call.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_char_p,
                                          ctypes.c_char_p]
            lib.cmv_host_call.restype = ctypes.c_int
            lib.cmv_host_string_free.argtypes = [ctypes.c_void_p]
            lib.cmv_host_string_free.restype = None
            lib.cmv_host_stream_feed.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_char_p, ctypes.c_size_t]
            lib.cmv_host_stream_feed.restype = ctypes.c_int
            lib.cmv_host_free.argtypes = [ctypes.c_void_p]
            lib.cmv_host_free.restype = None
            lib.cmv_error_last.argtypes = []
            lib.cmv_error_last.restype = ctypes.POINTER(_ErrorStruct)
            lib.cmv_version.restype = ctypes.c_char_p
            _lib = lib
    return _lib


def _raise(lib, rc):
    e = lib.cmv_error_last()
    msg = e.contents.message.decode("utf-8", "replace") if e and e.contents.message else "error %d" % rc
    raise _BY_CODE.get(rc, Error)(msg, rc)


def version():
    return _load().cmv_version().decode()


class Store:
    """An open store. Store(path) creates it (folders too) unless readonly=True."""

    def __init__(self, path, readonly=False):
        lib = _load()
        self._lib = lib
        self._lock = threading.Lock()
        h = ctypes.c_void_p()
        rc = lib.cmv_host_open(ctypes.byref(h), os.fsencode(path), _READONLY if readonly else _CREATE)
        if rc < 0:
            _raise(lib, rc)
        self._h = h
        self.path = path
        self._call_fn, self._free = lib.cmv_host_call, lib.cmv_host_string_free

    def close(self):
        with self._lock:
            if self._h is not None:
                self._lib.cmv_host_free(self._h)
                self._h = None

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, method, **params):
        """One JSON call (docs/host.md lists the methods); the result as Python values."""
        return json.loads(self._call(method, params))

    def call_text(self, method, **params):
        """One JSON call; the result as the JSON text libcmv returned."""
        return self._call(method, params).decode("utf-8")

    def _call(self, method, params):
        """The call's result as bytes. Members that are None are left out (libcmv's defaults)."""
        text = _dumps({k: v for k, v in params.items() if v is not None}).encode()
        out = ctypes.c_void_p()
        # one libcmv call at a time on a store (a cmv_repo is used by one thread at a time)
        with self._lock:
            if self._h is None:
                raise Error("the store is closed")
            rc = self._call_fn(ctypes.byref(out), self._h, _METHODS.get(method) or method.encode(), text)
            if rc < 0:
                _raise(self._lib, rc)
            try:
                return ctypes.string_at(out.value)
            finally:
                self._free(out)

    def _feed(self, stream, chunk):
        with self._lock:
            if self._h is None:
                raise Error("the store is closed")
            rc = self._lib.cmv_host_stream_feed(self._h, stream, chunk, len(chunk))
            if rc < 0:
                _raise(self._lib, rc)

    def branch(self, name, from_=None, model=None):
        """The branch `name`, made when missing (from a snapshot, branch or node: `from_`). With `model` and
        `from_`: restore, then switch, in one step (the branch is made at `from_` and switched to `model`, or
        nothing is written); with `model` alone, the branch is switched to it."""
        if model is not None and from_:
            self.call("switch", branch=name, model=model, **{"from": from_})
        else:
            self.call("branch", name=name, **({"from": from_} if from_ else {}))
            if model is not None:
                self.call("switch", branch=name, model=model)
        return Branch(self, name)

    def snapshot(self, name, ref, description=None):
        return self.call("snapshot", name=name, ref=ref, description=description)["head"]

    def recall(self, id):
        """The bytes behind a stub's id, as text."""
        return self.call("recall", id=id)["text"]

    def search(self, query, limit=None):
        return self.call("search", query=query, limit=limit)["hits"]

    def model(self, ref):
        """What a model reference resolves to (signature, window, tokenizer...)."""
        return self.call("model", model=ref)

    def ledger(self, ref):
        """The ledger of side effects of a snapshot, branch or node (docs/ledger.md): {"counts", "calls", "turns"}.
        Branch.ledger() counts the branch's tool annotations as well."""
        return self.call("ledger", ref=ref)

    def classify_tools(self, pattern, effect):
        """Classify the tools matching `pattern` (a name, or a prefix ending in '*') as "none", "side_effects" or
        "unset" (removed); kept in the store, before every other source. Returns the whole classification."""
        return self.call("ledger_classify", pattern=pattern, effect=effect)["classification"]

    def tool_classification(self):
        """The user's classification of tools: {pattern: "none" | "side_effects"}."""
        return self.call("ledger_classify")["classification"]


class Branch:
    """A branch of a Store; keeps the Store open as long as it lives."""

    def __init__(self, store, name):
        self.store = store
        self.name = name

    def __repr__(self):
        return "Branch(%r)" % self.name

    @property
    def head(self):
        return self.store.call("head", branch=self.name)["head"]

    def append(self, messages, format="anthropic"):
        """Append one message or a list, in a provider's shape; returns the new head."""
        return self.store.call("append", branch=self.name, messages=messages, format=format)["head"]

    def append_response(self, body_or_events, format, model=None):
        """Append a provider's reply: its JSON body (dict, text or bytes) or its SSE stream (text, bytes, or an
        iterable of chunks, each fed to libcmv as it comes). Returns {"head", "text", "tool_calls", "usage",
        "stop_reason", "cost_usd"}; usage is booked to `model`."""
        x = body_or_events
        if isinstance(x, dict):
            return self.store.call("append_response", branch=self.name, format=format, body=x, model=model)
        if isinstance(x, (bytes, bytearray, memoryview, str)):
            x = bytes(x) if not isinstance(x, str) else x.encode("utf-8")
            if x.lstrip().startswith(b"{"):
                return self.store.call("append_response", branch=self.name, format=format,
                                       body=x.decode("utf-8"), model=model)
            x = (x,)
        with self.reply_stream(format, model) as s:
            for chunk in x:
                s.feed(chunk)
            return s.finish()

    def reply_stream(self, format, model=None):
        """A reply arriving as server-sent events: feed(chunk) as each arrives, then finish() appends it."""
        return ReplyStream(self, format, model)

    def request(self, model=None, budget=None, tools=None, format=None, recall_tool=False, max_tokens=None,
                query=None, pins=None, keep_turns=None, stub_pinned=False, stream=False, pages=False):
        """The request body to send, as the bytes to send, and the report (what the pager kept, stubbed and
        evicted; the pages paged out listed under "paged_out" with pages=True). stream=True asks for
        server-sent events (and OpenAI Chat's usage in them). The body is never parsed on the way."""
        raw = self.store._call("request", dict(
            branch=self.name, model=model, budget=budget, tools=tools, format=format,
            recall_tool=recall_tool or None, max_tokens=max_tokens, query=query, pins=pins, keep_turns=keep_turns,
            stub_pinned=stub_pinned or None, stream=stream or None, pages=pages or None))
        # the first ',"request":' ends the report: inside a JSON string a quote is escaped, and no key of it is "request"
        mid = raw.find(_REQ_MID)
        if not raw.startswith(_REQ_HEAD) or mid < 0:
            raise Error("request: an unexpected result from libcmv")
        return raw[mid + len(_REQ_MID):-1], json.loads(raw[len(_REQ_HEAD):mid])

    def materialize(self, model=None, budget=None, tools=None, format=None, recall_tool=False, max_tokens=None,
                    query=None, pins=None, keep_turns=None, stub_pinned=False, stream=False, pages=True):
        """request() with the body as a dict (parsed: a host that only sends it should use request())."""
        body, report = self.request(model, budget, tools, format, recall_tool, max_tokens, query, pins, keep_turns,
                                    stub_pinned, stream, pages)
        return json.loads(body), report

    def switch(self, model, budget=None, keep_turns=None, stub_pinned=False):
        """Switch the branch's model: checked to fit, recorded as one event with a new usage segment; a
        no-op when it runs on that model. Raises Budget (nothing written) when the pinned set cannot fit."""
        return self.store.call("switch", branch=self.name, model=model, budget=budget, keep_turns=keep_turns,
                               stub_pinned=stub_pinned or None)

    def record_usage(self, model=None, input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0):
        return self.store.call("record_usage", branch=self.name, model=model, input_tokens=input_tokens,
                               output_tokens=output_tokens, cache_read_tokens=cache_read_tokens,
                               cache_write_tokens=cache_write_tokens)

    def usage(self):
        """{"segments": [...], "totals": [... per model signature], "cost_usd"}."""
        return self.store.call("usage", branch=self.name)

    def set_tools(self, tools):
        self.store.call("tools_set", branch=self.name, tools=tools)

    def ledger(self):
        """Every tool call on the branch, in path order, with its idempotency key, its state ("committed",
        "in_flight", "superseded") and whether it has side effects: {"counts", "calls", "turns"} (docs/ledger.md)."""
        return self.store.call("ledger", branch=self.name)

    def ledger_check(self, name, input=None):
        """Before running a call of tool `name` with `input` (a dict, or the arguments' text): has a call with its
        key committed on the branch? {"key", "args_hash", "effect", "committed"}, and when committed
        "call_node", "result_node" and "result" ("ok" or "error"): then return the recorded result, do not run it."""
        return self.store.call("ledger_check", branch=self.name, name=name, input=input)

    def search(self, query, budget=None, model=None, limit=None):
        """With a budget: the pages of this branch that match, as text within `budget` tokens; else hits."""
        if budget:
            return self.store.call("search", query=query, branch=self.name, budget=budget, model=model)["text"]
        return self.store.call("search", query=query, limit=limit)["hits"]

    def recall_tool(self, input):
        """Answer a call of the cmv_recall tool: (text, is_error); the page is faulted in."""
        r = self.store.call("recall_tool", branch=self.name, input=input)
        return r["text"], r["is_error"]


class ReplyStream:
    """A reply's stream of server-sent events, fed to libcmv chunk by chunk (chunks of any size, bytes or text);
    finish() appends the reply it adds up to. Keeps its Store alive; an unfinished stream is dropped on close."""

    def __init__(self, branch, format, model=None):
        self.branch, self.format, self.model = branch, format, model
        self._store = branch.store
        self._id = self._store.call("stream_open", format=format)["stream"]

    def feed(self, chunk):
        if self._id is None:
            raise Error("the stream is finished")
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        self._store._feed(self._id, bytes(chunk))

    def finish(self):
        """Append the reply to the branch; the same result as Branch.append_response."""
        if self._id is None:
            raise Error("the stream is finished")
        sid, self._id = self._id, None
        return self._store.call("append_response", branch=self.branch.name, stream=sid, model=self.model)

    def close(self):
        """Drop the stream unfinished (nothing is appended); a no-op once finished."""
        sid, self._id = self._id, None
        if sid is not None and self._store._h is not None:
            self._store.call("stream_close", stream=sid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
