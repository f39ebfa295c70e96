"""The LoNAS notebook on the tiny model, executed headless, with its outputs checked."""
import pytest


@pytest.fixture(scope="module")
def cells(executed_notebook):
    # Executed once per session (conftest); the browser test opens the same executed notebook.
    notebook, _ = executed_notebook("lonas", timeout=1800)
    return {cell.source: cell for cell in notebook.cells if cell.cell_type == "code"}


def result(cells, source):
    [r] = [o for o in cells[source].outputs if o.output_type == "execute_result"]
    return r.data


def test_search_space_card(cells):
    text = result(cells, "elastic mode=B ranks=16,12,8 widths=100%,75%,50% groups=family")["text/plain"]
    # 4 layers × (2 rank groups + 1 width group) of 3 choices each: 3^12 subnets.
    assert "12 groups" in text and "5.31e+05 subnets" in text, text
    assert "256, 192, 128" in text


def test_importance_order_card(cells):
    text = result(cells, "elastic mode=B ranks=16,12,8 widths=100%,75%,50% groups=family order=importance")["text/plain"]
    [row] = [line for line in text.splitlines() if line.startswith("MLP importance kept")]
    # "256: 100% → 100%, 192: a% → b%, 128: c% → d%": sorting keeps at least as much at every width.
    for share in row.split("  ")[1:]:
        for pair in share.split(","):
            if "→" in pair:
                before, after = (float(x.strip().split(":")[-1].strip().rstrip("%")) for x in pair.split("→"))
                assert after >= before, row


def test_heuristic_is_the_midpoint_and_cheaper(cells):
    outputs = cells["subnet heuristic\ncost"].outputs
    [table] = [o for o in outputs if o.output_type == "display_data"]
    assert "    0      12      12      12         12       12         12  192 (75%)" in table.data["text/plain"]
    cost = result(cells, "subnet heuristic\ncost")["text/plain"]
    assert "measured" in cost and "computed" in cost
    macs_ratio = float(cost.split("MACs per token")[1].split()[1].rstrip("×"))
    assert macs_ratio < 1


def test_search_display_and_front(cells):
    source = "search nsga2 population=8 generations=4 objectives=loss,macs eval_tokens=512 as front1"
    [display] = [o for o in cells[source].outputs if o.output_type == "display_data"]
    # JupyterLab ranks text/html and application/json above Vega-Lite: neither may be in a chart.
    assert set(display.data) == {"image/svg+xml", "application/vnd.vegalite.v5+json", "text/plain"}
    assert "done" in display.data["text/plain"]
    raw = display.metadata["sculpt"]["points"]
    points = raw["points"]
    assert {p["group"] for p in points} == {0, 1, 2, 3, 4}, "every generation is in the plot"
    assert {m["name"] for m in raw["markers"]} == {"largest", "heuristic"}
    table = result(cells, source)["text/plain"]
    assert "heuristic" in table and "largest" in table

    # The front dominates or matches the heuristic: some front point is no worse in both objectives.
    front = raw["front"]
    [h] = [m for m in raw["markers"] if m["name"] == "heuristic"]
    assert any(x <= h["x"] and y <= h["y"] for x, y in front), (front, h)


def test_pareto_plot_and_chosen_subnet(cells):
    assert "image/svg+xml" in result(cells, "pareto front1 plot")
    assert "Cost of the subnet" in result(cells, "subnet pareto front1 0\ncost")["text/plain"]
