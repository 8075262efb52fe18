#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the fixture beside it: a Claude Code 2.1.328 session whose two large tool outputs
# were saved to <session id>/tool-results/ and sent as <persisted-output> previews (the shape
# /work/shared/reference/real-clients.md describes and the corpus's 2.1.62 sample shows).
# Deterministic: running it again gives the same bytes.
import json, os

SID = "5c7e2a1b-8d4f-4e6a-9b3c-2f1d0e9a8b7c"
PROJ = "-work-demo"
RECORDED = "/home/dev/.claude/projects/%s/%s/tool-results" % (PROJ, SID)
here = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.join(here, "projects", PROJ)

def log_output():
    lines = []
    for i in range(1, 801):
        status = "FAIL" if i in (137, 512, 733) else "PASS"
        lines.append("%s: tests/unit/test_%03d.c  parse_case_%03d  (%d.%03ds)" % (status, i, i, i % 3, (i * 37) % 1000))
    lines.append("============================================================")
    lines.append("# TOTAL: 800  # PASS: 797  # FAIL: 3")
    return "\n".join(lines) + "\n"

def grep_output():
    lines = []
    for i in range(1, 421):
        lines.append("build/test-suite.log:%d:FAIL: tests/unit/test_%03d.c  expected token %d, got %d" % (i * 7, i % 800 + 1, i, i + 1))
    return "\n".join(lines)

def preview(full, name):
    size = len(full.encode())
    cut = full.encode()[:2000].decode()
    cut = cut[: cut.rfind("\n")]
    return ("<persisted-output>\nOutput too large (%.1fKB). Full output saved to: %s/%s\n\nPreview (first 2KB):\n%s\n...\n</persisted-output>"
            % (size / 1024, RECORDED, name, cut))

base = {"isSidechain": False, "userType": "external", "cwd": "/work/demo", "sessionId": SID,
        "version": "2.1.328", "gitBranch": "main"}
recs = []
def rec(parent, uuid, ts, **kw):
    r = {"parentUuid": parent}
    r.update(base)
    r.update(kw)
    r["uuid"] = uuid
    r["timestamp"] = "2026-12-03T09:00:%02d.000Z" % ts
    recs.append(r)

def asst(parent, uuid, ts, mid, content, stop):
    rec(parent, uuid, ts, type="assistant", message={"model": "claude-opus-5", "id": mid, "type": "message",
        "role": "assistant", "content": content, "stop_reason": stop,
        "usage": {"input_tokens": 12, "output_tokens": 30}}, requestId="req_" + mid[-2:])

log, grep = log_output(), grep_output()
rec(None, "u1", 1, type="user", message={"role": "user", "content": "Run the test suite and tell me what fails."},
    promptId="p1", turnOrigin="user", turnPosition=0)
asst("u1", "m1", 2, "msg_01", [{"type": "tool_use", "id": "toolu_01", "name": "Bash",
     "input": {"command": "make check 2>&1", "description": "Run the test suite"}}], "tool_use")
rec("m1", "r1", 3, type="user", message={"role": "user", "content": [{"tool_use_id": "toolu_01", "type": "tool_result",
    "content": preview(log, "b7k2q9x4m.txt"), "is_error": False}]},
    toolUseResult={"stdout": log, "stderr": "", "interrupted": False, "isImage": False, "noOutputExpected": False,
                   "persistedOutputPath": RECORDED + "/b7k2q9x4m.txt", "persistedOutputSize": len(log.encode())},
    sourceToolAssistantUUID="m1")
asst("r1", "m2", 4, "msg_02", [{"type": "tool_use", "id": "toolu_02", "name": "Grep",
     "input": {"pattern": "FAIL", "path": "build/test-suite.log", "output_mode": "content", "-n": True}}], "tool_use")
rec("m2", "r2", 5, type="user", message={"role": "user", "content": [{"tool_use_id": "toolu_02", "type": "tool_result",
    "content": preview(grep, "toolu_02.txt")}]},
    toolUseResult={"mode": "content", "numFiles": 0, "filenames": [], "content": grep, "numLines": grep.count("\n") + 1},
    sourceToolAssistantUUID="m2")
asst("r2", "m3", 6, "msg_03", [{"type": "tool_use", "id": "toolu_03", "name": "Read",
     "input": {"file_path": "/work/demo/tests/unit/test_137.c", "limit": 3}}], "tool_use")
rec("m3", "r3", 7, type="user", message={"role": "user", "content": [{"tool_use_id": "toolu_03", "type": "tool_result",
    "content": "1\t#include \"parser.h\"\n2\t/* case 137: a sum of two terms */\n3\tint main(void) { return parse(\"1+\") != 0; }\n"}]},
    toolUseResult={"type": "text", "file": {"filePath": "/work/demo/tests/unit/test_137.c", "numLines": 3}},
    sourceToolAssistantUUID="m3")
asst("r3", "m4", 8, "msg_04", [{"type": "text", "text": "Three tests fail (137, 512, 733); all three stop on a `+` with no right-hand term."}], "end_turn")

os.makedirs(os.path.join(out_dir, SID, "tool-results"), exist_ok=True)
with open(os.path.join(out_dir, SID + ".jsonl"), "w") as f:
    for r in recs:
        f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
for name, text in (("b7k2q9x4m.txt", log), ("toolu_02.txt", grep)):
    with open(os.path.join(out_dir, SID, "tool-results", name), "w") as f:
        f.write(text)
