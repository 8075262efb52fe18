# SPDX-License-Identifier: MIT
"""What the real-client tests share (docs/clients.md): finding the pinned clients, a temporary
HOME with the clients' folders, the scripted model server, running Claude Code and Codex against
it, and reading what they sent. The tests are run by ctest with CMV (the cmv binary) and
CMV_DATA_DIR (where scripts/setup-clients put the clients) in the environment."""
import json, os, re, shutil, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "support", "model_server.py")
CLAUDE_VERSION = "2.1.328"
CODEX_VERSION = "0.171.0"
failures = []


def check(cond, what):
    """One assertion: a failure is printed and counted; the test goes on to say what else broke."""
    if cond:
        print(f"ok: {what}", flush=True)
    else:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr, flush=True)
    return cond


def finish(name):
    if failures:
        sys.exit(f"{name}: {len(failures)} checks failed")
    print(f"{name}: passed")


def clients_dir():
    data = os.environ.get("CMV_DATA_DIR") or os.path.join(HERE, "..", "..", "data")
    return os.path.join(data, "clients", "bin")


_checked = {}


def client(name):
    """The pinned client's binary, its version checked; a missing one fails the test (never a skip)."""
    if name in _checked:
        return _checked[name]
    path = os.path.join(clients_dir(), name)
    want = {"claude": CLAUDE_VERSION, "codex": CODEX_VERSION}[name]
    try:
        got = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError as e:
        sys.exit(f"FAIL: the pinned {name} {want} is not installed ({path}: {e.strerror}); "
                 "run scripts/setup-clients (or scripts/setup) first")
    if want not in got:
        sys.exit(f"FAIL: {path} --version printed '{got}', not {want}; run scripts/setup-clients")
    print(f"client: {name} {got}", flush=True)
    _checked[name] = path
    return path


def cmv_bin():
    path = os.environ.get("CMV") or (sys.argv[1] if len(sys.argv) > 1 else "")
    if not path or not os.access(path, os.X_OK):
        sys.exit("usage: TEST CMV_BINARY (or $CMV)")
    return os.path.abspath(path)


def encode_project(cwd):
    """Claude Code's folder name for a project: every byte that is not alphanumeric becomes '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


class Sandbox:
    """A temporary HOME with .claude and .codex, a project folder, a store, and a model server."""

    def __init__(self, name):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix=f"cmv-{name}-"))
        self.home = os.path.join(self.root, "home")
        self.claude_dir = os.path.join(self.home, ".claude")
        self.codex_home = os.path.join(self.home, ".codex")
        self.work = os.path.join(self.root, "work")
        self.store = os.path.join(self.root, "store")
        for d in (self.claude_dir, self.codex_home, self.work, self.store):
            os.makedirs(d)
        self.server = None
        self.cmv = cmv_bin()
        self.run_cmv("init", self.store)

    def env(self, **extra):
        e = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "CLAUDE", "CODEX"))}
        e.update(HOME=self.home, CLAUDE_CONFIG_DIR=self.claude_dir, CODEX_HOME=self.codex_home,
                 CMV_DIR=os.path.join(self.store, ".cmv"), DISABLE_TELEMETRY="1",
                 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1")
        if self.server:
            e.update(ANTHROPIC_BASE_URL=f"http://127.0.0.1:{self.port}", ANTHROPIC_API_KEY="sk-test-loopback",
                     OPENAI_API_KEY="sk-test-loopback")
        e.update(extra)
        return e

    def serve(self, turns, done="Done."):
        """(Re)start the model server with a new script; its requests go to a fresh log folder."""
        self.stop()
        n = getattr(self, "_serves", 0) + 1
        self._serves = n
        script = os.path.join(self.root, f"script{n}.json")
        with open(script, "w") as f:
            json.dump({"turns": turns, "done": done}, f)
        self.log = os.path.join(self.root, f"requests{n}")
        self.server = subprocess.Popen([sys.executable, SERVER, "--script", script, "--log-dir", self.log],
                                       stdout=subprocess.PIPE, text=True)
        self.port = int(self.server.stdout.readline())
        with open(os.path.join(self.codex_home, "config.toml"), "w") as f:
            f.write(f'model = "gpt-5"\nopenai_base_url = "http://127.0.0.1:{self.port}/v1"\n')

    def stop(self):
        if self.server:
            self.server.kill()
            self.server.wait()
            self.server = None

    def requests(self, path_prefix=None):
        """The logged requests, in order (POSTs only), optionally those to one path."""
        out = []
        for f in sorted(os.listdir(self.log)) if os.path.isdir(self.log) else []:
            if f.endswith(".json"):
                r = json.load(open(os.path.join(self.log, f)))
                if r["method"] == "POST" and (not path_prefix or r["path"].startswith(path_prefix)):
                    out.append(r)
        return out

    def main_requests(self, path_prefix):
        """The requests of the client's main loop: those that took a turn or asked with tools."""
        return [r for r in self.requests(path_prefix)
                if isinstance(r["body"], dict) and r["body"].get("tools")]

    def run_cmv(self, *args, cwd=None, check_rc=True, **env):
        r = subprocess.run([self.cmv, *args], capture_output=True, text=True, cwd=cwd or self.store,
                           env=self.env(**env), timeout=300)
        if check_rc and r.returncode != 0:
            print(f"cmv {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}", file=sys.stderr)
        return r

    def claude(self, *args, cwd=None, timeout=180):
        r = subprocess.run([client("claude"), *args], capture_output=True, text=True, cwd=cwd or self.work,
                           env=self.env(), stdin=subprocess.DEVNULL, timeout=timeout)
        if r.returncode != 0:
            print(f"claude {' '.join(args)}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}",
                  file=sys.stderr)
        return r

    def codex(self, *args, cwd=None, timeout=180):
        r = subprocess.run([client("codex"), *args], capture_output=True, text=True, cwd=cwd or self.work,
                           env=self.env(), stdin=subprocess.DEVNULL, timeout=timeout)
        if r.returncode != 0:
            print(f"codex {' '.join(args)}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}",
                  file=sys.stderr)
        return r

    def place_claude_session(self, src, session_id=None):
        """A real session placed as Claude Code keeps it for the project folder, its cwd made ours."""
        session_id = session_id or os.path.basename(src).split("__")[-1][:-len(".jsonl")]
        d = os.path.join(self.claude_dir, "projects", encode_project(self.work))
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, session_id + ".jsonl")
        with open(src) as fi, open(dst, "w") as fo:
            for line in fi:
                try:
                    rec = json.loads(line)
                except ValueError:
                    fo.write(line)
                    continue
                if isinstance(rec, dict) and "cwd" in rec:
                    rec["cwd"] = self.work
                if isinstance(rec, dict) and "sessionId" in rec:
                    rec["sessionId"] = session_id
                fo.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        return session_id, dst

    def close(self, keep=False):
        self.stop()
        if not keep and not failures:
            shutil.rmtree(self.root, ignore_errors=True)
        elif failures:
            print(f"kept for inspection: {self.root}", file=sys.stderr)


