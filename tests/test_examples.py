"""The Python examples: the moons demo against micrograd's own run of the same
notebook code, step by step, and the digits classifier's accuracy."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LOSS_TOLERANCE = 1e-9


def load_example(name: str) -> ModuleType:
    """examples/<name>.py as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"microcrad_example_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def moons() -> ModuleType:
    return load_example("moons")


@pytest.fixture(scope="module")
def digits() -> ModuleType:
    return load_example("digits")


# fmt: off
def micrograd_demo(steps: int, seed: int = 1337) -> tuple[list[float], list[float]]:
    """micrograd's demo notebook, run with micrograd itself: the losses and accuracies
    of each step. The code is the notebook's, except that the learning rate decays over
    `steps` steps instead of 100 (the same for steps=100)."""
    from micrograd.engine import Value
    from micrograd.nn import MLP
    from sklearn.datasets import make_moons

    np.random.seed(seed)
    random.seed(seed)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y*2 - 1
    model = MLP(2, [16, 16, 1])

    def loss():
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi*scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        alpha = 1e-4
        reg_loss = alpha * sum((p*p for p in model.parameters()))  # noqa: UP034
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        return total_loss, sum(accuracy) / len(accuracy)

    losses, accuracies = [], []
    for k in range(steps):
        total_loss, acc = loss()
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9*k/steps
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(float(total_loss.data))
        accuracies.append(float(acc))
    return losses, accuracies
# fmt: on


def assert_same_run(ours: dict, steps: int) -> None:  # type: ignore[type-arg]
    theirs_losses, theirs_accuracies = micrograd_demo(steps)
    assert len(ours["losses"]) == steps
    for k, (a, b) in enumerate(zip(ours["losses"], theirs_losses)):
        assert abs(a - b) <= LOSS_TOLERANCE, f"step {k}: microcrad {a!r}, micrograd {b!r}"
    assert ours["accuracies"] == theirs_accuracies


def test_moons_loss_falls_and_the_picture_is_saved(moons: ModuleType, tmp_path: Path) -> None:
    output = tmp_path / "boundary.png"
    result = moons.main(["--steps", "20", "--output", str(output)])
    assert result["losses"][-1] < result["losses"][0] / 2
    assert result["final_loss"] < result["losses"][0] / 2
    assert result["output"] == str(output)
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(output).shape
    assert height > 200 and width > 200


def test_moons_reaches_full_accuracy_from_the_notebooks_start(moons: ModuleType) -> None:
    result = moons.main(["--no-plot"])
    # The first loss micrograd's notebook prints, with its seed and data.
    assert abs(result["losses"][0] - 0.8958441028683222) <= LOSS_TOLERANCE
    assert result["accuracies"][-1] == 1.0
    assert result["final_accuracy"] == 1.0
    assert result["output"] is None


def test_moons_matches_micrograd_step_by_step(moons: ModuleType) -> None:
    # micrograd takes about a second a step: ten steps here, all of them under `slow`.
    steps = 10
    assert_same_run(moons.main(["--steps", str(steps), "--no-plot"]), steps)


@pytest.mark.slow
def test_moons_matches_micrograd_over_the_whole_demo(moons: ModuleType) -> None:
    result = moons.main(["--no-plot"])
    assert_same_run(result, 100)
    assert result["final_accuracy"] == 1.0


def test_moons_rejects_bad_options(moons: ModuleType) -> None:
    with pytest.raises(SystemExit):
        moons.main(["--steps", "0"])


def test_digits_reduced_run_learns(digits: ModuleType) -> None:
    result = digits.main(["--epochs", "4", "--limit", "500", "--no-progress"])
    losses = result["epoch_losses"]
    assert len(losses) == 4 and losses[-1] < losses[0] / 3
    assert result["test_accuracy"] >= 0.8
    matrix = result["confusion_matrix"]
    assert matrix.shape == (10, 10) and matrix.sum() == 450
    assert np.trace(matrix) / matrix.sum() == pytest.approx(result["test_accuracy"])


def test_digits_full_run_reaches_95_percent(
    digits: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    result = digits.main(["--no-progress"])
    assert result["test_accuracy"] >= 0.95
    printed = capsys.readouterr().out
    assert "true\\pred" in printed and "test accuracy" in printed


def test_digits_rejects_bad_options(digits: ModuleType) -> None:
    for options in (["--epochs", "0"], ["--limit", "3"], ["--lr", "-1"]):
        with pytest.raises(SystemExit):
            digits.main(options)
