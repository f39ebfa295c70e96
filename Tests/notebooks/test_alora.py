"""The ALoRA notebook on the tiny model, executed headless, with its outputs checked."""
import json
import pathlib
import re

import pytest


@pytest.fixture(scope="module")
def cells(executed_notebook):
    notebook, _ = executed_notebook("alora", timeout=1800)
    return {cell.source: cell for cell in notebook.cells if cell.cell_type == "code"}


def outputs(cells, prefix, kind):
    [source] = [s for s in cells if s.startswith(prefix)]
    return [o for o in cells[source].outputs if o.output_type == kind]


def allocation(text):
    """The rank grid of a heat map's text: {layer: [ranks…]}."""
    rows = {}
    for line in text.splitlines():
        if re.match(r"^\d+\s", line):
            cells = line.split()
            rows[int(cells[0])] = [int(x) for x in cells[1:]]
    return rows


def test_accuracy_table_has_counts_errors_and_chance(cells):
    [table] = outputs(cells, "data tasks austen_lambada", "execute_result")
    text = table.data["text/plain"]
    [row] = [line for line in text.splitlines() if line.startswith("austen_lambada ")]
    assert row.split()[1] == "10", row
    assert "greedy ± s.e." in text and "±" in row and "25.0%" in row, text


def test_alora_keeps_the_budget_and_moves_ranks(cells):
    source = "alora budget=4 rounds=3"
    [live] = [o for o in outputs(cells, source, "display_data") if "application/vnd.vegalite.v5+json" in o.data]
    assert set(live.data) == {"application/vnd.vegalite.v5+json", "image/svg+xml", "text/plain"}, "a chart, not HTML or JSON"
    grid = allocation(live.data["text/plain"])
    assert sorted(grid) == [0, 1, 2, 3]
    assert sum(map(sum, grid.values())) == 4 * 5 * 4, "4 layers × 5 modules × budget 4"
    assert len({r for row in grid.values() for r in row}) > 1, "the ranks moved"
    assert "rank importance" in json.dumps(live.data["application/vnd.vegalite.v5+json"]), "the importance distribution is drawn"
    rounds = [o for o in outputs(cells, source, "display_data") if o.data["text/plain"].startswith("ALoRA rounds")]
    assert len(rounds) == 1 and "passes" in rounds[0].data["text/plain"]
    [final] = outputs(cells, source, "execute_result")
    assert "background:" in final.data["text/html"], "the final allocation as a coloured table"
    assert allocation(final.data["text/plain"]) == grid


def test_ranks_shows_the_same_allocation(cells):
    [result] = outputs(cells, "ranks", "execute_result")
    assert "80 in all" in result.data["text/plain"]


def test_saved_adapters_carry_the_uneven_ranks(cells):
    config = json.loads(pathlib.Path("/tmp/sculpt-alora-adapters/adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["rank_pattern"], config
    assert all(abs(config["alpha_pattern"][k] / v - config["lora_alpha"] / config["r"]) < 1e-6 for k, v in config["rank_pattern"].items())
