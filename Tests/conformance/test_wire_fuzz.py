"""A bounded fuzz of Sculpt's wire protocol, and a replay test, over real ZeroMQ sockets.

The kernel is started as the behaviour tests start it (``RunningKernel``: KernelManager and the
``sculpt`` kernelspec from conftest.py); the fuzz talks raw pyzmq so it can send what
jupyter_client never would.

Every fuzz message gets an expectation from a reference decoder (``accepted_header``):

* DROP   -- jupyter_client's Session, or the kernel's documented wire rules, refuse it
            (delimiter, frame count, HMAC over the exact bytes, a signature already accepted
            once, strict UTF-8 JSON objects, a header with string msg_type and msg_id): no reply,
            and nothing on iopub names it;
* REPLY  -- a valid request on shell or control: one reply, on the socket it came from;
* QUIET  -- valid but answered by no reply (comm messages, non-request types, anything on stdin);
* ANY    -- valid JSON whose fate the protocol leaves open (huge numbers, lone surrogates, deep
            nesting): at most one reply.

Every message accepted on shell or control also gets exactly one iopub ``busy``.

Forged executes (wrong key, no signature, another message's signature, ...) print a canary
token; the canary must never appear in anything the kernel sends. Every CHECK_EVERY messages
the heartbeat must echo and a signed ``echo alive-N`` must run. "No reply" is checked by order,
as in test_kernel_behaviour.py: a socket's messages are handled in order, so once the reply to
a later good message has come back on it, anything the bad ones caused has come back too.

SCULPT_FUZZ_SEED=<n> replays the same message sequence (the seed is printed, and named in every
failure); SCULPT_FUZZ_COUNT overrides the number of messages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import time
import uuid
from dataclasses import dataclass

import zmq

from test_kernel_behaviour import DELIM, RunningKernel, kernel  # noqa: F401  (fixture)

COUNT = int(os.environ.get("SCULPT_FUZZ_COUNT", "3000"))
CHECK_EVERY = 200     # messages between liveness checks
WAIT = 30.0           # seconds for any one expected answer: generous, only a hang fails it
FUZZ_BUDGET = 30.0    # seconds of sending at most (3000 take 1-3 s); past it the fuzz stops early
HUGE = 16 << 20       # a "huge" frame: well under the kernel's default limit of 64 MiB
CANARY = b"CANARY"

DROP, REPLY, QUIET, ANY = "drop", "reply", "quiet", "any"

# Types the kernel handles on shell; each request among them gets one reply (comm messages none).
KNOWN_REQUESTS = ["kernel_info_request", "complete_request", "inspect_request",
                  "is_complete_request", "history_request", "comm_info_request", "execute_request"]
COMM_TYPES = ["comm_open", "comm_msg", "comm_close"]

# JSON values of the wrong type or size for any field (all valid JSON, no NaN).
WEIRD = [-1, 0, -(2**63), 2**63 - 1, 2**64, 10**30, 1e300, -1e-300, 0.5, True, False, None,
         "", "3", "\x00\x01\x1f\x7f", "e\u0301 \u00e9 \U0001f642 \u202e", "*" * 300 + "?",
         [], {}, [1, [2, [3, [4]]]], {"a": {"b": None}}, "x" * 10_000, ["\U0001f642"] * 50]


def pack(obj, ascii_only: bool = True) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=ascii_only).encode()


def sign(key: bytes, parts: list[bytes], digest=hashlib.sha256) -> bytes:
    mac = hmac.new(key, digestmod=digest)
    for part in parts:
        mac.update(part)
    return mac.hexdigest().encode()


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def accepted_header(frames: list[bytes], key: bytes) -> dict | None:
    """The header of a message the kernel must accept, or None if it must drop it: the reference
    for every expectation below (jupyter_client's Session.deserialize, plus the kernel's rule that
    each JSON part is a strict UTF-8 object and the header names msg_type and msg_id as strings)."""
    if DELIM not in frames:
        return None
    rest = frames[frames.index(DELIM) + 1:]
    if len(rest) < 5 or not hmac.compare_digest(rest[0], sign(key, rest[1:5])):
        return None
    try:
        parts = [json.loads(p.decode("utf-8"), parse_constant=_no_constants) for p in rest[1:5]]
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not all(isinstance(p, dict) for p in parts):
        return None
    header = parts[0]
    if not (isinstance(header.get("msg_type"), str) and isinstance(header.get("msg_id"), str)):
        return None
    return header


def parse_reply(frames: list[bytes], key: bytes) -> dict:
    """A message from the kernel; it must be correctly signed, like everything it sends."""
    rest = frames[frames.index(DELIM) + 1:]
    assert hmac.compare_digest(rest[0], sign(key, rest[1:5])), f"badly signed message from the kernel: {frames[:6]}"
    header, parent, _, content = (json.loads(p) for p in rest[1:5])
    return {"msg_type": header["msg_type"], "parent_id": parent.get("msg_id"), "content": content}


@dataclass
class Sent:
    """Everything sent under one msg_id (more than one send when replayed), and what is due."""
    kinds: list[str]                # what was built, e.g. "signature/uppercase", per send
    channels: set[str]
    sends: int = 0
    replies: int | None = 0         # exact number of replies due; None: at most one per send
    busy: int | None = 0            # exact number of iopub busy statuses due; None: open


class Wiretap:
    """Raw DEALER sockets on the kernel, an iopub SUB, and a heartbeat REQ; records every message
    the kernel sends back, checks each for the canary, and waits by polling (no fixed sleeps)."""

    def __init__(self, k: RunningKernel, channels: list[str]):
        self.k, self.key = k, k.km.session.key
        self.sockets = {name: k.raw_socket(name.rstrip("0123456789")) for name in channels}
        self.received: dict[str, list[dict]] = {name: [] for name in channels}
        self.iopub: list[dict] = []
        self.hb = k.raw_socket("hb", zmq.REQ)
        sub = k.raw_socket("iopub", zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 0)  # keep everything: outputs are counted, not sampled
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sockets["iopub"] = sub
        self.poller = zmq.Poller()
        for sock in self.sockets.values():
            self.poller.register(sock, zmq.POLLIN)
        # Our subscription is live once its iopub_welcome arrives; nothing is missed after that.
        self.wait(lambda: any(m["msg_type"] == "iopub_welcome" for m in self.iopub), "iopub_welcome")

    def pump(self, timeout: float = 0.0) -> None:
        for sock, _ in self.poller.poll(int(timeout * 1000)):
            name = next(n for n, s in self.sockets.items() if s is sock)
            while sock.poll(0):
                frames = sock.recv_multipart()
                assert not any(CANARY in f for f in frames), f"a forged execute ran or was answered: {frames}"
                (self.iopub if name == "iopub" else self.received[name]).append(parse_reply(frames, self.key))

    def wait(self, done, what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            assert left > 0, f"waited {timeout} s for {what}"
            assert self.k.process.poll() is None, f"the kernel died (exit {self.k.process.poll()}) waiting for {what}"
            self.pump(min(left, 1.0))

    def replies(self, channel: str, msg_id: str) -> list[dict]:
        return [m for m in self.received[channel] if m["parent_id"] == msg_id]

    def outputs(self, msg_id: str) -> list[dict]:
        return [m for m in self.iopub if m["parent_id"] == msg_id]

    def idle(self, msg_id: str) -> bool:
        return any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                   for m in self.outputs(msg_id))

    def request(self, channel: str, frames: list[bytes], msg_id: str) -> dict:
        """Sends a good request and returns its reply; the kernel has then handled (and answered)
        everything sent before it on that socket."""
        self.sockets[channel].send_multipart(frames)
        self.wait(lambda: self.replies(channel, msg_id), f"the reply to {msg_id} on {channel}")
        return self.replies(channel, msg_id)[0]

    def heartbeat(self, payload: bytes) -> None:
        self.hb.send(payload)
        self.wait(lambda: self.hb.poll(0), "the heartbeat echo")
        assert self.hb.recv() == payload


def execute_content(code) -> dict:
    return {"code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True}


# ---------------------------------------------------------------------------------------------
# The fuzz
# ---------------------------------------------------------------------------------------------


class Fuzzer:
    """Builds the malformed messages from one seeded RNG and tracks what each must cause."""

    def __init__(self, key: bytes, seed: int):
        self.key, self.rng = key, random.Random(seed)
        self.session = self.uid()
        self.sent: dict[str, Sent] = {}
        self.valid_signatures: set[bytes] = set()
        # Valid messages to send again: only those a checkpoint has shown handled (sockets are not
        # ordered among themselves, so an unconfirmed original could arrive after its copy).
        self.replayable: list[list[bytes]] = []
        self.unconfirmed: list[list[bytes]] = []
        self.drops = 0
        self.huge_left = 4  # few: each costs tens of megabytes of copying and hashing
        self.other_signature = sign(key, [b"{}"] * 4)  # a real signature of some other message

    def uid(self) -> str:
        return "%032x" % self.rng.getrandbits(128)

    def parts(self, msg_type, content, msg_id: str | None = None, ascii_only: bool = True) -> list[bytes]:
        header = {"msg_id": msg_id or self.uid(), "msg_type": msg_type, "session": self.session,
                  "username": "fuzz", "date": "2026-01-01T00:00:00.000000Z", "version": "5.4"}
        return [pack(header, ascii_only), b"{}", b"{}", pack(content, ascii_only)]

    def signed(self, parts: list[bytes]) -> list[bytes]:
        return [DELIM, sign(self.key, parts)] + parts

    def good(self, msg_type: str, content: dict) -> tuple[str, list[bytes]]:
        msg_id = self.uid()
        return msg_id, self.signed(self.parts(msg_type, content, msg_id))

    def record(self, channel: str, kind: str, frames: list[bytes], expect: str | None = None) -> None:
        """Decides what frames must cause: DROP unless the reference accepts them."""
        header = accepted_header(frames, self.key)
        msg_id = header["msg_id"] if header else self.msg_id_in(frames)
        signature = frames[frames.index(DELIM) + 1] if header else None
        if expect is None:
            if header is None:
                expect = DROP
            elif signature in self.valid_signatures:
                expect = DROP  # a replay: refused, as Session refuses a signature it has seen
            elif channel == "stdin" or not header["msg_type"].endswith("_request"):
                expect = QUIET
            else:
                expect = REPLY
        if expect in (REPLY, QUIET):
            self.valid_signatures.add(signature)
            if channel != "stdin" and sum(map(len, frames)) < 1 << 20:  # stdin has no checkpoint
                self.unconfirmed.append(frames)
        self.drops += expect == DROP
        if msg_id is None:
            return
        record = self.sent.setdefault(msg_id, Sent([], set()))
        record.kinds.append(kind)
        record.channels.add(channel)
        record.sends += 1
        if expect == ANY:
            record.replies = record.busy = None
        elif record.replies is not None:
            record.replies += expect == REPLY
            record.busy += expect != DROP and channel != "stdin"

    def confirmed(self) -> None:
        """A checkpoint has been answered on shell and control: all sent there before is handled."""
        self.replayable = (self.replayable + self.unconfirmed)[-64:]
        self.unconfirmed = []

    @staticmethod
    def msg_id_in(frames: list[bytes]) -> str | None:
        """The msg_id of a message the kernel must drop, if its header still names one."""
        for frame in frames:
            try:
                value = json.loads(frame)
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if isinstance(value, dict) and isinstance(value.get("msg_id"), str):
                return value["msg_id"]
        return None

    # --- the generators: each returns (kind, frames[, expectation]) ------------------------

    def structure(self):
        rng = self.rng
        frames = self.signed(self.parts("kernel_info_request", {}))
        case = rng.choice(["no-delimiter", "too-few", "delimiter-only", "one-empty", "many-empty",
                           "two-delimiters", "delimiter-variant", "truncated-frame"])
        if case == "no-delimiter":
            frames = frames[1:]
        elif case == "too-few":
            frames = frames[:rng.randrange(1, 6)]
        elif case == "delimiter-only":
            frames = [DELIM]
        elif case == "one-empty":
            frames = [b""]
        elif case == "many-empty":
            frames = [DELIM] + [b""] * rng.randrange(5, 300)
        elif case == "two-delimiters":
            frames = [DELIM] + frames
        elif case == "delimiter-variant":
            frames = [rng.choice([b"<IDS|MSG> ", b"<ids|msg>", b"<IDS|MSG", b"\x00<IDS|MSG>"])] + frames[1:]
        else:
            index = rng.randrange(2, 6)
            frames[index] = frames[index][:rng.randrange(len(frames[index]))]
        return f"structure/{case}", frames

    def signature(self):
        rng = self.rng
        parts = self.parts(rng.choice(KNOWN_REQUESTS[:5]), {"code": "seed", "cursor_pos": 4})
        true = sign(self.key, parts)
        case = rng.choice(["random-hex", "wrong-key", "empty", "uppercase", "truncated", "extended",
                           "other-message", "sha1", "sha512", "not-ascii", "whitespace",
                           "parts-reversed", "key-prefix"])
        bad = {
            "random-hex": lambda: b"%064x" % rng.getrandbits(256),
            "wrong-key": lambda: sign(uuid.UUID(int=rng.getrandbits(128)).hex.encode(), parts),
            "empty": lambda: b"",
            "uppercase": lambda: true.upper(),
            "truncated": lambda: true[:rng.randrange(len(true))],
            "extended": lambda: true + b"0",
            "other-message": lambda: self.other_signature,
            "sha1": lambda: sign(self.key, parts, hashlib.sha1),
            "sha512": lambda: sign(self.key, parts, hashlib.sha512),
            "not-ascii": lambda: bytes(rng.getrandbits(8) for _ in range(64)),
            "whitespace": lambda: true + b"\n",
            "parts-reversed": lambda: sign(self.key, parts[::-1]),
            "key-prefix": lambda: sign(self.key[:-1], parts),
        }[case]()
        return f"signature/{case}", [DELIM, bad] + parts

    def bad_json(self):
        """Correctly signed, so the kernel gets past the HMAC to the JSON itself."""
        rng = self.rng
        msg_id = self.uid()
        header = json.loads(self.parts("kernel_info_request", {}, msg_id)[0])
        parts = [pack(header), b"{}", b"{}", b"{}"]
        case = rng.choice(["invalid-utf8", "overlong-utf8", "not-json", "empty", "trailing-garbage",
                           "nan", "not-an-object", "msg-type-not-string", "msg-id-not-string",
                           "no-msg-type", "no-msg-id"])
        index = rng.randrange(4)

        def with_field(raw: bytes) -> bytes:  # the part with one more member, "x": raw
            return parts[index][:-1] + (b"," if parts[index] != b"{}" else b"") + b'"x":' + raw + b"}"

        if case == "invalid-utf8":
            parts[index] = with_field(b'"\xff\xfe"')
        elif case == "overlong-utf8":  # an overlong "/" and an encoded surrogate
            parts[index] = with_field(b'"\xc0\xaf\xed\xa0\x80"')
        elif case == "not-json":
            parts[index] = rng.choice([b"{'a': 1}", b"{", b"}", b"[1,", b'{"a":}', b"undefined", b"\x00"])
        elif case == "empty":
            parts[index] = b""
        elif case == "trailing-garbage":
            parts[index] += rng.choice([b"x", b"{}", b"\x00", b","])
        elif case == "nan":
            parts[index] = with_field(rng.choice([b"NaN", b"-Infinity"]))
        elif case == "not-an-object":
            parts[index] = pack(rng.choice([[header], "header", 5, None, True, [], [1, 2]]))
        else:
            field, bad = {"msg-type-not-string": ("msg_type", rng.choice([5, None, ["kernel_info_request"], {}])),
                          "msg-id-not-string": ("msg_id", rng.choice([5, None, [msg_id], {"id": msg_id}])),
                          "no-msg-type": ("msg_type", ...), "no-msg-id": ("msg_id", ...)}[case]
            if bad is ...:
                del header[field]
            else:
                header[field] = bad
            parts[0] = pack(header)
        return f"json/{case}", self.signed(parts)

    def open_json(self):
        """Valid signature and syntax, but values a parser may refuse: at most one reply."""
        rng = self.rng
        parts = self.parts("kernel_info_request", {})
        # Foundation's decoder refuses nesting past 512. Depths 128-511 are left out: they are
        # accepted but cost up to a second each to decode (quadratic), which would slow every run.
        depth = rng.choice([8, 64, 512, 513, 4096, 100_000])
        raw = rng.choice([b'{"n":1e400}', b'{"n":-1e400}', b'{"n":' + b"9" * 400 + b"}", b'{"n":1e-400}',
                          b'{"n":-0}', b'{"s":"\\ud800"}', b'{"s":"\\udc00\\ud800"}', b'{"a":1,"a":[]}',
                          b'{"deep":' + b"[" * depth + b"]" * depth + b"}",
                          b'{"deep":' + b'{"a":' * depth + b"0" + b"}" * depth + b"}"])
        parts[3] = raw
        return "open-json", self.signed(parts), ANY

    def unknown_type(self):
        rng = self.rng
        name = rng.choice([f"fuzz_{self.uid()[:8]}_request", f"fuzz_{self.uid()[:8]}", "execute_reply",
                           "status", "_request", "x" * 2000 + "_request", "\u00e9\U0001f642_request"])
        content = {rng.choice(["a", "code", "\u00e9"]): rng.choice(WEIRD) for _ in range(rng.randrange(3))}
        return "unknown-type", self.signed(self.parts(name, content, ascii_only=rng.random() < 0.5))

    def weird_content(self):
        """Known types, valid JSON, fields of the wrong type or size; an execute runs no code
        (code is never a string), so it cannot fail and abort the alive checks queued behind it."""
        rng = self.rng
        msg_type = rng.choice(KNOWN_REQUESTS + COMM_TYPES)
        keys = ["code", "cursor_pos", "detail_level", "hist_access_type", "n", "start", "stop",
                "session", "pattern", "unique", "output", "raw", "silent", "store_history",
                "allow_stdin", "stop_on_error", "user_expressions", "comm_id", "target_name", "data"]
        content = {key: rng.choice(WEIRD) for key in rng.sample(keys, rng.randrange(1, 8))}
        if msg_type == "execute_request":
            content["code"] = rng.choice([v for v in WEIRD if not isinstance(v, str)])
        elif msg_type == "history_request" and rng.random() < 0.7:
            content["hist_access_type"] = rng.choice(["tail", "range", "search"])
        elif "code" in content and rng.random() < 0.5:
            content["code"] = "".join(rng.choice("echo sed =\\\"'?\n\t é🙂") for _ in range(rng.randrange(40)))
        # An odd but valid msg_id: the reply's parent_header must carry it back verbatim.
        msg_id = self.uid() + rng.choice(["", "-\u00e9\U0001f642", "\x01\x1f", "-" + "y" * 3000, " \\\""])
        parts = self.parts(msg_type, content, msg_id, ascii_only=rng.random() < 0.5)
        parts[1] = pack(rng.choice([{}, {"msg_id": 5}, {"header": []}]))
        parts[2] = pack(rng.choice([{}, {"deletedCells": None}, {"x": WEIRD}]))
        return f"weird-content/{msg_type}", self.signed(parts)

    def mutant(self):
        """A valid signed message, bit-flipped, reordered, cut or padded; the reference decides."""
        rng = self.rng
        base = rng.choice([("kernel_info_request", {}), (f"fuzz_{self.uid()[:8]}_request", {"a": 1}),
                           ("execute_request", execute_content(f"echo mutant-{self.uid()[:8]}"))])
        frames = self.signed(self.parts(*base))
        for _ in range(rng.randrange(1, 4)):
            op = rng.choice(["flip", "flip", "swap", "drop", "duplicate", "insert", "cut"])
            i, j = rng.randrange(len(frames)), rng.randrange(len(frames))
            if op == "flip" and frames[i]:
                frame = bytearray(frames[i])
                frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
                frames[i] = bytes(frame)
            elif op == "swap":
                frames[i], frames[j] = frames[j], frames[i]
            elif op == "drop" and len(frames) > 1:
                del frames[i]
            elif op == "duplicate":
                frames.insert(j, frames[i])
            elif op == "insert":  # before the delimiter an identity, after the JSON a buffer
                frames.insert(j, bytes(rng.getrandbits(8) for _ in range(rng.randrange(64))))
            elif op == "cut":
                frames[i] = frames[i][:rng.randrange(len(frames[i]) + 1)]
        return "mutant", frames

    def canary(self):
        """An execute that would print the canary, with a signature that is not its own."""
        rng = self.rng
        token = f"CANARY-{self.uid()[:12]}"
        parts = self.parts("execute_request", execute_content(f"echo {token}"), msg_id=token)
        true = sign(self.key, parts)
        case = rng.choice(["wrong-key", "unsigned", "other-message", "content-swapped", "uppercase",
                           "truncated", "extended", "key-prefix"])
        if case == "content-swapped":
            # A harmless execute's header and signature, the canary's content.
            harmless = self.parts("execute_request", execute_content("echo harmless"))
            signature, parts = sign(self.key, harmless), harmless[:3] + parts[3:]
        else:
            signature = {
                "wrong-key": lambda: sign(uuid.UUID(int=rng.getrandbits(128)).hex.encode(), parts),
                "unsigned": lambda: b"",
                "other-message": lambda: self.other_signature,
                "uppercase": lambda: true.upper(),
                "truncated": lambda: true[:-1],
                "extended": lambda: true + true[-1:],
                "key-prefix": lambda: sign(self.key[:-1], parts),
            }[case]()
        return f"canary/{case}", [DELIM, signature] + parts, DROP

    def replay(self):
        """The exact signed parts of an earlier valid message, on any socket, sometimes with an
        unsigned extra: a buffer after them or a routing frame before them."""
        rng = self.rng
        if not self.replayable:
            return self.structure()
        frames = list(rng.choice(self.replayable))
        case = rng.choice(["same-bytes", "same-bytes", "plus-buffer", "plus-identity"])
        if case == "plus-buffer":
            frames.append(rng.randbytes(rng.randrange(1, 100)))
        elif case == "plus-identity":
            frames.insert(0, rng.randbytes(rng.randrange(1, 20)))
        return f"replay/{case}", frames

    def huge(self):
        rng = self.rng
        self.huge_left -= 1
        case = rng.choice(["unsigned-junk", "signed-big-content", "big-buffer", "signed-big-invalid"])
        if case == "unsigned-junk":
            frames = [DELIM, b"%064x" % rng.getrandbits(256), rng.randbytes(HUGE), b"{}", b"{}", b"{}"]
        elif case == "signed-big-content":
            frames = self.signed(self.parts(f"fuzz_{self.uid()[:8]}_request", {"blob": "z" * (HUGE // 4)}))
        elif case == "big-buffer":  # buffers are not signed, and may be large
            frames = self.signed(self.parts("kernel_info_request", {})) + [rng.randbytes(HUGE)]
        else:
            parts = self.parts("kernel_info_request", {})
            parts[3] = b'{"blob":"' + b"z" * HUGE + b'"'  # no closing brace
            frames = self.signed(parts)
        return f"huge/{case}", frames

    def next(self) -> tuple[str, str, list[bytes], str | None]:
        rng = self.rng
        generators = [(self.structure, 10), (self.signature, 15), (self.bad_json, 15),
                      (self.open_json, 4), (self.unknown_type, 10), (self.weird_content, 12),
                      (self.mutant, 24), (self.canary, 10), (self.replay, 5)]
        if self.huge_left and rng.random() < 0.002:
            generator = self.huge
        else:
            generator = rng.choices([g for g, _ in generators], [w for _, w in generators])[0]
        channel = rng.choices(["shell", "control", "stdin"], [6, 3, 1])[0]
        kind, frames, *expect = generator()
        return channel, kind, frames, (expect[0] if expect else None)


def test_wire_fuzz(kernel):  # noqa: F811
    k: RunningKernel = kernel
    seed = int(os.environ.get("SCULPT_FUZZ_SEED", random.randrange(2**32)))
    print(f"wire fuzz: seed {seed} (reproduce with SCULPT_FUZZ_SEED={seed}), {COUNT} messages")
    tap = Wiretap(k, ["shell", "control", "stdin"])
    fuzz = Fuzzer(tap.key, seed)
    where = f"[seed {seed}]"
    started = time.monotonic()

    def checkpoint(n: int) -> None:
        """The kernel still beats, answers control, and runs a cell, after all sent before."""
        tap.heartbeat(fuzz.rng.randbytes(16))
        msg_id, frames = fuzz.good("kernel_info_request", {})
        fuzz.record("control", "check/kernel_info", frames)
        assert tap.request("control", frames, msg_id)["msg_type"] == "kernel_info_reply", where
        token = f"alive-{n}-{fuzz.uid()[:8]}"
        msg_id, frames = fuzz.good("execute_request", execute_content(f"echo {token}"))
        fuzz.record("shell", "check/execute", frames)
        fuzz.other_signature = frames[1]  # later forgeries reuse the signature of a cell that ran
        reply = tap.request("shell", frames, msg_id)
        assert reply["content"]["status"] == "ok", (where, reply)
        tap.wait(lambda: tap.idle(msg_id), f"idle after {token} {where}")
        texts = [m["content"]["text"] for m in tap.outputs(msg_id) if m["msg_type"] == "stream"]
        assert any(token in text for text in texts), (where, tap.outputs(msg_id))
        fuzz.confirmed()

    sent = 0
    while sent < COUNT and time.monotonic() - started < FUZZ_BUDGET:
        channel, kind, frames, expect = fuzz.next()
        fuzz.record(channel, kind, frames, expect)
        tap.sockets[channel].send_multipart(frames)
        tap.pump()  # keep up with iopub as we go
        sent += 1
        if sent % CHECK_EVERY == 0:
            checkpoint(sent)
    checkpoint(sent)
    elapsed = time.monotonic() - started
    print(f"sent {sent} fuzz messages in {elapsed:.1f} s ({fuzz.drops} to be dropped)"
          + ("" if sent == COUNT else f"; stopped early after {FUZZ_BUDGET} s"))
    assert sent >= CHECK_EVERY, f"only {sent} messages in {FUZZ_BUDGET} s {where}"

    # Checkpoints ran last on shell and control, so every reply and status is in by now. Each
    # message got the replies and busy statuses due; one that must be dropped, nothing at all.
    replies = {msg_id: 0 for msg_id in fuzz.sent}
    for channel in ("shell", "control"):
        for reply in tap.received[channel]:
            record = fuzz.sent.get(reply["parent_id"])
            assert record is not None and channel in record.channels, \
                f"{where} a reply on {channel} to a message never sent there: {reply}"
            replies[reply["parent_id"]] += 1
    assert not tap.received["stdin"], f"{where} the kernel sent on stdin: {tap.received['stdin'][:3]}"
    busy = {msg_id: 0 for msg_id in fuzz.sent}
    on_iopub = {msg_id: 0 for msg_id in fuzz.sent}
    for message in tap.iopub:
        if message["parent_id"] in busy:
            on_iopub[message["parent_id"]] += 1
            busy[message["parent_id"]] += (message["msg_type"] == "status"
                                           and message["content"]["execution_state"] == "busy")
    for msg_id, record in fuzz.sent.items():
        about = f"{where} {record.kinds} on {sorted(record.channels)}"
        if record.replies is None:
            assert replies[msg_id] <= record.sends, f"{about}: {replies[msg_id]} replies"
        else:
            assert replies[msg_id] == record.replies, f"{about}: {replies[msg_id]} replies, want {record.replies}"
            assert busy[msg_id] == record.busy, f"{about}: {busy[msg_id]} busy statuses, want {record.busy}"
            if record.busy == 0:
                assert on_iopub[msg_id] == 0, f"{about} reached iopub: {tap.outputs(msg_id)[:3]}"
    # Each refused message is logged once; of the open ones, some may be refused too.
    dropped = k.log().count("dropped")
    open_sends = sum(r.sends for r in fuzz.sent.values() if r.replies is None)
    assert fuzz.drops <= dropped <= fuzz.drops + open_sends, \
        f"{where} the kernel logged {dropped} drops; {fuzz.drops} to {fuzz.drops + open_sends} expected"

    # Still the same process, still answering.
    assert k.process.poll() is None, f"{where} the kernel exited"
    msg_id = k.kc.kernel_info()
    assert k.shell_reply(msg_id, timeout=WAIT)["msg_type"] == "kernel_info_reply"


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------


def test_replayed_execute_runs_once(kernel):  # noqa: F811
    """The same signed bytes sent again, on the same socket, another shell socket and control,
    are refused, as jupyter_client's Session refuses a signature it has already seen; a fresh
    request with the same code (so a new msg_id and signature) still runs."""
    k: RunningKernel = kernel
    tap = Wiretap(k, ["shell", "shell2", "control"])
    fuzz = Fuzzer(tap.key, seed=random.randrange(2**32))
    token = f"replay-{uuid.uuid4().hex[:8]}"
    msg_id, frames = fuzz.good("execute_request", execute_content(f"echo {token}"))
    log_before = k.log().lower()

    first = tap.request("shell", frames, msg_id)
    assert first["content"]["status"] == "ok", first
    tap.wait(lambda: tap.idle(msg_id), "the first run's idle")

    replays = ["shell", "shell", "shell2", "control"]
    for channel in replays:
        tap.sockets[channel].send_multipart(frames)
        # Sync: once this answer is back, the replay before it was handled (and an accepted
        # execute queued on the worker ahead of the fresh one below).
        sync_id, sync = fuzz.good("kernel_info_request", {})
        tap.request(channel, sync, sync_id)

    fresh_id, fresh = fuzz.good("execute_request", execute_content(f"echo {token}"))
    assert tap.request("shell", fresh, fresh_id)["content"]["status"] == "ok"
    tap.wait(lambda: tap.idle(fresh_id), "the fresh run's idle")
    # A reply to a replay on shell2 was queued before the fresh one's; one more answer there
    # proves it would have arrived.
    sync_id, sync = fuzz.good("kernel_info_request", {})
    tap.request("shell2", sync, sync_id)

    def printed(request_id: str) -> int:
        return "".join(m["content"]["text"] for m in tap.outputs(request_id) if m["msg_type"] == "stream").count(token)

    inputs = [m for m in tap.outputs(msg_id) if m["msg_type"] == "execute_input"]
    assert (len(inputs), printed(msg_id)) == (1, 1), \
        f"replayed {len(replays)} times, the cell ran {len(inputs)} times and printed {printed(msg_id)} times"
    replies = [m for channel in tap.received for m in tap.replies(channel, msg_id)]
    assert len(replies) == 1, f"{len(replies)} replies to one execute replayed {len(replays)} times: {replies}"
    assert printed(fresh_id) == 1, "the fresh request did not run"

    new_log = k.log().lower()[len(log_before):]
    refusals = sum(1 for line in new_log.splitlines() if "dropped" in line or "duplicate" in line)
    assert refusals >= len(replays), f"{refusals} refusals logged for {len(replays)} replays:\n{new_log}"
