"""train_cifar10.py as a user runs it: flags, errors and exit codes, output, repeatability."""
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios

import pytest

from helpers import KEYS, REPO, TIMING, assert_one_clear_error, json_lines, run_cli, run_cli_process



def test_help_lists_every_flag_with_its_default():
    sys.path.insert(0, REPO)
    from commands import train_flags

    result = run_cli("--help")
    assert result.returncode == 0
    text = "".join(result.stdout.split())  # wrapping may break lines anywhere, even at hyphens
    for action in train_flags.build_parser()._actions:
        if action.dest == "help":
            continue
        assert action.option_strings[0] in text
        # ArgumentDefaultsHelpFormatter appends the default to each help text.
        assert "%s(default:" % "".join(action.help.split()) in text, action.dest
    for flag in ["--num-gpus", "--epochs", "--batch-size", "--lr", "--classes", "--data-dir", "--seed", "--quiet"]:
        assert flag in text


def test_asking_for_a_gpu_that_is_not_there_fails_before_any_data_work(tmp_path, http_server, usage):
    url = http_server.serve("/cifar-10-binary.tar.gz", b"never fetched")
    cache = tmp_path / "cache"
    assert "--num-gpus 1 asks for 1 GPU(s), but MXNet sees 0" in usage("--num-gpus", "1", "--data-dir", cache,
                                                                       "--data-url", url)
    assert http_server.requests == [] and not cache.exists()


def test_a_usage_error_from_the_script_is_one_line_and_exit_code_2_without_the_usage_block():
    result = run_cli("--epochs", "0")
    assert_one_clear_error(result, 2, "argument --epochs: expected a number above 0 (e.g. 5 or 9.9), got '0'")
    assert result.stderr == ("train_cifar10.py: error: argument --epochs: expected a number above 0 (e.g. 5 "
                             "or 9.9), got '0' (train_cifar10.py --help lists the flags)\n")


def test_an_mxnet_build_whose_library_cannot_load_is_one_clear_error(tmp_path):
    # What mxnet-cu112 does on a machine without the CUDA 11 libraries (its libmxnet.so fails to
    # load at import). That build cannot be installed here, so a stand-in package raises the same
    # error as the loader.
    fake = tmp_path / "mxnet"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise OSError('libcudart.so.11.0: cannot open shared object file: No such file or directory')\n")
    result = run_cli_process("--help", env={"PYTHONPATH": str(tmp_path)})
    assert_one_clear_error(result, 1, "MXNet could not load its library (libcudart.so.11.0: cannot open")
    assert "install mxnet==1.9.1 instead" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "argument --epochs: expected a number above 0 (e.g. 5 or 9.9), got '0'"),
    (["--num-gpus", "-1"], "argument --num-gpus: expected a whole number of 0 or more, got '-1'"),
    (["--classes", "0,0"], "argument --classes: class '0' is listed twice"),
    (["--batch-size", "many"], "argument --batch-size: expected a whole number of 1 or more, got 'many'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--gpus", "1,1"], "argument --gpus: GPU ids listed twice in '1,1'"),
    (["--gpus", "0,x"], "argument --gpus: expected GPU ids like 0,2"),
    (["--gpus", "0", "--num-gpus", "1"], "--gpus chooses GPU ids, --num-gpus the first N GPUs: use one of them"),
    (["--gpus", "0,2"], "--gpus 0,2 asks for GPU 2, but MXNet sees 0"),
    (["--seeds", "1,1"], "argument --seeds: expected distinct seeds like 1,2,3"),
    (["--seeds", "a"], "argument --seeds: expected seeds like 1,2,3"),
    (["--seeds", "1,2", "--seed", "3"], "--seeds runs one run per seed; --seed sets the seed of one run"),
    (["--seeds", "1,2", "--kv-store", "dist_sync"], "--seeds runs its seeds in turn on this machine"),
])
def test_bad_flags_are_one_clear_error_with_exit_code_2(args, message, usage):
    assert message in usage(*args)


def test_a_wrong_download_is_one_clear_error_and_leaves_the_cache_empty(tmp_path, http_server):
    url = http_server.serve("/cifar-10-binary.tar.gz", b"not the archive")
    result = run_cli("--data-dir", str(tmp_path), "--data-url", url)
    assert_one_clear_error(result, 1, "expected c32a1d4ab5d03f1284b67883e8d87530")
    assert os.listdir(tmp_path) == []


