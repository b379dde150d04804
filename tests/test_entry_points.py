"""The house rules: every entry point makes the process ready before MXNet loads (through
common.runtime), tools that only read and draw never load MXNet, importing a library module
changes nothing in the process, and the packages import one way without cycles."""
import ast
import os
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO

LAYERS = (("common",), ("models", "data"), ("training",), ("tools", "commands"))  # lowest first
NEVER_LOAD_MXNET = {"launch.py", "tools/compare_runs.py", "tools/torch_airbench94.py", "tools/torch_best.py",
                    "tools/torch_reference.py"}  # they read, start processes, draw, or are PyTorch

# Runs an entry point (a file, or a module with -m) in this interpreter after installing a
# guard on the import system: MXNet imported before common.runtime says the process is ready
# ends the process with code 97; with forbid, any import of MXNet ends it with 98.
GUARD = textwrap.dedent("""
    import importlib.abc, os, runpy, sys
    kind, target, forbid, argv = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4:]

    class Guard(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "mxnet":
                runtime = sys.modules.get("common.runtime")
                if forbid:
                    sys.stderr.write("GUARD: MXNet loaded by a tool that must not load it\\n")
                    os._exit(98)
                if runtime is None or not runtime.ready():
                    sys.stderr.write("GUARD: MXNet loaded before common.runtime prepared the process\\n")
                    os._exit(97)
            return None

    sys.meta_path.insert(0, Guard())
    sys.argv = [target] + argv
    if kind == "file":
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
""")


def run_guarded(entry, *argv, forbid=False, cwd=REPO):
    """Runs entry ('train_cifar10.py', or 'tools/benchmark.py' as the module tools.benchmark)
    under the guard; returns the CompletedProcess."""
    if entry.startswith("tools/"):
        kind, target = "module", entry[:-3].replace("/", ".")
    else:
        kind, target = "file", os.path.join(REPO, entry)
    return subprocess.run([sys.executable, "-c", GUARD, kind, target, "1" if forbid else "0", *argv],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=REPO, COMET_DISABLE="1"))


def entry_points():
    """Every runnable file: the scripts at the top and the tools (a __main__ block each)."""
    found = [name for name in sorted(os.listdir(REPO)) if name.endswith(".py")]
    found += ["tools/" + name for name in sorted(os.listdir(os.path.join(REPO, "tools")))
              if name.endswith(".py") and name != "__init__.py"]
    return [name for name in found
            if '__name__ == "__main__"' in open(os.path.join(REPO, name)).read()]


def test_the_entry_points_are_the_scripts_and_the_tools():
    assert entry_points() == ["export_model.py", "launch.py", "pack_images.py", "predict.py", "sweep.py", "train_cifar10.py",
                              "tools/benchmark.py", "tools/compare_runs.py", "tools/compare_runtimes.py",
                              "tools/flag_reference.py", "tools/gpu_report.py", "tools/step_profile.py",
                              "tools/torch_airbench94.py", "tools/torch_best.py", "tools/torch_reference.py"]


@pytest.mark.parametrize("entry", entry_points())
def test_no_entry_point_loads_mxnet_before_the_process_is_prepared(entry):
    # --help reaches every import at the top of an entry point and of what its main imports
    # first; the GPU report loads MXNet at its end.
    result = run_guarded(entry, *([] if entry == "tools/gpu_report.py" else ["--help"]),
                         forbid=entry in NEVER_LOAD_MXNET)
    assert "GUARD" not in result.stderr and result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_the_guard_catches_a_script_that_loads_mxnet_first(tmp_path):
    script = tmp_path / "careless.py"
    script.write_text("import mxnet\nfrom common import runtime\nruntime.start(lambda argv: 0)\n")
    result = run_guarded(str(script))
    assert result.returncode == 97 and "before common.runtime prepared" in result.stderr
    assert run_guarded(str(script), forbid=True).returncode == 98


def test_compare_runs_reads_and_draws_without_loading_mxnet(tmp_path):
    for name, accuracies in (("a", (0.8, 0.9)), ("b", (0.7, 0.95))):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "metrics.jsonl").write_text("".join(
            '{"epoch": %d, "train_loss": 0.5, "train_acc": 0.8, "test_acc": %s, "lr": 0.1, "time": %d}\n'
            % (epoch, acc, 10 * (epoch + 1)) for epoch, acc in enumerate(accuracies)))
    result = run_guarded("tools/compare_runs.py", str(tmp_path / "a"), str(tmp_path / "b"), "--plot",
                         str(tmp_path / "both.png"), "--group-plot", str(tmp_path / "group.png"), forbid=True)
    assert result.returncode == 0, result.stderr
    assert "0.9500" in result.stdout and "group a: 2 runs" in result.stdout  # same settings: a group
    assert (tmp_path / "both.png").stat().st_size > 0 and (tmp_path / "group.png").stat().st_size > 0


def library_modules():
    modules = []
    for package in [p for layer in LAYERS for p in layer]:
        for name in sorted(os.listdir(os.path.join(REPO, package))):
            if name.endswith(".py"):
                modules.append(package if name == "__init__.py" else "%s.%s" % (package, name[:-3]))
    return modules


# The parts of sweep.py, Optuna's users through and through: commands/sweep.py imports them once
# it has found Optuna. Importing them changes nothing either.
OPTUNA_USERS = ["commands.sweep_results", "commands.sweep_space", "commands.sweep_study", "commands.sweep_trial"]


def test_importing_every_library_module_changes_nothing_in_the_process():
    code = textwrap.dedent("""
        import json, os, signal, sys, threading
        from common import runtime
        runtime.prepare()  # as an entry point would; MXNet is loaded from here on
        before = (dict(os.environ), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
                  signal.getsignal(signal.SIGUSR1), threading.active_count(), os.getcwd())
        loaded = set(sys.modules)
        for name in %r:
            __import__(name)
        heavy = sorted({"gluoncv", "comet_ml", "onnx", "onnxruntime", "matplotlib", "tqdm", "optuna"}
                       & (set(sys.modules) - loaded))  # optional, or slow to import: when used
        for name in %r:
            __import__(name)
        after = (dict(os.environ), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
                 signal.getsignal(signal.SIGUSR1), threading.active_count(), os.getcwd())
        print(json.dumps({"unchanged": before == after, "heavy_imported": heavy}))
    """ % ([m for m in library_modules() if m not in OPTUNA_USERS], OPTUNA_USERS))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.strip() == '{"unchanged": true, "heavy_imported": []}'


def project_imports(package):
    """The project packages the modules of `package` import (outside `package` itself)."""
    packages = {p for layer in LAYERS for p in layer}
    found = set()
    for folder, _, files in os.walk(os.path.join(REPO, package)):
        for name in files:
            if name.endswith(".py"):
                tree = ast.parse(open(os.path.join(folder, name)).read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        found.update(alias.name.split(".")[0] for alias in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        found.add(node.module.split(".")[0])
    return (found & packages) - {package}


def test_packages_import_only_the_layers_below_them():
    level = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    upward = {(package, other) for package in level for other in project_imports(package)
              if level[other] >= level[package]}
    assert upward == set()  # which also leaves no room for a cycle
    assert project_imports("data") == {"common"} and project_imports("common") == set()