# ---- what a request carries --------------------------------------------------------------------

def block_text(b):
    """The text of one content block as the model reads it (what the token figures count)."""
    if isinstance(b, str):
        return b
    t = b.get("type")
    if t == "text":
        return b.get("text", "")
    if t == "thinking":
        return b.get("thinking", "")
    if t == "tool_use":
        return b.get("name", "") + " " + json.dumps(b.get("input", {}), ensure_ascii=False)
    if t == "tool_result":
        c = b.get("content", "")
        return c if isinstance(c, str) else "\n".join(block_text(x) for x in c)
    return ""


def anthropic_messages_text(messages):
    parts = []
    for m in messages:
        c = m.get("content", "")
        parts.extend([c] if isinstance(c, str) else [block_text(b) for b in c])
    return "\n".join(parts)


def responses_input_text(items):
    parts = []
    for it in items:
        t = it.get("type")
        if t == "message" or "role" in it and t is None:
            c = it.get("content", "")
            parts.extend([c] if isinstance(c, str) else [x.get("text", "") for x in c if isinstance(x, dict)])
        elif t == "function_call":
            parts.append(it.get("name", "") + " " + it.get("arguments", ""))
        elif t == "function_call_output":
            o = it.get("output", "")
            parts.append(o if isinstance(o, str) else json.dumps(o))
        elif t == "reasoning":
            parts.extend(s.get("text", "") for s in it.get("summary", []))
    return "\n".join(parts)


def o200k(sb, text):
    """Tokens of text in o200k_base, counted by the cmv under test."""
    r = subprocess.run([sb.cmv, "tokens", "--tokenizer", "o200k_base", "--json"], input=text, capture_output=True,
                       text=True, env=sb.env(), timeout=120)
    if r.returncode != 0:
        sys.exit(f"cmv tokens failed: {r.stderr}")
    return json.loads(r.stdout)["tokens"]


def anthropic_problems(messages):
    """What makes a messages array invalid for the Messages API: roles that do not alternate
    (starting with user), a tool_use without its tool_result in the next message, a tool_result
    that answers no tool_use of the message before."""
    problems = []
    for i, m in enumerate(messages):
        want = "user" if i % 2 == 0 else "assistant"
        if m.get("role") != want:
            problems.append(f"message {i} is {m.get('role')}, not {want}")
        content = m.get("content")
        if isinstance(content, list) and not content or content == "":
            problems.append(f"message {i} is empty")
    for i, m in enumerate(messages):
        if m.get("role") != "assistant" or not isinstance(m.get("content"), list):
            continue
        uses = [b["id"] for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]
        nxt = messages[i + 1]["content"] if i + 1 < len(messages) else []
        results = [b.get("tool_use_id") for b in nxt if isinstance(b, dict) and b.get("type") == "tool_result"] \
            if isinstance(nxt, list) else []
        if i + 1 == len(messages) and uses:
            problems.append(f"message {i}: the last message is a tool_use")
        elif set(uses) != set(results):
            problems.append(f"message {i}: tool_use {sorted(set(uses) - set(results))} unanswered, "
                            f"tool_result {sorted(set(results) - set(uses))} answers nothing")
    for i, m in enumerate(messages):
        if m.get("role") == "user" and isinstance(m.get("content"), list) and i > 0:
            prev = messages[i - 1].get("content")
            uses = {b.get("id") for b in prev if isinstance(b, dict) and b.get("type") == "tool_use"} \
                if isinstance(prev, list) else set()
            for b in m["content"]:
                if isinstance(b, dict) and b.get("type") == "tool_result" and b.get("tool_use_id") not in uses:
                    problems.append(f"message {i}: tool_result {b.get('tool_use_id')} answers nothing before it")
    return problems