def test_a_failed_download_names_both_data_flags_and_leaves_no_folder_it_created(tmp_path, http_server):
    url = "http://127.0.0.1:%d/cifar-10-binary.tar.gz" % http_server.server_address[1]  # not served: 404
    for where in (["--data-dir", str(tmp_path / "new" / "cifar10")],  # a folder to create
                  []):  # the default, $MXNET_HOME/datasets/cifar10, under a home that is not there
        result = run_cli(*where, "--data-url", url, env={"MXNET_HOME": str(tmp_path / "home" / ".mxnet")})
        assert_one_clear_error(result, 1, "could not download %s (Not Found)" % url)
        assert "--data-url" in result.stderr and "--data-dir" in result.stderr
        assert os.listdir(tmp_path) == []


def test_a_whole_number_flag_given_a_word_says_so_in_plain_words(usage):
    line = usage("--batch-size", "abc")
    assert "argument --batch-size: expected a whole number of 1 or more, got 'abc'" in line and "positive_int" not in line
    assert "argument --epochs: expected a number above 0 (e.g. 5 or 9.9), got 'abc'" in usage("--epochs", "abc")
    assert "expected a whole number of 0 or more, got '-1'" in usage("--warmup-epochs", "-1")


def test_an_unreachable_url_is_one_clear_error(tmp_path):
    result = run_cli("--data-dir", str(tmp_path), "--data-url", "http://127.0.0.1:9/cifar-10-binary.tar.gz")
    assert_one_clear_error(result, 1, "could not download http://127.0.0.1:9/cifar-10-binary.tar.gz")
    assert os.listdir(tmp_path) == []


def test_a_data_dir_that_cannot_be_created_is_one_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    result = run_cli("--data-dir", str(tmp_path / "a-file" / "cifar10"), "--data-url", "http://127.0.0.1:9/x")
    assert_one_clear_error(result, 1, "cannot use %s as the data folder" % (tmp_path / "a-file" / "cifar10"))


def test_a_truncated_data_file_is_one_clear_error_naming_it(tmp_path, batch_files):
    from helpers import write_files

    folder = write_files(tmp_path / "cifar-10-batches-bin", batch_files)
    os.truncate(os.path.join(folder, "test_batch.bin"), 1000)
    result = run_cli("--data-dir", str(tmp_path), "--quiet")
    assert_one_clear_error(result, 1, "test_batch.bin has 1000 bytes, expected 30730000 (truncated)")


def test_trains_and_prints_one_json_line_per_epoch(data_dir):
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "3", "--batch-size", "32")
    assert result.returncode == 0, result.stderr
    lines = json_lines(result)
    assert [line["epoch"] for line in lines] == [0, 1, 2]
    assert all(list(line) == KEYS for line in lines)
    assert "400 training / 80 test images of 2 classes (airplane, automobile)" in result.stderr
    assert lines[-1]["test_acc"] > 0.9  # the synthetic classes differ in colour: easy
    assert lines[0]["lr"] > lines[1]["lr"] > lines[2]["lr"] > 0
    assert lines[2]["lr"] == pytest.approx(0.1 / (3 * 13), rel=1e-3)  # 400 / 32 -> 13 updates per epoch
    assert 0 < lines[0]["time"] < lines[1]["time"] < lines[2]["time"]


def test_the_same_seed_repeats_a_cpu_run_and_another_seed_does_not(data_dir):
    def metrics(seed):
        result = run_cli("--data-dir", data_dir, "--classes", "2,0", "--epochs", "2", "--seed", str(seed), "--quiet")
        assert result.returncode == 0, result.stderr
        return [{k: v for k, v in line.items() if k not in TIMING} for line in json_lines(result)]

    first = metrics(7)
    assert metrics(7) == first
    assert metrics(8) != first


