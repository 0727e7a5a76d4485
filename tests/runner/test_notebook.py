"""In a notebook: the run's progress is a widget and its report shows as compact HTML (issue 14)."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

CODE = """\
import numpy as np, tilewise
report = tilewise.run({src!r}, {dst!r}, ["invert"], tile=32, workers=1)
report
"""


@pytest.mark.slow
def test_a_notebook_shows_widget_progress_and_the_html_report(tmp_path):
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    image = np.arange(64 * 96, dtype=np.uint16).reshape(64, 96)
    np.save(src, image)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(CODE.format(src=str(src), dst=str(dst))))
    NotebookClient(notebook, timeout=180, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}
    }).execute()  # fmt: skip
    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    bundles = [o.data for o in outputs if o.output_type in ("display_data", "execute_result")]
    widgets = [b for b in bundles if "application/vnd.jupyter.widget-view+json" in b]
    assert widgets, f"no progress widget among {[list(b) for b in bundles]}"
    (html,) = [
        b["text/html"] for b in bundles if "text/html" in b and "RunReport" in b["text/html"]
    ]
    assert "6 total · 6 done · 0 failed" in html
    assert "ops" in html and "data:image/png;base64," in html
    assert len(html) < 200_000
    (result,) = [o for o in outputs if o.output_type == "execute_result"]
    assert result.data["text/plain"].startswith("<RunReport ok: 6 tiles")
    np.testing.assert_array_equal(np.load(dst), 65535 - image)
