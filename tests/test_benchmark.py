"""tools.benchmark reads each side's JSON lines: train_cifar10.py's names and airbench's scripts'."""
import sys

import pytest

from tools.benchmark import SideFailed, run_side

AIRBENCH_LINES = ['{"epoch": 0, "val_acc": 0.61, "time": 1.5}', '{"epoch": 1, "val_acc": 0.72, "time": 3.0}',
              '{"run": 0, "seed": 0, "val_acc": 0.72, "tta_val_acc": 0.75, "seconds": 3.2}']
MXNET_LINES = ['{"epoch": 0, "train_loss": 1.0, "test_acc": 0.6, "time": 2.0}',
              '{"epoch": 1, "train_loss": 0.5, "test_acc": 0.7, "tta_test_acc": 0.71, "time": 4.0}']


def printing(tmp_path, lines, code=0):
    script = tmp_path / "side.py"
    script.write_text("import sys\nprint('starting')\n%s\nsys.exit(%d)\n"
                      % ("\n".join("print(%r)" % line for line in lines), code))
    return [sys.executable, str(script)]


@pytest.mark.parametrize("lines, expected", [(AIRBENCH_LINES, (2, 3.0, 0.72, 0.75)), (MXNET_LINES, (2, 4.0, 0.7, 0.71)),
                                             (MXNET_LINES[:1], (1, 2.0, 0.6, -1.0))])
def test_a_sides_last_epoch_and_tta_accuracy_are_read_under_either_name(tmp_path, lines, expected):
    result = run_side(printing(tmp_path, lines), str(tmp_path / "log"))
    assert (result["epochs"], result["train_time"], result["test_acc"], result["tta_test_acc"]) == expected
    assert 0 < result["wall"] <= result["exit"] and result["rss_gib"] > 0


def test_a_side_that_fails_is_one_error_with_its_stderr(tmp_path):
    with pytest.raises(SideFailed, match="exited with 3"):
        run_side(printing(tmp_path, MXNET_LINES, code=3), str(tmp_path / "log"))


def test_the_report_gives_each_side_of_train_cifar10_against_the_other_script():
    from argparse import Namespace

    from common import cpu
    from tools.benchmark import MXNET, MXNET_AMP, OTHER, machine, report

    def run(wall, exit_):
        return {"wall": wall, "exit": exit_, "train_time": wall - 1, "test_acc": 0.9, "tta_test_acc": -1.0,
                "epochs": 5, "rss_gib": 1.0}

    runs = {MXNET: [run(40, 44), run(42, 46)], MXNET_AMP: [run(24, 27), run(26, 29)], OTHER: [run(25, 26)] * 2}
    args = Namespace(recipe="spec", classes="0,1", epochs=5, reps=2, other="tools/torch_best.py",
                     other_args="--bf16 --channels-last")
    text = report(args, runs, flops=1e12, gemm_gflops=100, on=machine())
    assert text.splitlines()[0].startswith("%s, " % cpu.read().name) and " cores; AMX " in text.splitlines()[0]
    other = "torch_best.py --bf16 --channels-last"
    assert "| %s | 25.0 (25.0-25.0) |" % other in text
    assert "train_cifar10.py / %s wall time: 1.64 to the last epoch, 1.73 to exit" % other in text
    assert "train_cifar10.py --amp / %s wall time: 1.00 to the last epoch, 1.08 to exit" % other in text
    assert "--amp / float32 wall time: 0.61 to the last epoch" in text
    assert "train_cifar10.py is 4.10x" in text  # the floor: 1 TFLOP at 100 GFLOP/s is 10 s, against 41 s


@pytest.mark.parametrize("epochs, given", [(5.0, "5"), (9.9, "9.9")])
def test_the_other_script_gets_epochs_as_it_parses_them(epochs, given):
    from tools.benchmark import build_parser, other_cmd

    args = build_parser().parse_args(["--data-dir", "DATA", "--other", "tools/torch_reference.py",
                                      "--epochs", str(epochs)])
    cmd = other_cmd(args)  # torch_reference.py's --epochs is a whole number: "5.0" would be refused
    assert cmd[1:] == ["tools/torch_reference.py", "DATA", "--classes", "0,1", "--epochs", given]
    assert cmd[0] == sys.executable