def _stderr_on_a_terminal(*args):
    """Runs the script with stderr on a pseudo-terminal; returns what it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # rows, columns
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "train_cifar10.py")] + list(args),
                            stdout=subprocess.PIPE, stderr=slave, cwd=tempfile.mkdtemp(),
                            env=dict(os.environ, COMET_DISABLE="1"))
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the script ended and closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=300)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(chunks).decode(errors="replace")


def test_a_progress_bar_only_on_a_terminal_and_not_with_quiet(data_dir):
    args = ["--data-dir", data_dir, "--classes", "0,1", "--epochs", "1"]
    assert "epoch 1/1" in _stderr_on_a_terminal(*args)
    assert "epoch 1/1" not in _stderr_on_a_terminal(*args, "--quiet")
    assert "epoch 1/1" not in run_cli(*args).stderr  # stderr is a pipe here


def test_the_flags_resolve_once_into_a_frozen_run_config_with_the_same_defaults():
    import dataclasses

    from commands import train_flags
    from data import CIFAR10_CLASSES, DataSource
    from training.config import RunConfig, resolve

    source = DataSource("cifar10", CIFAR10_CLASSES, load=None)
    flags = train_flags.build_parser().parse_args(["--classes", "automobile,0", "--model", "spec"])
    config = resolve(flags, source, chief=False)
    assert config.classes == (1, 0) and config.class_names == ("automobile", "airplane")
    assert config.classes_tag == "1-0" and config.run_name.startswith("spec-resnet_c1-0_")
    assert config.model == "spec-resnet" and config.quiet  # not rank 0: quiet
    defaults = resolve(train_flags.build_parser().parse_args([]), source)
    assert defaults == dataclasses.replace(RunConfig(), classes=tuple(range(10)), class_names=CIFAR10_CLASSES,
                                           run_name=defaults.run_name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0


def test_gpu_ids_map_to_contexts_as_mxnets_examples_choose_them():
    import mxnet as mx
    from training.devices import contexts

    assert contexts(gpus=[0, 2], available=3) == [mx.gpu(0), mx.gpu(2)]
    assert contexts(gpus=[1], available=2) == [mx.gpu(1)]
    assert contexts(num_gpus=2, available=2) == [mx.gpu(0), mx.gpu(1)]
    assert contexts(0) == [mx.cpu()]
    with pytest.raises(ValueError, match=r"--gpus 0,2 asks for GPU 2, but MXNet sees 2 \(ids 0-1\)"):
        contexts(gpus=[0, 2], available=2)
    with pytest.raises(ValueError, match=r"--num-gpus 3 asks for 3 GPU\(s\), but MXNet sees 2"):
        contexts(num_gpus=3, available=2)


@pytest.mark.parametrize("args, message", [
    (["--image-folder", "{tmp}", "--data-dir", "{tmp}"], "--data-dir would have no effect: it is where CIFAR comes from"),
    (["--rec-prefix", "{tmp}/p", "--data-url", "http://127.0.0.1:9/x"], "--data-url would have no effect"),
    (["--lr-factor", "0.5"], "--lr-factor would have no effect: it is the factor of --lr-mode step"),
    (["--lr-mode", "constant", "--lr-factor", "0.5"], "--lr-factor would have no effect"),
    (["--save-period", "2"], "--save-period would have no effect: checkpoints are saved only with --model-prefix"),
    (["--model", "inception-bn-small", "--augment"], "--augment would have no effect: inception-bn-small always"),
    (["--kv-store", "local"], "--kv-store local would have no effect: it sums gradients over several devices"),
    (["--kv-store", "device", "--gpus", "0"], "--kv-store device would have no effect"),
    (["--no-comet", "--comet-project", "p"], "--comet-project would have no effect: Comet is off"),
    (["--comet-workspace", "w"], "--comet-workspace would have no effect: Comet is off"),  # COMET_DISABLE=1
    (["--export", "x", "--no-comet-model"], "--no-comet-model would have no effect: Comet is off"),
    (["--no-comet-model"], "--no-comet-model would have no effect"),
])
def test_flags_that_would_have_no_effect_are_usage_errors_naming_what_gives_them_effect(args, message, tmp_path, usage):
    assert message in usage(*[a.format(tmp=tmp_path) for a in args])


def test_flags_with_effect_are_accepted(data_dir, tmp_path):
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--lr-mode", "step",
                     "--lr-decay-epoch", "1", "--lr-factor", "0.5", "--model-prefix", str(tmp_path / "m"),
                     "--save-period", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["lr"] for line in result.stdout.splitlines()] == [0.1, 0.05]
