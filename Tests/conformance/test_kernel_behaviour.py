"""Sculpt's behaviour over real sockets, beyond what jupyter_kernel_test checks.

Kernels are started the way notebooks start them (KernelManager + the ``sculpt`` kernelspec
that conftest.py installs into a temporary JUPYTER_PATH). Where jupyter_client would refuse to
send bad input, the tests talk raw pyzmq and build the frames themselves.

Every test that sends something bad ends by checking that the kernel still answers a good
request. "No reply" is checked by order, not by waiting: the kernel reads a socket's messages
in order, so when the reply to a good message sent *after* the bad one comes back first, and
nothing more is waiting once a later execute (queued behind anything the bad message could
have started) has finished, the bad one got no reply. The only timing assertions are the
required latency bounds (interrupt -> reply within 1 s; control and heartbeat within 0.5 s
while a command runs; exit within 3 s after shutdown_reply).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.connect import write_connection_file
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

from conftest import SMALL_LIMIT_BYTES, SMALL_LIMIT_KERNEL_NAME

TIMEOUT = 10  # seconds; generous, only to keep a broken kernel from hanging the suite
DELIM = b"<IDS|MSG>"


# ---------------------------------------------------------------------------------------------
# A kernel under test
# ---------------------------------------------------------------------------------------------


class RunningKernel:
    """One kernel process started through KernelManager, its stderr kept in a log file, with a
    BlockingKernelClient for the well-behaved traffic and raw sockets on request."""

    def __init__(self, log_dir: Path, kernel_name: str = "sculpt"):
        self.log_path = log_dir / f"{kernel_name}-{uuid.uuid4().hex[:8]}.log"
        self._log = open(self.log_path, "wb")
        self.km = KernelManager(kernel_name=kernel_name)
        self.km.start_kernel(stderr=self._log)
        self.kc: BlockingKernelClient = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=30)
        self.context = zmq.Context()
        self.sockets: list[zmq.Socket] = []
        # Every message the client received from the kernel, for the session / msg_id checks.
        self.received: list[dict] = []
        # Every iopub message seen, whoever its parent.
        self.iopub_seen: list[dict] = []
        # Replies that arrived while another one was awaited, by parent msg_id.
        self._pending: dict[str, dict[str, dict]] = {"shell": {}, "control": {}}
        # Per request: how far iopub_seen has been searched for its messages.
        self._iopub_cursor: dict[str, int] = {}

    # --- process ---------------------------------------------------------------------------

    @property
    def process(self) -> subprocess.Popen:
        return self.km.provisioner.process

    @property
    def pid(self) -> int:
        return self.km.provisioner.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        self.context.term()
        self.kc.stop_channels()
        try:
            if self.km.is_alive():
                self.km.shutdown_kernel(now=False)
            else:
                self.km.cleanup_resources()
        finally:
            self._log.close()

    # --- well-behaved traffic --------------------------------------------------------------

    def _keep(self, msg: dict) -> dict:
        self.received.append(msg)
        return msg

    def _reply(self, channel: str, msg_id: str, timeout: float) -> dict:
        """The reply to msg_id on shell or control; replies to other requests are kept for later."""
        pending = self._pending[channel]
        if msg_id in pending:
            return pending.pop(msg_id)
        get = self.kc.get_shell_msg if channel == "shell" else self.kc.get_control_msg
        deadline = time.monotonic() + timeout
        while True:
            msg = self._keep(get(timeout=max(0.01, deadline - time.monotonic())))
            parent = msg["parent_header"].get("msg_id")
            if parent == msg_id:
                return msg
            pending[parent] = msg

    def shell_reply(self, msg_id: str, timeout: float = TIMEOUT) -> dict:
        return self._reply("shell", msg_id, timeout)

    def control_reply(self, msg_id: str, timeout: float = TIMEOUT) -> dict:
        return self._reply("control", msg_id, timeout)

    def next_iopub(self, timeout: float = TIMEOUT) -> dict:
        msg = self._keep(self.kc.get_iopub_msg(timeout=timeout))
        self.iopub_seen.append(msg)
        return msg

    def iopub_until(self, msg_id: str, stop, timeout: float = TIMEOUT) -> list[dict]:
        """iopub messages whose parent is msg_id, up to and including the first one for which
        stop(msg) is true. Messages already read while waiting for another request count too;
        each call continues where the previous call for the same msg_id stopped."""
        deadline = time.monotonic() + timeout
        out = []
        index = self._iopub_cursor.get(msg_id, 0)
        while True:
            if index == len(self.iopub_seen):
                self.next_iopub(timeout=max(0.01, deadline - time.monotonic()))
            msg = self.iopub_seen[index]
            index += 1
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if stop(msg):
                self._iopub_cursor[msg_id] = index
                return out

    def iopub_until_idle(self, msg_id: str, timeout: float = TIMEOUT) -> list[dict]:
        return self.iopub_until(
            msg_id,
            lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle",
            timeout,
        )

    def execute(self, code: str, timeout: float = TIMEOUT, **kwargs) -> tuple[dict, list[dict]]:
        """Runs code; returns the execute_reply and the iopub messages it caused (busy..idle)."""
        kwargs.setdefault("allow_stdin", False)
        msg_id = self.kc.execute(code, **kwargs)
        reply = self.shell_reply(msg_id, timeout)
        outputs = self.iopub_until_idle(msg_id, timeout)
        return reply, outputs

    def send_control(self, msg_type: str, content: dict | None = None) -> dict:
        msg = self.kc.session.msg(msg_type, content or {})
        self.kc.control_channel.send(msg)
        return msg

    def assert_answers(self) -> None:
        """The kernel still works: a fresh execute runs and prints."""
        token = f"still-alive-{uuid.uuid4().hex[:8]}"
        reply, outputs = self.execute(f"echo {token}")
        assert reply["content"]["status"] == "ok", reply["content"]
        streams = [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"]
        assert any(token in text for text in streams), outputs

    def current_seed(self) -> str:
        reply, outputs = self.execute("seed", store_history=False)
        assert reply["content"]["status"] == "ok", reply["content"]
        results = [m for m in outputs if m["msg_type"] == "execute_result"]
        assert len(results) == 1, outputs
        return results[0]["content"]["data"]["text/plain"]

    # --- raw traffic -----------------------------------------------------------------------

    def connection(self) -> dict:
        return self.km.get_connection_info()

    def raw_socket(self, channel: str, kind: int = zmq.DEALER) -> zmq.Socket:
        info = self.connection()
        sock = self.context.socket(kind)
        sock.linger = 0
        if kind == zmq.DEALER:
            sock.identity = f"raw-{channel}-{uuid.uuid4().hex[:8]}".encode()
        sock.connect(f"{info['transport']}://{info['ip']}:{info[channel + '_port']}")
        self.sockets.append(sock)
        return sock

    def raw_session(self) -> Session:
        """A new client session (own session id, so its msg_ids never collide with the
        BlockingKernelClient's) with the kernel's key, for signing raw frames and reading replies."""
        return Session(key=self.km.session.key, signature_scheme=self.km.session.signature_scheme)


def recv_raw(sock: zmq.Socket, session: Session, timeout: float = TIMEOUT) -> dict:
    assert sock.poll(int(timeout * 1000)), "no reply from the kernel"
    frames = sock.recv_multipart()
    _, parts = session.feed_identities(frames)
    return session.deserialize(parts)


def sign(key: bytes, parts: list[bytes]) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.hexdigest().encode()


def serialized(session: Session, msg_type: str, content: dict | None = None) -> tuple[dict, list[bytes]]:
    """A correctly signed message: (msg, [DELIM, sig, header, parent, metadata, content])."""
    msg = session.msg(msg_type, content or {})
    return msg, session.serialize(msg)


@pytest.fixture
def kernel(tmp_path):
    running = RunningKernel(tmp_path)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def shared_kernel(tmp_path_factory):
    """One kernel for the tests that only send it bad input and check it survives."""
    running = RunningKernel(tmp_path_factory.mktemp("shared-kernel"))
    try:
        yield running
    finally:
        running.close()


# ---------------------------------------------------------------------------------------------
# Bad input on the wire: dropped, logged, and the next good message is answered
# ---------------------------------------------------------------------------------------------


def check_dropped_then_answers(k: RunningKernel, bad_frames: list[bytes], bad_id: str | None,
                               channel: str = "shell") -> None:
    """Sends bad_frames, then a good kernel_info_request on the same socket: the first reply
    must be the good one's, nothing on iopub may name the bad message as parent, the kernel
    must log the drop, and an ordinary execute must still work."""
    session = k.raw_session()
    sock = k.raw_socket(channel)
    log_before = k.log().count("dropped")

    sock.send_multipart(bad_frames)
    good, good_frames = serialized(session, "kernel_info_request")
    sock.send_multipart(good_frames)

    reply = recv_raw(sock, session)
    assert reply["msg_type"] == "kernel_info_reply"
    assert reply["parent_header"]["msg_id"] == good["header"]["msg_id"], "the bad message got a reply"
    assert not sock.poll(0), "an extra reply arrived"

    k.iopub_until_idle(good["header"]["msg_id"])
    assert k.log().count("dropped") == log_before + 1, k.log()
    # An execute runs after anything the bad message could have queued on the worker.
    k.assert_answers()
    assert not sock.poll(0), "the bad message got a (late) reply"
    if bad_id is not None:
        assert not [m for m in k.iopub_seen if m["parent_header"].get("msg_id") == bad_id]


def test_bad_signature_is_dropped(shared_kernel):
    k = shared_kernel
    before = k.current_seed()
    msg, frames = serialized(k.raw_session(), "execute_request",
                             {"code": "seed 4242", "silent": False, "store_history": True,
                              "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    signature = frames[1].decode()
    frames[1] = (("0" if signature[0] != "0" else "1") + signature[1:]).encode()
    check_dropped_then_answers(k, frames, msg["header"]["msg_id"])
    assert k.current_seed() == before != "seed = 4242"


def test_uppercase_signature_is_dropped(shared_kernel):
    """jupyter_client compares lowercase hex bytes; the same digest in uppercase is not valid."""
    k = shared_kernel
    msg, frames = serialized(k.raw_session(), "kernel_info_request")
    frames[1] = frames[1].upper()
    check_dropped_then_answers(k, frames, msg["header"]["msg_id"])


def test_missing_signature_is_dropped(shared_kernel):
    k = shared_kernel
    before = k.current_seed()
    msg, frames = serialized(k.raw_session(), "execute_request",
                             {"code": "seed 4343", "silent": False, "store_history": True,
                              "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    frames[1] = b""
    check_dropped_then_answers(k, frames, msg["header"]["msg_id"])
    assert k.current_seed() == before != "seed = 4343"


def test_truncated_multipart_is_dropped(shared_kernel):
    k = shared_kernel
    msg, frames = serialized(k.raw_session(), "kernel_info_request")
    truncated = frames[:5]  # delimiter, signature, header, parent, metadata: no content
    assert truncated[0] == DELIM and len(truncated) - 1 < 5
    check_dropped_then_answers(k, truncated, msg["header"]["msg_id"])


def test_message_without_delimiter_is_dropped(shared_kernel):
    k = shared_kernel
    msg, frames = serialized(k.raw_session(), "kernel_info_request")
    check_dropped_then_answers(k, frames[1:], msg["header"]["msg_id"])


def test_invalid_json_header_is_dropped(shared_kernel):
    k = shared_kernel
    session = k.raw_session()
    header = b'{"msg_id": "' + uuid.uuid4().hex.encode() + b'", "msg_type": "kernel_info_request", '
    parts = [header, b"{}", b"{}", b"{}"]
    frames = [DELIM, sign(session.key, parts)] + parts  # correctly signed: the JSON is what is bad
    check_dropped_then_answers(k, frames, None)


def test_header_without_msg_type_is_dropped(shared_kernel):
    k = shared_kernel
    session = k.raw_session()
    header = session.msg_header("kernel_info_request")
    del header["msg_type"]
    parts = [session.pack(header), b"{}", b"{}", b"{}"]
    frames = [DELIM, sign(session.key, parts)] + parts
    check_dropped_then_answers(k, frames, header["msg_id"])


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_unknown_msg_type_gets_error_reply(shared_kernel, channel):
    k = shared_kernel
    session = k.raw_session()
    sock = k.raw_socket(channel)
    bogus, frames = serialized(session, "bogus_request", {"anything": 1})
    sock.send_multipart(frames)
    reply = recv_raw(sock, session)
    assert reply["msg_type"] == "bogus_reply"
    assert reply["parent_header"]["msg_id"] == bogus["header"]["msg_id"]
    assert reply["content"]["status"] == "error"
    assert isinstance(reply["content"]["ename"], str) and reply["content"]["ename"]
    assert isinstance(reply["content"]["evalue"], str)
    assert isinstance(reply["content"]["traceback"], list)
    states = [m["content"]["execution_state"]
              for m in k.iopub_until_idle(bogus["header"]["msg_id"]) if m["msg_type"] == "status"]
    assert states == ["busy", "idle"]

    good, good_frames = serialized(session, "kernel_info_request")
    sock.send_multipart(good_frames)
    assert recv_raw(sock, session)["parent_header"]["msg_id"] == good["header"]["msg_id"]
    k.assert_answers()


def test_oversized_message_is_dropped(tmp_path):
    k = RunningKernel(tmp_path, kernel_name=SMALL_LIMIT_KERNEL_NAME)
    try:
        session = k.raw_session()
        content = {"code": "echo " + "x" * 100_000, "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
        msg, frames = serialized(session, "execute_request", content)
        assert sum(len(f) for f in frames) > SMALL_LIMIT_BYTES
        check_dropped_then_answers(k, frames, msg["header"]["msg_id"])
        assert str(SMALL_LIMIT_BYTES) in k.log()

        # Below the limit the same kind of message runs: the size was the reason.
        sock = k.raw_socket("shell")
        below = dict(content, code="echo " + "y" * (SMALL_LIMIT_BYTES // 2))
        ok, ok_frames = serialized(session, "execute_request", below)
        sock.send_multipart(ok_frames)
        reply = recv_raw(sock, session)
        assert reply["parent_header"]["msg_id"] == ok["header"]["msg_id"]
        assert reply["content"]["status"] == "ok"
    finally:
        k.close()


def test_heartbeat_echoes_garbage_byte_identical(shared_kernel):
    k = shared_kernel
    hb = k.raw_socket("hb", zmq.REQ)
    payloads = [
        [os.urandom(1)],
        [os.urandom(4096)],
        [os.urandom(17), b"", os.urandom(300), DELIM, b"\x00\xff" * 10],
        [b"\x01" + os.urandom(64 * 1024)],
    ]
    for frames in payloads:
        hb.send_multipart(frames)
        assert hb.poll(TIMEOUT * 1000), "no heartbeat echo"
        assert hb.recv_multipart() == frames
    k.assert_answers()


@pytest.mark.parametrize("topic", [b"", b"kernel."], ids=["all-topics", "kernel-prefix"])
def test_iopub_welcome_names_the_subscription(shared_kernel, topic):
    """JEP 65: a new iopub subscriber gets an iopub_welcome whose content.subscription is the
    topic it subscribed with (ipykernel 7.4 also uses that topic as the routing frame)."""
    k = shared_kernel
    session = k.raw_session()
    sub = k.raw_socket("iopub", zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, topic)
    deadline = time.monotonic() + TIMEOUT
    welcome = None
    while welcome is None and time.monotonic() < deadline:
        if not sub.poll(int(max(0.01, deadline - time.monotonic()) * 1000)):
            break
        msg = recv_raw(sub, session)
        if msg["msg_type"] == "iopub_welcome":
            welcome = msg
    assert welcome is not None, "no iopub_welcome"
    assert welcome["parent_header"] == {}
    assert welcome["content"]["subscription"] == topic.decode()
    k.assert_answers()


def test_iopub_welcome_comes_before_anything_else_while_iopub_is_busy(shared_kernel):
    """JEP 65 (and jupyter_kernel_test) expect the welcome to be a new subscriber's first
    message. While another client keeps iopub busy (kernel_info requests, each publishing busy
    and idle), every new subscriber must still see its welcome first, never a status that the
    kernel sent in the moment between letting it in and welcoming it."""
    k = shared_kernel
    session = k.raw_session()
    shell = k.raw_socket("shell")
    stop = threading.Event()

    def keep_iopub_busy() -> None:
        while not stop.is_set():
            _, frames = serialized(session, "kernel_info_request")
            shell.send_multipart(frames)
            if shell.poll(1000):
                shell.recv_multipart()

    flood = threading.Thread(target=keep_iopub_busy)
    flood.start()
    try:
        firsts = []
        for _ in range(25):
            sub = k.raw_socket("iopub", zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            firsts.append(recv_raw(sub, session)["msg_type"])
            sub.close()
    finally:
        stop.set()
        flood.join(timeout=TIMEOUT)
    assert firsts == ["iopub_welcome"] * len(firsts), firsts
    k.assert_answers()


# ---------------------------------------------------------------------------------------------
# Connection files
# ---------------------------------------------------------------------------------------------


def run_binary(binary: Path, connection_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), "--connection-file", str(connection_file)],
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_missing_connection_file(sculpt_binary, tmp_path):
    missing = tmp_path / "no-such-connection-file.json"
    done = run_binary(sculpt_binary, missing)
    assert done.returncode != 0
    assert str(missing) in done.stderr, done.stderr


@pytest.mark.parametrize("text", [
    "{this is not json",
    json.dumps({"transport": "tcp", "ip": "127.0.0.1"}),
    json.dumps({"transport": "tcp", "ip": "127.0.0.1", "shell_port": "many", "iopub_port": 1,
                "stdin_port": 2, "control_port": 3, "hb_port": 4,
                "signature_scheme": "hmac-sha256", "key": "k"}),
    "",
], ids=["not-json", "missing-keys", "port-not-a-number", "empty"])
def test_malformed_connection_file(sculpt_binary, tmp_path, text):
    path = tmp_path / "malformed-connection.json"
    path.write_text(text)
    done = run_binary(sculpt_binary, path)
    assert done.returncode != 0
    assert str(path) in done.stderr, done.stderr


def test_valid_connection_file_runs_the_kernel(sculpt_binary, tmp_path):
    """The same direct invocation with a good file answers kernel_info and shuts down cleanly
    (the control case for the two tests above)."""
    path, _ = write_connection_file(str(tmp_path / "good-connection.json"), ip="127.0.0.1",
                                    key=uuid.uuid4().hex.encode())
    proc = subprocess.Popen([str(sculpt_binary), "--connection-file", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kc = BlockingKernelClient(connection_file=path)
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        reply = kc.execute("seed 5", reply=True, timeout=TIMEOUT)
        assert reply["content"]["status"] == "ok"
        kc.shutdown()
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        kc.stop_channels()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


# ---------------------------------------------------------------------------------------------
# Interrupts and liveness while a command runs
# ---------------------------------------------------------------------------------------------


def start_sleep(k: RunningKernel, seconds: float) -> tuple[str, list[dict]]:
    """Starts `sleep N` and returns once its execute_input has been published."""
    msg_id = k.kc.execute(f"sleep {seconds}", allow_stdin=False)
    outputs = k.iopub_until(msg_id, lambda m: m["msg_type"] == "execute_input")
    return msg_id, outputs


def finish_interrupted(k: RunningKernel, msg_id: str, interrupted_at: float, outputs: list[dict]) -> None:
    reply = k.shell_reply(msg_id, timeout=TIMEOUT)
    elapsed = time.monotonic() - interrupted_at
    assert elapsed < 1.0, f"execute_reply came {elapsed:.3f} s after the interrupt"
    assert reply["content"]["status"] == "error", reply["content"]
    assert reply["content"]["ename"] == "Interrupted"

    outputs = outputs + k.iopub_until_idle(msg_id)
    shown = [m for m in outputs if m["msg_type"] not in ("status", "execute_input")]
    assert [m["msg_type"] for m in shown] == ["error"], shown
    assert shown[0]["content"]["ename"] == "Interrupted"


def test_interrupt_request_stops_sleep_and_keeps_state(kernel):
    k = kernel
    reply, _ = k.execute("seed 42")
    assert reply["content"]["status"] == "ok"

    msg_id, outputs = start_sleep(k, 30)
    interrupted_at = time.monotonic()
    interrupt = k.send_control("interrupt_request")
    ireply = k.control_reply(interrupt["header"]["msg_id"])
    assert ireply["msg_type"] == "interrupt_reply"
    assert ireply["content"]["status"] == "ok"
    finish_interrupted(k, msg_id, interrupted_at, outputs)

    assert k.current_seed() == "seed = 42"
    k.assert_answers()


def test_sigint_interrupts_and_kernel_survives(kernel):
    k = kernel
    k.execute("seed 43")
    msg_id, outputs = start_sleep(k, 30)
    interrupted_at = time.monotonic()
    os.kill(k.pid, signal.SIGINT)
    finish_interrupted(k, msg_id, interrupted_at, outputs)

    assert k.process.poll() is None, "SIGINT killed the kernel"
    assert k.km.is_alive()
    assert k.current_seed() == "seed = 43"
    k.assert_answers()


def test_control_and_heartbeat_stay_live_while_a_command_runs(kernel):
    k = kernel
    hb = k.raw_socket("hb", zmq.REQ)
    msg_id, _ = start_sleep(k, 3)

    asked = time.monotonic()
    info = k.send_control("kernel_info_request")
    reply = k.control_reply(info["header"]["msg_id"], timeout=TIMEOUT)
    control_latency = time.monotonic() - asked
    assert reply["msg_type"] == "kernel_info_reply"
    assert not k.kc.shell_channel.msg_ready(), "the command had already finished: nothing was tested"

    asked = time.monotonic()
    hb.send(b"ping")
    assert hb.poll(TIMEOUT * 1000)
    assert hb.recv() == b"ping"
    heartbeat_latency = time.monotonic() - asked
    assert not k.kc.shell_channel.msg_ready(), "the command had already finished: nothing was tested"

    assert control_latency < 0.5, f"kernel_info on control took {control_latency:.3f} s"
    assert heartbeat_latency < 0.5, f"heartbeat took {heartbeat_latency:.3f} s"

    done = k.shell_reply(msg_id, timeout=TIMEOUT)
    assert done["content"]["status"] == "ok"
    k.iopub_until_idle(msg_id)
    k.assert_answers()


# ---------------------------------------------------------------------------------------------
# execute_request rules
# ---------------------------------------------------------------------------------------------


def of_type(outputs: list[dict], msg_type: str) -> list[dict]:
    return [m for m in outputs if m["msg_type"] == msg_type]


def test_execution_count_rules(kernel):
    k = kernel
    first, outputs = k.execute("seed 1")
    n = first["content"]["execution_count"]
    assert n == 1, "a new kernel's first stored execute is 1"
    assert of_type(outputs, "execute_input")[0]["content"]["execution_count"] == n
    assert of_type(outputs, "execute_result")[0]["content"]["execution_count"] == n

    second, outputs = k.execute("seed 2")
    assert second["content"]["execution_count"] == n + 1
    assert of_type(outputs, "execute_result")[0]["content"]["execution_count"] == n + 1

    silent, outputs = k.execute("seed 3", silent=True)
    assert silent["content"]["status"] == "ok"
    assert silent["content"]["execution_count"] == n + 1
    assert not of_type(outputs, "execute_input") and not of_type(outputs, "execute_result"), outputs

    unstored, outputs = k.execute("seed 4", store_history=False)
    assert unstored["content"]["status"] == "ok"
    assert unstored["content"]["execution_count"] == n + 1

    failed, outputs = k.execute("bogus")
    assert failed["content"]["status"] == "error"
    assert failed["content"]["execution_count"] == n + 2
    assert of_type(outputs, "execute_input")[0]["content"]["execution_count"] == n + 2

    after, _ = k.execute("seed 5")
    assert after["content"]["execution_count"] == n + 3

    # The way frontends read the counter: empty code, silent.
    probe, outputs = k.execute("", silent=True)
    assert probe["content"]["execution_count"] == n + 3
    assert not of_type(outputs, "execute_input")
    k.assert_answers()


def send_failing_triple(k: RunningKernel) -> list[dict]:
    """Sends `bogus`, `seed 5`, `seed 6` back to back without waiting; returns their replies."""
    ids = [k.kc.execute(code, stop_on_error=True, allow_stdin=False)
           for code in ("bogus", "seed 5", "seed 6")]
    replies = [k.shell_reply(msg_id) for msg_id in ids]
    for msg_id in ids:
        k.iopub_until_idle(msg_id)
    assert replies[0]["content"]["status"] == "error"
    assert replies[0]["content"]["ename"] == "UnknownCommand"
    return replies


def test_stop_on_error_aborts_executes_queued_behind_the_failure(kernel):
    """The three executes are queued behind a running `sleep 2` (sending them takes a few
    milliseconds, even on a busy machine), so this checks the abort itself, whatever the arrival
    timing."""
    k = kernel
    k.execute("seed 4")
    blocker, _ = start_sleep(k, 2)
    replies = send_failing_triple(k)
    assert k.shell_reply(blocker)["content"]["status"] == "ok"
    assert [r["content"]["status"] for r in replies] == ["error", "aborted", "aborted"]
    assert k.current_seed() == "seed = 4"
    k.assert_answers()


def test_stop_on_error_aborts_executes_sent_back_to_back(kernel):
    """A client that sends three executes without waiting must see the 2nd and 3rd aborted,
    whether or not they reached the kernel before the 1st failed. Repeated, because one round
    can pass by luck."""
    k = kernel
    rounds = 25
    ran = []
    for round_number in range(rounds):
        k.execute("seed 4")
        statuses = [r["content"]["status"] for r in send_failing_triple(k)]
        seed = k.current_seed()
        if statuses[1:] != ["aborted", "aborted"] or seed != "seed = 4":
            ran.append((round_number, statuses, seed))
    assert not ran, (f"in {len(ran)} of {rounds} rounds a queued execute ran after the failure "
                     f"(round, statuses, seed after): {ran}")
    k.assert_answers()


def test_reset_asks_on_stdin_when_allowed(kernel):
    k = kernel
    k.execute("seed 9")
    msg_id = k.kc.execute("reset", allow_stdin=True)
    request = k._keep(k.kc.get_stdin_msg(timeout=TIMEOUT))
    assert request["msg_type"] == "input_request"
    assert request["parent_header"]["msg_id"] == msg_id
    assert request["content"]["prompt"].startswith("Reset the session")
    assert request["content"]["password"] is False
    k.kc.input("y")

    reply = k.shell_reply(msg_id)
    assert reply["content"]["status"] == "ok", reply["content"]
    outputs = k.iopub_until_idle(msg_id)
    stdout = "".join(m["content"]["text"] for m in of_type(outputs, "stream")
                     if m["content"]["name"] == "stdout")
    assert "session reset" in stdout
    assert k.current_seed() != "seed = 9"
    k.assert_answers()


def test_reset_without_stdin_is_an_error_and_asks_nothing(kernel):
    k = kernel
    k.execute("seed 9")
    reply, outputs = k.execute("reset", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "CommandFailed"
    assert [m["content"]["ename"] for m in of_type(outputs, "error")] == ["CommandFailed"]
    # The input_request would have been sent before the reply; none is waiting.
    assert not k.kc.stdin_channel.msg_ready()
    assert k.current_seed() == "seed = 9"
    k.assert_answers()


def test_comm_open_to_unknown_target_is_closed(kernel):
    k = kernel
    comm_id = uuid.uuid4().hex
    opened = k.kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": "sculpt.no-such-target",
                                            "data": {}})
    k.kc.shell_channel.send(opened)
    outputs = k.iopub_until_idle(opened["header"]["msg_id"])
    closes = of_type(outputs, "comm_close")
    assert [m["content"]["comm_id"] for m in closes] == [comm_id], outputs

    for target in (None, "jupyter.widget"):
        msg_id = k.kc.comm_info(target_name=target)
        reply = k.shell_reply(msg_id)
        assert reply["content"]["status"] == "ok"
        assert reply["content"]["comms"] == {}
    k.assert_answers()


@pytest.mark.parametrize("restart", [False, True])
def test_shutdown_on_control_replies_and_exits(kernel, restart):
    k = kernel
    request = k.send_control("shutdown_request", {"restart": restart})
    reply = k.control_reply(request["header"]["msg_id"])
    replied_at = time.monotonic()
    assert reply["msg_type"] == "shutdown_reply"
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["restart"] is restart
    code = k.process.wait(timeout=TIMEOUT)
    exited_after = time.monotonic() - replied_at
    assert exited_after < 3.0, f"the kernel took {exited_after:.2f} s to exit"
    assert code == 0


# ---------------------------------------------------------------------------------------------
# Header identity
# ---------------------------------------------------------------------------------------------


def exercise(k: RunningKernel) -> list[dict]:
    """Some traffic on shell, control and iopub; returns every message received from k."""
    k.execute("seed 8")
    k.execute("bogus")
    k.shell_reply(k.kc.kernel_info())
    k.control_reply(k.send_control("kernel_info_request")["header"]["msg_id"])
    return list(k.received)


def test_session_ids_and_msg_ids(tmp_path):
    first = RunningKernel(tmp_path)
    second = RunningKernel(tmp_path)
    try:
        messages = {"first": exercise(first), "second": exercise(second)}
        sessions = {name: {m["header"]["session"] for m in msgs} for name, msgs in messages.items()}
        assert len(sessions["first"]) == 1, sessions["first"]
        assert len(sessions["second"]) == 1, sessions["second"]
        assert sessions["first"] != sessions["second"]

        channels = {m["msg_type"] for m in messages["first"]}
        assert {"execute_reply", "kernel_info_reply", "status", "execute_result", "error"} <= channels

        ids = [m["header"]["msg_id"] for msgs in messages.values() for m in msgs]
        assert len(ids) == len(set(ids)), "a msg_id was reused"

        # Replies and outputs carry the request's header as parent, session included.
        for name, k in (("first", first), ("second", second)):
            for m in messages[name]:
                if m["msg_type"] != "iopub_welcome":  # the one message with no parent
                    assert m["parent_header"].get("session") == k.kc.session.session, m
    finally:
        first.close()
        second.close()
