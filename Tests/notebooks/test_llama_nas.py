"""The LLaMA-NAS notebook on the tiny model, executed headless, with its outputs checked."""
import re
import struct

import pytest


@pytest.fixture(scope="module")
def cells(executed_notebook):
    notebook, _ = executed_notebook("llama_nas", timeout=1800)
    return {cell.source: cell for cell in notebook.cells if cell.cell_type == "code"}


def texts(cells, prefix):
    [source] = [s for s in cells if s.startswith(prefix)]
    return [o.data["text/plain"] if "data" in o else o.get("text", "") for o in cells[source].outputs]


def test_no_cell_failed(cells):
    for source, cell in cells.items():
        assert not [o for o in cell.outputs if o.output_type == "error"], source


def test_the_space_has_depth_genes(cells):
    card = "\n".join(texts(cells, "elastic mode=NAS"))
    assert "kept, skipped" in card and "×4 layers" in card, card


def test_baselines_are_lines_of_subnets(cells):
    out = "\n".join(texts(cells, "baseline drop_layers objectives=loss,params eval_tokens=512 calibration_tokens=512 as drop0"))
    assert "4 dropped" in out and "5/5 subnets" in out, out
    assert "MLP 128 of 256 everywhere" in out, out


def test_linas_spends_its_budget_and_reports_its_predictors(cells):
    out = "\n".join(texts(cells, "search linas"))
    assert "40/40 real evaluations" in out, out
    assert "rank correlation" in out and "hypervolume" in out, out
    rounds = re.findall(r"^\s*(\d+)\s+(\d+)\s+[0-9.e+-]+\s", out, flags=re.M)
    assert [int(n) for _, n in rounds][-1:] == [40], rounds


def test_compare_draws_the_fronts_and_the_baselines(cells):
    out = "\n".join(texts(cells, "baseline drop_layers objectives=loss,params eval_tokens=512 calibration_tokens=512 as drop\n"))
    for name in ("linas", "nsga2", "drop", "width"):
        assert name in out, out
    assert "hypervolume" in out, out


def test_the_chosen_subnet_exports(cells):
    out = "\n".join(texts(cells, "subnet pareto linas 0"))
    assert "exported" in out or "wrote" in out or "GGUF" in out, out
    with open("/tmp/sculpt-llama-nas-subnet.gguf", "rb") as f:
        assert f.read(4) == b"GGUF" and struct.unpack("<I", f.read(4))[0] == 3


def test_wanda_is_a_baseline_at_equal_parameters(cells):
    out = "\n".join(texts(cells, "baseline drop_layers objectives=loss,params eval_tokens=512 calibration_tokens=512 as drop0"))
    assert "Wanda 25 %" in out and "Wanda 50 %" in out and "3/3 pruned models" in out, out


def test_the_front_is_drawn_by_its_layers(cells):
    out = "\n".join(texts(cells, "pareto linas layers"))
    assert "skipped" in out and "layers kept, subnets of each" in out, out
    for width in ("256", "192", "128"):
        assert width in out, out


def test_the_int8_subnet_loads_as_a_smaller_model(cells):
    with open("/tmp/sculpt-llama-nas-subnet-q8.gguf", "rb") as f:
        assert f.read(4) == b"GGUF"
    card = "\n".join(texts(cells, "model load /tmp/sculpt-llama-nas-subnet-q8.gguf"))
    assert "Q8_0" in card or "8-bit" in card or "q8" in card.lower(), card
