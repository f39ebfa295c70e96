"""The quickstart notebook, executed headless the way the main command runs it, with its outputs checked."""
import pytest


@pytest.fixture(scope="module")
def cells(executed_notebook):
    # Executed once per session (conftest); the browser test opens the same executed notebook.
    notebook, _ = executed_notebook("quickstart", timeout=1800)
    return {cell.source: cell for cell in notebook.cells if cell.cell_type == "code"}


def outputs(cells, source, kind=None):
    return [o for o in cells[source].outputs if kind is None or o.output_type == kind]


def test_help_lists_every_command_as_markdown(cells):
    [result] = outputs(cells, "help", "execute_result")
    markdown = result.data["text/markdown"]
    for verb in ["help", "echo", "seed", "status", "clear", "sleep", "reset"]:
        assert f"| {verb}" in markdown, verb
    assert "text/plain" in result.data


def test_help_page(cells):
    [result] = outputs(cells, "help echo", "execute_result")
    assert result.data["text/plain"].startswith("echo [TEXT…] [to=stdout|stderr]")


def test_echo_to_both_streams(cells):
    streams = {o.name: o.text for o in outputs(cells, 'echo hello, world\necho "this goes to stderr" to=stderr', "stream")}
    assert streams == {"stdout": "hello, world\n", "stderr": "this goes to stderr\n"}


def test_status_shows_the_seed_as_a_table(cells):
    # The first line's result is shown as it runs; the last line's is the cell's result.
    [shown] = outputs(cells, "seed 42\nstatus", "display_data")
    assert shown.data["text/plain"] == "seed = 42"
    [table] = outputs(cells, "seed 42\nstatus", "execute_result")
    assert "<table" in table.data["text/html"] and ">42<" in table.data["text/html"]


def test_errors_name_line_word_and_suggestion(cells):
    [error] = outputs(cells, "seed 7\nstauts", "error")
    assert error.ename == "UnknownCommand"
    assert error.evalue == "line 2: unknown command `stauts`; did you mean `status`?"
    [error] = outputs(cells, "echo hi to=stdrr", "error")
    assert "did you mean `to=stderr`?" in error.evalue
    # The line before the error ran; the session is intact.
    [seed] = outputs(cells, "seed", "execute_result")
    assert seed.data["text/plain"] == "seed = 7"


def test_clear_output_waits_for_the_next_output(cells):
    streams = outputs(cells, "echo this line is cleared\nclear wait=yes\necho only this line remains", "stream")
    assert [o.text for o in streams] == ["only this line remains\n"]


def test_smollm2_card(cells):
    [card] = outputs(cells, "model load smollm2", "execute_result")
    text = card.data["text/plain"]
    assert "SmolLM2-135M-Instruct" in text
    assert "134515008" in text and "30" in text
    progress = [o for o in outputs(cells, "model load smollm2", "display_data")]
    assert progress and "transient" not in progress[0], "nbclient stores the progress display"
    assert "done" in progress[0].data["text/plain"], "the stored progress bar is the final, updated one"


def test_generation_names_paris(cells):
    text = "".join(o.text for o in outputs(cells, 'generate "The capital of France is" tokens=12', "stream"))
    assert text.lstrip().startswith("Paris"), text


def test_perplexity_on_persuasion(cells):
    source = "data text austen split=persuasion\neval ppl tokens=2048 window=512"
    [table] = outputs(cells, source, "execute_result")
    text = table.data["text/plain"]
    assert "persuasion" in text and "tokens scored          2048" in text, text
    ppl = float(text.split("perplexity per token")[1].split()[0])
    # A 135M model on Austen: well above 1 and far below the vocabulary size.
    assert 5 < ppl < 200, ppl
    [bar] = [o for o in outputs(cells, source, "display_data") if "perplexity [" in o.data["text/plain"]]
    assert "done" in bar.data["text/plain"]


def ppl_from(table_text):
    return float(table_text.split("perplexity per token")[1].split()[0])


def test_lora_training_lowers_validation_perplexity(cells):
    [before] = outputs(cells, "data text austen split=northangerabbey\neval ppl tokens=2048", "execute_result")
    [after] = outputs(cells, "eval ppl tokens=2048", "execute_result")
    assert "northangerabbey" in before.data["text/plain"] and "northangerabbey" in after.data["text/plain"]
    b, a = ppl_from(before.data["text/plain"]), ppl_from(after.data["text/plain"])
    assert a < b, (b, a)


def test_training_display_keeps_the_curve(cells):
    source = ("lora rank=8 alpha=16 targets=q,k,v,up,down\n"
              "train steps=20 lr=1e-3 batch=4 seq=128 split=emma val_split=northangerabbey eval_every=5 val_batches=2")
    shown = [o for o in outputs(cells, source, "display_data") if "image/svg+xml" in o.data]
    assert len(shown) == 1, "one display, updated in place"
    curve = shown[0]
    assert "done" in curve.data["text/plain"]
    assert "<polyline" in curve.data["image/svg+xml"]
    spec = curve.data["application/vnd.vegalite.v5+json"]
    steps = {v["x"] for v in spec["data"]["values"] if v["series"] == "train"}
    assert steps == set(range(1, 21)), sorted(steps)
    validation = [v for v in spec["data"]["values"] if v["series"] == "validation"]
    assert [v["x"] for v in validation] == [0, 5, 10, 15, 20]
    [summary] = outputs(cells, source, "execute_result")
    assert "20 (total trained: 20)" in summary.data["text/plain"]
