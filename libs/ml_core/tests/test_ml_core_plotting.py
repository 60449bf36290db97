from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from ml_core.plotting import save_figure


def test_save_figure_writes_a_png_and_closes_the_figure(tmp_path: Path) -> None:
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    path = save_figure(figure, tmp_path / "plots" / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(figure.number)
    assert [p.name for p in path.parent.iterdir()] == ["curve.png"]


def test_a_failed_render_keeps_the_earlier_file(tmp_path: Path) -> None:
    path = tmp_path / "curve.png"
    path.write_bytes(b"old")
    figure, axes = plt.subplots()
    axes.text(0, 0, "$\\undefinedmacro$")  # mathtext fails at draw time
    with pytest.raises(ValueError):
        save_figure(figure, path)
    assert path.read_bytes() == b"old"
