"""The Shears / SQFT notebook on the tiny model, executed headless, with its outputs checked."""
import re
import struct

import pytest


@pytest.fixture(scope="module")
def cells(executed_notebook):
    notebook, _ = executed_notebook("shears_sqft", timeout=1800)
    return {cell.source: cell for cell in notebook.cells if cell.cell_type == "code"}


def texts(cells, prefix):
    [source] = [s for s in cells if s.startswith(prefix)]
    return [o.data["text/plain"] if "data" in o else o.get("text", "") for o in cells[source].outputs]


def perplexities(outputs):
    return [float(m) for text in outputs for m in re.findall(r"perplexity per token\s+([0-9.]+)", text)]


def test_no_cell_failed(cells):
    for source, cell in cells.items():
        assert not [o for o in cell.outputs if o.output_type == "error"], source


def test_sensitivity_is_a_live_heat_map_and_the_model_is_unchanged(cells):
    [source] = [s for s in cells if s.startswith("sensitivity")]
    charts = [o for o in cells[source].outputs if "application/vnd.vegalite.v5+json" in o.get("data", {})]
    assert len(charts) == 1 and set(charts[0].data) == {"application/vnd.vegalite.v5+json", "image/svg+xml", "text/plain"}
    assert "28/28 cells" in charts[0].data["text/plain"], "4 layers × 7 modules measured"


def test_wanda_prunes_exactly_half(cells):
    out = "\n".join(texts(cells, "sparsify wanda"))
    assert "50.00 %" in out, out


def test_a_plain_merge_densifies_and_sparsepeft_keeps_every_zero(cells):
    plain = "\n".join(texts(cells, "lora rank=8 alpha=16 targets=q,k,v,up,down\ntrain"))
    assert "densified the sparse base" in plain, plain
    sparse = "\n".join(texts(cells, "lora rank=8 alpha=16 targets=q,k,v,up,down sparse=yes\n"))
    assert "Zeros per module: 50.00 %" in sparse, sparse


def test_qa_sparsepeft_merge_equals_its_forward_and_stays_sparse(cells):
    before = perplexities(texts(cells, "lora rank=8 alpha=16 targets=q,k,v,up,down sparse=yes quantization_aware=yes"))
    after = perplexities(texts(cells, "lora merge\neval ppl"))
    assert len(before) == 1 and len(after) == 1
    assert abs(before[0] - after[0]) <= 1e-3 * before[0], (before, after)
    assert any("Zeros per module: 50.00 %" in t for t in texts(cells, "lora merge\neval ppl"))


def test_the_recipe_and_an_int4_file(cells):
    out = "\n".join(texts(cells, "status\nexport gguf"))
    steps = [line.split(". ", 1)[1] for line in out.splitlines() if re.match(r"^\s*(recipe)?\s+\d+\. ", line)]
    kinds = [s.split(":")[0] for s in steps]
    assert kinds[0] == "loaded" and "sparsified (wanda)" in kinds and kinds.index("quantized") < len(kinds) - 1, kinds
    assert "Q4_0" in out, out
    with open("/tmp/sculpt-sqft-int4.gguf", "rb") as f:
        assert f.read(4) == b"GGUF" and struct.unpack("<I", f.read(4))[0] == 3


def test_sparsepeft_merged_then_quantized_stacks_in_the_recipe(cells):
    out = "\n".join(texts(cells, "model tiny layers=4 dim=64 ffn=256 context=256\nsparsify"))
    steps = [line.split(". ", 1)[1] for line in out.splitlines() if re.match(r"^\s*(recipe)?\s+\d+\. ", line)]
    kinds = [s.split(":")[0] for s in steps]
    order = ["sparsified (wanda)", "trained", "merged adapters", "merged weights became the base", "quantized"]
    assert all(k in kinds for k in order), kinds
    assert [kinds.index(k) for k in order] == sorted(kinds.index(k) for k in order), kinds
    assert "Zeros per module: 50.00 %" in out, "the merged, quantized model keeps every zero"
    assert len(perplexities([out])) == 1
