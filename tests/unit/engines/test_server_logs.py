"""A server that dies is reported with its own log's last lines, and its log survives the restart that
follows (a numbered log per start). Stand-in: a server of a few lines of Python, no vLLM."""

import os
import signal
import textwrap

from standins import script, stand_in

from pagedbench.engines import vllm_server as srv

LAST_WORDS = """
    for i in range(40):
        print(f"start-up line {i}", flush=True)
    print("EngineCore: out of blocks, aborting (stand-in's last words)", flush=True)
"""


def test_a_crash_is_reported_with_its_log_and_the_restart_keeps_it(tmp_path):
    settings = stand_in(tmp_path / "server-cache_on.log", script(LAST_WORDS))
    first = settings.start()
    try:
        assert first.crashed("load variable at inf req/s") is None  # alive: nothing to report
        os.kill(first.proc.pid, signal.SIGKILL)  # as `kill -9` of the server mid-load
        err = first.crashed("load variable at inf req/s", wait_s=5.0)
    finally:
        first.stop()
    assert err is not None
    text = str(err)
    assert "died during load variable at inf req/s" in text and "exit -9" in text
    assert "stand-in's last words" in text and str(first.log_path) in text
    assert len(text.split("--- last lines of the server log ---\n", 1)[1].splitlines()) == srv.LOG_TAIL_LINES

    second = settings.start()  # the test's replacement server
    try:
        assert second.log_path != first.log_path
        assert "stand-in's last words" in first.log_path.read_text()  # the crashed server's log is still there
    finally:
        second.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server-cache_on.1.log", "server-cache_on.2.log"]


def test_a_stopped_server_leaves_nothing_in_the_temporary_folder(tmp_path):
    """vLLM puts rendezvous files (vllm_dist_*) and ZMQ sockets in the temporary folder: the server gets one of
    its own, gone once it stops."""
    marker = textwrap.dedent("""
        import os, pathlib, tempfile
        pathlib.Path(tempfile.gettempdir(), "vllm_dist_standin").write_text("x")
        pathlib.Path(os.environ["VLLM_RPC_BASE_PATH"], "socket-standin").write_text("x")
    """)

    server = stand_in(tmp_path / "s.log", script(marker)).start()
    tmp = server.tmp_dir
    assert tmp and os.path.exists(os.path.join(tmp, "vllm_dist_standin"))
    server.stop()
    assert not os.path.exists(tmp)
