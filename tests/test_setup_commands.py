"""./train.sh and ./test.sh's set-up (tools/env.sh): which MXNet set, which Python, when the
environment is built and when reused. Run on a copy of the project's set-up files with a stand-in
Python that records what it is asked to do, so no 2 GB GPU set is downloaded here; the real
builds are what .ci/run (./test.sh) does on every fresh machine."""
import os
import shutil
import stat
import subprocess

import pytest

from helpers import REPO

SETUP_FILES = ["tools/env.sh", "requirements.txt", "requirements-cpu.txt", "requirements-common.txt", "requirements-onnx.txt",
               "requirements-sweep.txt", "requirements-test.txt"]

TOOLS = ["bash", "cat", "cp", "cut", "dirname", "basename", "mkdir", "rm", "sha256sum"]

# A Python 3.11 that records its calls in $CALLS: `-m venv DIR` makes DIR/bin/python (itself),
# pip installs are only recorded.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$0 $*" >> "$CALLS"
case "$1" in
  -c) exit 0 ;;
  --version) echo "Python 3.11.9" ;;
  -m) if [ "$2" = venv ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; fi ;;
esac
"""


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def project(tmp_path):
    """A copy of the set-up files, a bin/ folder for stand-in commands, and a runner of env.sh."""
    root = tmp_path / "project"
    for name in SETUP_FILES:
        os.makedirs(root / os.path.dirname(name), exist_ok=True)
        shutil.copy(os.path.join(REPO, name), root / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:  # only these on PATH: no Python of the machine's is found by accident
        os.symlink(shutil.which(tool), bin_dir / tool)
    calls = tmp_path / "calls.log"

    def run(script, env=None, python=None):
        environment = {"PATH": str(bin_dir), "CALLS": str(calls),
                       "PYTHON": python or executable(tmp_path / "python3.11", FAKE_PYTHON)}
        environment.update(env or {})
        result = subprocess.run(["bash", "-c", ". %s/tools/env.sh; %s" % (root, script)],
                                capture_output=True, text=True, env=environment, timeout=60)
        result.calls = calls.read_text().splitlines() if calls.exists() else []
        calls.unlink(missing_ok=True)
        return result

    run.root, run.bin = root, bin_dir
    return run


@pytest.mark.skipif(os.path.exists("/proc/driver/nvidia/version"), reason="this machine has an NVIDIA driver")
def test_the_cpu_set_without_a_driver_the_gpu_set_with_one_and_the_setting_wins(project):
    assert project("choose_build").stdout.strip() == "cpu"
    executable(project.bin / "nvidia-smi", "#!/usr/bin/env bash\necho 'GPU 0: Tesla P100'\n")
    assert project("choose_build").stdout.strip() == "gpu"
    assert project("choose_build", env={"CIFAR_MXNET_BUILD": "cpu"}).stdout.strip() == "cpu"
    bad = project("choose_build", env={"CIFAR_MXNET_BUILD": "tpu"})
    assert bad.returncode == 2 and "CIFAR_MXNET_BUILD=tpu: use cpu, gpu or auto" in bad.stderr


def test_the_environment_is_built_once_reused_and_rebuilt_when_a_requirement_changes(project):
    first = project("ensure_env; echo $VENV", env={"CIFAR_MXNET_BUILD": "gpu"})
    assert first.returncode == 0, first.stderr
    venv = str(project.root / ".venv-gpu")
    assert first.stdout.strip() == venv and "setting up %s: the gpu set (requirements.txt)" % venv in first.stderr
    installs = [c for c in first.calls if "pip install" in c and "--upgrade pip" not in c]
    assert len(installs) == 2 and installs[0].endswith(
        "-r %s/requirements.txt -r %s/requirements-sweep.txt -r %s/requirements-test.txt" % ((project.root,) * 3))
    # onnxruntime's metadata asks for a numpy MXNet cannot run with: its set goes in unresolved
    assert installs[1].endswith("--no-deps -r %s/requirements-onnx.txt" % project.root)
    again = project("ensure_env", env={"CIFAR_MXNET_BUILD": "gpu"})
    assert again.returncode == 0 and again.stderr == ""
    assert not any("venv" in c or "pip" in c for c in again.calls)  # reused as it is
    for changed_file in ("requirements-common.txt", "requirements-onnx.txt", "requirements-sweep.txt"):
        with open(project.root / changed_file, "a") as f:
            f.write("six==1.16.0\n")
        changed = project("ensure_env", env={"CIFAR_MXNET_BUILD": "gpu"})
        assert "setting up" in changed.stderr and any("-m venv %s" % venv in c for c in changed.calls)
    cpu = project("ensure_env", env={"CIFAR_MXNET_BUILD": "cpu"})  # its own folder beside it
    assert any(c.endswith("-r %s/requirements-cpu.txt -r %s/requirements-sweep.txt -r %s/requirements-test.txt"
                          % ((project.root,) * 3)) for c in cpu.calls)
    assert os.path.isdir(venv) and os.path.isdir(project.root / ".venv-cpu")


def test_an_interrupted_build_is_redone(project):
    failing = FAKE_PYTHON.replace('esac', 'esac\n[ "$2" = pip ] && [ "$3" = install ] && [ "$4" = --quiet ] '
                                  '&& [ "$6" = -r ] && exit 1\nexit 0')
    python = executable(project.root / "python-failing", failing)
    broken = project("ensure_env", env={"CIFAR_MXNET_BUILD": "cpu"}, python=python)
    assert broken.returncode != 0
    retried = project("ensure_env", env={"CIFAR_MXNET_BUILD": "cpu"})
    assert "setting up" in retried.stderr and retried.returncode == 0


def test_without_a_python_from_3_8_to_3_11_one_line_says_so(project, tmp_path):
    too_new = executable(tmp_path / "python3", "#!/usr/bin/env bash\n"
                         "case \"$1\" in -c) exit 1 ;; --version) echo 'Python 3.12.1' ;; esac\n")
    shutil.copy(too_new, project.bin / "python3")
    result = project("choose_python", python="python3")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no Python 3.8-3.11 found (Python 3.12.1): MXNet 1.9.1 needs numpy<1.24")
