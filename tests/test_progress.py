"""What a run shows in the terminal: no kernel warning about TCP."""

from maelib import runs

TINY = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
x = 1

# %%
from myst_nb import glue
glue("params", {"x": x}, display=False)
'''


def test_a_chapters_kernel_prints_no_warning_about_tcp(tmp_path, capfd):
    """The kernel talks over IPC: a TCP kernel warns on its stderr (the run's) that it is unencrypted."""
    src = tmp_path / "01_tiny.py"
    src.write_text(TINY)
    values = runs._execute_notebook(src, {"x": 2}, tmp_path / "01_tiny.ipynb", False)
    assert values["params"] == {"x": 2}
    err = capfd.readouterr().err
    assert "TCP" not in err and "WARNING" not in err, err
