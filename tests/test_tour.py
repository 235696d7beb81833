"""docs/tour.md runs as written: its C program compiles against the library and
prints the output shown after it, and its Python examples pass as doctests."""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import microcrad

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "docs" / "tour.md"


def test_the_python_examples_pass() -> None:
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    # A Markdown fence ends an example's expected output, as a blank line would.
    text = re.sub(r"^```.*$", "", TOUR.read_text(), flags=re.MULTILINE)
    test = doctest.DocTestParser().get_doctest(text, {}, "tour.md", str(TOUR), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 20
    assert result.failed == 0


@pytest.mark.skipif(bool(os.environ.get("MICROCRAD_MEMCHECK")),
                    reason="under tools/memcheck.py the library is a sanitizer build, which a "
                    "plain gcc program cannot load; the ordinary run covers this")
def test_the_c_program_prints_what_the_tour_shows(tmp_path: Path) -> None:
    text = TOUR.read_text()
    blocks = re.findall(r"```c\n(.*?)```\n+```text\n(.*?)```", text, re.DOTALL)
    assert blocks, "the tour's C program and its output"
    library = Path(os.environ.get("MICROCRAD_LIB", "")) if os.environ.get("MICROCRAD_LIB") \
        else Path(microcrad._lib._loading.__file__).parent.parent / "libmicrocrad.so"
    if not library.is_file():
        pytest.skip(f"no built library at {library}")
    for index, (source, expected) in enumerate(blocks):
        program = tmp_path / f"tour{index}"
        (tmp_path / f"tour{index}.c").write_text(source)
        subprocess.run([os.environ.get("CC", "gcc"), "-std=c11", "-Wall", "-Werror",
                        f"-I{ROOT / 'c' / 'include'}", str(tmp_path / f"tour{index}.c"),
                        str(library), f"-Wl,-rpath,{library.parent}", "-o", str(program)],
                       check=True)
        result = subprocess.run([str(program)], stdout=subprocess.PIPE, text=True, check=True)
        assert result.stdout == expected


def _texts(markup: str) -> list[str]:
    """The words Graphviz wrote into an SVG (or a page of SVGs), without the layout."""
    return re.findall(r"<text[^>]*>([^<]*)</text>|<p>([^<]*)</p>", markup)


def test_the_committed_pictures_are_what_the_code_draws(tmp_path: Path) -> None:
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "tour_pictures", ROOT / "docs" / "tour" / "make_pictures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.draw(tmp_path)
    assert [p.name for p in made] == ["multiplication.svg", "backward.html"]
    text = TOUR.read_text()
    for picture in made:
        assert f"tour/{picture.name}" in text
        committed = (ROOT / "docs" / "tour" / picture.name).read_text()
        assert _texts(picture.read_text()) == _texts(committed), picture.name
    assert any("refs" in t for pair in _texts(made[0].read_text()) for t in pair)
