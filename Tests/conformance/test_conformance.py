"""The Jupyter conformance suite (jupyter_kernel_test 0.7.0) run against Sculpt.

Every optional sample attribute is filled so that no jkt test skips. jkt's ``test_history``
reports "passed" even when its sub-tests skip, so ``test_history_answers`` below asserts the
tail / range / search answers directly as well.
"""

from __future__ import annotations

import unittest

import jupyter_kernel_test as jkt
from jupyter_kernel_test.msgspec_v5 import validate_message

TIMEOUT = 15


class SculptKernelTests(jkt.KernelTests):
    kernel_name = "sculpt"
    language_name = "sculpt"
    file_extension = ".sculpt"

    def execute_helper(self, code, timeout=TIMEOUT, silent=False, store_history=True, stop_on_error=True):
        """jkt's helper with its own waits widened: it allows 1 s for the busy status and 0.1 s for
        each iopub message after the reply, which a busy machine can miss. Same checks otherwise."""
        msg_id = self.kc.execute(code=code, silent=silent, store_history=store_history, stop_on_error=stop_on_error)
        reply = self.get_non_kernel_info_reply(timeout=timeout)
        assert reply is not None
        validate_message(reply, "execute_reply", msg_id)
        busy = jkt.ensure_sync(self.kc.iopub_channel.get_msg)(timeout=TIMEOUT)
        validate_message(busy, "status", msg_id)
        self.assertEqual(busy["content"]["execution_state"], "busy")
        outputs = []
        while True:
            msg = jkt.ensure_sync(self.kc.iopub_channel.get_msg)(timeout=TIMEOUT)
            validate_message(msg, msg["msg_type"], msg_id)
            if msg["msg_type"] == "status":
                self.assertEqual(msg["content"]["execution_state"], "idle")
                return reply, outputs
            if msg["msg_type"] == "execute_input":
                self.assertEqual(msg["content"]["code"], code)
                continue
            outputs.append(msg)

    code_hello_world = "echo hello, world"
    code_stderr = "echo oops to=stderr"

    completion_samples = [
        {"text": "ec", "matches": {"echo"}},
        {"text": "echo x t", "matches": {"to="}},
        {"text": "echo x to=st", "matches": {"stdout", "stderr"}},
        {"text": "?se", "matches": {"seed", "search", "sensitivity"}},
        {"text": "clear wait=y", "matches": {"yes"}},
    ]

    complete_code_samples = ["echo hi", "seed 3", "status", "seed?", "?seed", "echo hi\nseed 3"]
    incomplete_code_samples = ['echo "abc', "echo hi \\", "seed 3\necho \\"]
    invalid_code_samples = ["bogus", "seed 3\nbogus"]

    code_page_something = "?seed"
    code_generate_error = "bogus"

    # Two distinct inputs; the history pattern matches exactly one of them (jkt's "unique" wants 1).
    code_execute_result = [
        {"code": "seed 7", "result": "seed = 7"},
        {"code": "seed 2024", "result": "seed = 2024", "mime": "text/plain"},
    ]
    code_history_pattern = "seed 20*"
    supported_history_operations = ("tail", "range", "search")

    # The first line's result is shown (as display_data) once the second line runs.
    code_display_data = [
        {"code": "status\nseed 3", "mime": "text/html"},
        {"code": "status\nseed 3", "mime": "text/markdown"},
    ]
    code_clear_output = "clear"
    code_inspect_sample = "seed 3"

    # ---- checks jkt does not make -------------------------------------------------------

    def test_every_optional_sample_is_set(self) -> None:
        """An empty sample makes its jkt test skip (inside a sub-test, even invisibly): none may be."""
        for name in ("code_hello_world", "code_stderr", "completion_samples", "complete_code_samples",
                     "incomplete_code_samples", "invalid_code_samples", "code_page_something",
                     "code_generate_error", "code_execute_result", "code_display_data",
                     "code_clear_output", "code_history_pattern", "code_inspect_sample"):
            with self.subTest(attribute=name):
                self.assertTrue(getattr(self, name), f"{name} is empty")
        self.assertEqual(set(self.supported_history_operations), {"tail", "range", "search"})
        self.assertTrue(all("matches" in sample for sample in self.completion_samples))
        self.assertTrue(all("result" in sample for sample in self.code_execute_result))

    def history(self, **kwargs):
        msg_id = self.kc.history(raw=True, **kwargs)
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        validate_message(reply, "history_reply", msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        return reply["content"]["history"]

    def test_history_answers(self) -> None:
        """tail, range and search answer with the cells just run, without any skip."""
        self.flush_channels()
        codes = ["seed 31", "seed 32", "echo history-probe"]
        counts = []
        for code in codes:
            reply, _ = self.execute_helper(code)
            self.assertEqual(reply["content"]["status"], "ok")
            counts.append(reply["content"]["execution_count"])
        self.assertEqual(counts, list(range(counts[0], counts[0] + 3)))

        tail = self.history(hist_access_type="tail", n=3, output=False)
        self.assertEqual([entry[2] for entry in tail], codes)
        self.assertEqual([entry[1] for entry in tail], counts)
        session = tail[0][0]
        self.assertTrue(all(entry[0] == session for entry in tail))

        with_output = self.history(hist_access_type="tail", n=3, output=True)
        self.assertEqual([entry[2][0] for entry in with_output], codes)
        self.assertEqual([entry[2][1] for entry in with_output][:2], ["seed = 31", "seed = 32"])

        ranged = self.history(hist_access_type="range", session=session,
                              start=counts[1], stop=counts[2] + 1, output=False)
        self.assertEqual([(e[0], e[1], e[2]) for e in ranged],
                         [(session, counts[1], codes[1]), (session, counts[2], codes[2])])

        found = self.history(hist_access_type="search", pattern="seed 3?", output=False)
        self.assertEqual([entry[2] for entry in found][-2:], ["seed 31", "seed 32"])
        self.assertTrue(all(entry[2] in ("seed 31", "seed 32") for entry in found))

        # Run one input again: unique keeps one entry per input, n keeps the last n.
        self.execute_helper("seed 31")
        every = self.history(hist_access_type="search", pattern="seed 31", output=False)
        unique = self.history(hist_access_type="search", pattern="seed 31", unique=True, output=False)
        last = self.history(hist_access_type="search", pattern="seed 3?", n=1, output=False)
        self.assertEqual(len(every), 2)
        self.assertEqual(len(unique), 1)
        self.assertEqual([entry[2] for entry in last], ["seed 31"])

    def complete_at_end(self, text):
        msg_id = self.kc.complete(text, cursor_pos=len(text))
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        validate_message(reply, "complete_reply", msg_id)
        return reply["content"]

    def test_completion_cursor_positions(self) -> None:
        """The replaced range: the command word, the option word, the value after `=`."""
        self.flush_channels()
        cases = [
            ("ec", ["echo"], 0),
            ("echo x t", ["to="], len("echo x ")),
            ("echo x to=st", ["stderr", "stdout"], len("echo x to=")),
        ]
        for text, matches, start in cases:
            with self.subTest(text=text):
                content = self.complete_at_end(text)
                self.assertEqual(content["status"], "ok")
                self.assertEqual(sorted(content["matches"]), matches)
                self.assertEqual(content["cursor_start"], start)
                self.assertEqual(content["cursor_end"], len(text))

    def test_inspect_shows_seed_page(self) -> None:
        self.flush_channels()
        msg_id = self.kc.inspect(self.code_inspect_sample)
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        validate_message(reply, "inspect_reply", msg_id)
        data = reply["content"]["data"]
        self.assertIn("text/plain", data)
        self.assertTrue(data["text/plain"].startswith("seed [N]"), data["text/plain"])

    def test_kernel_info_details(self) -> None:
        self.flush_channels()
        msg_id = self.kc.kernel_info()
        reply = self.kc.get_shell_msg(timeout=TIMEOUT)
        validate_message(reply, "kernel_info_reply", msg_id)
        info = reply["content"]
        self.assertEqual(info["language_info"]["name"], "sculpt")
        self.assertEqual(info["language_info"]["file_extension"], ".sculpt")
        self.assertRegex(info["protocol_version"], r"^5\.\d+$")


class SculptIopubWelcomeTests(jkt.IopubWelcomeTests):
    kernel_name = "sculpt"
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
