"""tools.benchmark reads each side's JSON lines: ours' names and airbench94's port's."""
import sys

import pytest

from tools.benchmark import SideFailed, run_side

PORT_LINES = ['{"epoch": 0, "val_acc": 0.61, "time": 1.5}', '{"epoch": 1, "val_acc": 0.72, "time": 3.0}',
              '{"run": 0, "seed": 0, "val_acc": 0.72, "tta_val_acc": 0.75, "seconds": 3.2}']
OURS_LINES = ['{"epoch": 0, "train_loss": 1.0, "test_acc": 0.6, "time": 2.0}',
              '{"epoch": 1, "train_loss": 0.5, "test_acc": 0.7, "tta_test_acc": 0.71, "time": 4.0}']


def printing(tmp_path, lines, code=0):
    script = tmp_path / "side.py"
    script.write_text("import sys\nprint('starting')\n%s\nsys.exit(%d)\n"
                      % ("\n".join("print(%r)" % line for line in lines), code))
    return [sys.executable, str(script)]


@pytest.mark.parametrize("lines, expected", [(PORT_LINES, (2, 3.0, 0.72, 0.75)), (OURS_LINES, (2, 4.0, 0.7, 0.71)),
                                             (OURS_LINES[:1], (1, 2.0, 0.6, -1.0))])
def test_a_sides_last_epoch_and_tta_accuracy_are_read_under_either_name(tmp_path, lines, expected):
    result = run_side(printing(tmp_path, lines), str(tmp_path / "log"))
    assert (result["epochs"], result["train_time"], result["test_acc"], result["tta_test_acc"]) == expected
    assert 0 < result["wall"] <= result["exit"] and result["rss_gb"] > 0


def test_a_side_that_fails_is_one_error_with_its_stderr(tmp_path):
    with pytest.raises(SideFailed, match="exited with 3"):
        run_side(printing(tmp_path, OURS_LINES, code=3), str(tmp_path / "log"))


def test_the_report_gives_each_of_our_sides_against_the_peer():
    from argparse import Namespace

    from common import cpu
    from tools.benchmark import machine, report

    def run(wall, exit_):
        return {"wall": wall, "exit": exit_, "train_time": wall - 1, "test_acc": 0.9, "tta_test_acc": -1.0,
                "epochs": 5, "rss_gb": 1.0}

    runs = {"ours": [run(40, 44), run(42, 46)], "ours --amp": [run(24, 27), run(26, 29)], "peer": [run(25, 26)] * 2}
    text = report(Namespace(recipe="spec", classes="0,1", epochs=5, reps=2), runs, flops=1e12, gemm_gflops=100,
                  on=machine())
    assert text.splitlines()[0].startswith("%s, " % cpu.read().name) and " cores; AMX " in text.splitlines()[0]
    assert "ours / peer wall time: 1.64 to the last epoch, 1.73 to exit" in text
    assert "ours --amp / peer wall time: 1.00 to the last epoch, 1.08 to exit" in text
    assert "ours --amp / ours float32 wall time: 0.61 to the last epoch" in text
