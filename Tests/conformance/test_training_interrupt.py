"""Interrupting `train` from a client: the cell ends within a second with one error, the
adapters keep what they learned, and the next command runs on them."""
import time

from test_kernel_behaviour import RunningKernel, TIMEOUT, kernel  # noqa: F401  (fixture)

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\n" * 80


def ppl(outputs):
    [result] = [m for m in outputs if m["msg_type"] == "execute_result"]
    text = result["content"]["data"]["text/plain"]
    return float(text.split("perplexity per token")[1].split()[0])


def test_interrupting_train_keeps_the_adapters(kernel, tmp_path):  # noqa: F811
    k: RunningKernel = kernel
    text = tmp_path / "austen.txt"
    text.write_text(TEXT)
    reply, _ = k.execute(f'model tiny context=128\ndata text "{text}"\nlora rank=4 alpha=8 targets=all')
    assert reply["content"]["status"] == "ok", reply["content"]
    reply, outputs = k.execute("eval ppl tokens=512 window=64")
    before = ppl(outputs)

    msg_id = k.kc.execute("train steps=100000 lr=1e-2 batch=4 seq=64", allow_stdin=False)
    # Wait until the display shows a few steps done.
    seen = k.iopub_until(msg_id, lambda m: m["msg_type"] == "update_display_data"
                         and "training [" in m["content"]["data"]["text/plain"]
                         and int(m["content"]["data"]["text/plain"].split("· ")[1].split("/")[0]) >= 5)
    interrupted_at = time.monotonic()
    k.send_control("interrupt_request")
    reply = k.shell_reply(msg_id, timeout=TIMEOUT)
    assert time.monotonic() - interrupted_at < 1.0, "train did not stop within a second"
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted"
    rest = k.iopub_until_idle(msg_id)
    errors = [m for m in seen + rest if m["msg_type"] == "error"]
    assert len(errors) == 1
    final = [m for m in rest if m["msg_type"] == "update_display_data"][-1]
    assert "interrupted" in final["content"]["data"]["text/plain"]

    reply, outputs = k.execute("eval ppl tokens=512 window=64")
    assert reply["content"]["status"] == "ok"
    assert ppl(outputs) < before, "the partly trained adapters are in use"
