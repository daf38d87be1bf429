"""`serve --server chalice` under a terminal: Chalice's CLI imports `blessed`, which asks the
terminal about itself and waits up to 5 s per question for replies a pty that nobody reads never
sends; the command must not wait for them."""

from __future__ import annotations

import os
import pty
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from chalicelib.settings import PROJECT_ROOT


def test_chalice_local_under_a_terminal_does_not_wait_for_terminal_replies(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    primary, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECS_", "BLESSED_"))}
    env["RECS_DATA_DIR"] = str(tmp_path / "store")
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "chalicelib", "serve", "--server", "chalice", "--port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdin=terminal, stdout=terminal, stderr=terminal,
        start_new_session=True,
    )  # fmt: skip
    try:
        while time.perf_counter() - started < 60:
            assert server.poll() is None
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        seconds = time.perf_counter() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        os.close(primary)
        os.close(terminal)
    # About 3-4 s on a loaded 2-core machine; blessed's unanswered queries added 10 s.
    assert seconds < 9, f"first answer after {seconds:.1f} s"
