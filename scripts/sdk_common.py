"""What the official-SDK test scripts share: start `localglm serve` on a free port and wait for
it, and report one check per line (exiting 1 on the first failure)."""
import os
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(binary, *args, env=None):
    """Starts `BINARY serve --port P ARGS…`; returns the process and `http://127.0.0.1:P`."""
    port = free_port()
    p = subprocess.Popen(
        [binary, "serve", "--port", str(port), *args], stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p, f"http://127.0.0.1:{port}"
        except OSError:
            if p.poll() is not None:
                raise SystemExit(f"serve exited: {p.stderr.read()}")
            time.sleep(0.2)
    raise SystemExit("serve did not start")


def check(name, cond, detail=""):
    print(f"{'ok' if cond else 'FAIL'} - {name}{': ' + str(detail) if not cond else ''}")
    if not cond:
        raise SystemExit(1)


def stop_all(procs):
    for p in procs:
        p.terminate()
        p.wait(timeout=10)
