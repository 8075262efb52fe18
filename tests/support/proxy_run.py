# SPDX-License-Identifier: MIT
"""What the proxy tests share (stdlib only): their checks, the scripted upstream
(model_server.py) and `cmv proxy` on loopback."""
import os, re, subprocess, sys

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_server.py")
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def launch_upstream(script, log):
    """model_server.py answering as the script (a JSON file) says, each request logged under log: (process, port)."""
    p = subprocess.Popen([sys.executable, SERVER, "--script", script, "--log-dir", log], stdout=subprocess.PIPE,
                         text=True)
    return p, int(p.stdout.readline())


def launch_proxy(cmv, args, **popen):
    """`cmv proxy --listen 127.0.0.1:0 ARGS` (popen: cwd, env, stderr); its port comes from listening_port."""
    return subprocess.Popen([cmv, "proxy", "--listen", "127.0.0.1:0", *args], stdout=subprocess.PIPE, text=True,
                            **popen)


def listening_port(p):
    """The port a proxy from launch_proxy says it listens on (it says so once it does)."""
    return int(re.search(r":(\d+)$", p.stdout.readline().strip()).group(1))
