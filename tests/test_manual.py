"""The manual against the code: every command README.md and docs/ show is one its command's parser
accepts; the cheap ones run as a user would copy them (--help, the README's tasks on a small
CIFAR-10 in the default data folder); the ONNX Runtime program of docs/deploy-onnx.md runs as it
stands and answers as predict.py does."""
import glob
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO, run_command
from tools import flag_reference

PAGES = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
# The commands a page may show, as a user types them, and the module whose parser reads their flags:
# those of the flags page, ./train.sh and the page's own generator
PARSERS = dict({run.split()[-1]: module for run, module in flag_reference.COMMANDS},
               **{"./train.sh": "commands.train_flags", "tools.flag_reference": "tools.flag_reference"})
NESTED = {"sweep.py", "launch.py"}  # what follows their -- is a command of its own


def code_lines(path):
    """The lines of a page's code blocks (indented by 4, or fenced, not the Python program),
    continuation lines joined."""
    lines, fenced, language = [], False, ""
    for line in open(path).read().splitlines():
        if line.startswith("```"):
            fenced, language = not fenced, line[3:].strip()
            continue
        if (fenced and language in ("", "sh")) or (not fenced and line.startswith("    ")):
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + line.strip()
            else:
                lines.append(line.strip())
    return lines


def shown_commands():
    """(page, line, script, its arguments) of every command of this project the pages show."""
    found = []
    for page in PAGES:
        for line in code_lines(page):
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            typed = [w for w in words if not re.match(r"^[A-Z_]+=", w)]  # after NAME=value settings
            if not typed or not (typed[0] in ("python", "horovodrun", "./train.sh", "./test.sh")
                                 or typed[0].endswith("/python")):
                continue  # not a command: a line a command prints
            starts = [i for i, w in enumerate(words) if w in PARSERS and (
                words[i - 1] in ("python", "-m", "--") or words[i - 1].endswith("/python") or w == "./train.sh")]
            if starts:
                found.append((os.path.relpath(page, REPO), line, words[starts[0]], words[starts[0] + 1:]))
    return found


def split_nested(script, args):
    if script in NESTED and "--" in args:
        cut = args.index("--")
        return args[:cut], args[cut + 1:]
    return args, []


class Refused(Exception):
    pass


def parse(script, args):
    """Parses a shown command's flags with its command's parser (the nested command too)."""
    import importlib

    args, nested = split_nested(script, args)
    if script == "./train.sh" and args[:1] == ["--gpu-report"]:
        return
    parser = importlib.import_module(PARSERS[script]).build_parser()
    parser.error = lambda message: (_ for _ in ()).throw(Refused(message))
    if script == "sweep.py":  # its training flags follow its --, as train_cifar10.py's
        parser.parse_args(args)
        parse("train_cifar10.py", nested)
        return
    if script == "tools.benchmark":  # and the script it runs beside, as it runs it
        from tools import benchmark

        options = parser.parse_args(args)
        if options.other in PARSERS:
            parse(options.other, benchmark.other_cmd(options)[2:])
        return
    parser.parse_args(args + (["--", *nested] if script == "launch.py" else []))
    inner = [i for i, w in enumerate(nested) if w in PARSERS]
    if inner:
        parse(nested[inner[0]], nested[inner[0] + 1:])


SHOWN = shown_commands()


def test_the_pages_show_commands_of_every_script():
    assert {script for _, _, script, _ in SHOWN} >= {"train_cifar10.py", "predict.py", "sweep.py", "launch.py",
                                                      "./train.sh", "tools.compare_runs", "tools.benchmark",
                                                      "tools.step_profile"}


@pytest.mark.parametrize("page, line, script, args", SHOWN, ids=["%s: %s" % (p, line[:60]) for p, line, _, _ in SHOWN])
def test_every_command_a_page_shows_is_one_its_parser_accepts(page, line, script, args):
    try:
        parse(script, args)
    except SystemExit as e:  # --help
        assert e.code == 0, "%s shows `%s`, which its parser refuses" % (page, line)
    except Refused as e:
        pytest.fail("%s shows `%s`, which its parser refuses: %s" % (page, line, e))


@pytest.mark.parametrize("page, line, script", sorted({(p, line, s) for p, line, s, a in SHOWN if a == ["--help"]}))
def test_each_help_a_page_shows_prints_the_flags(page, line, script):
    if script == "./train.sh":
        script = "train_cifar10.py"
    result = run_command(script if script.endswith(".py") else script.replace(".", "/") + ".py", "--help")
    assert result.returncode == 0 and "usage:" in result.stdout, (page, result.stderr)


# ----------------------------------------------------------------------------------------------
# The README's tasks, as they stand, on a small CIFAR-10 in the default data folder

@pytest.fixture(scope="module")
def user_folder(data_dir, tmp_path_factory):
    """A user's folder and MXNET_HOME whose datasets/cifar10 is the small synthetic CIFAR-10."""
    folder = tmp_path_factory.mktemp("user")
    home = folder / "mxnet-home" / "datasets"
    home.mkdir(parents=True)
    os.symlink(data_dir, home / "cifar10")
    return folder, {"MXNET_HOME": str(folder / "mxnet-home")}


def readme(prefix):
    """The README's command that starts with prefix, as words."""
    lines = [line for page, line, _, _ in SHOWN if page == "README.md" and line.startswith(prefix)]
    assert lines, prefix
    return shlex.split(lines[0], comments=True)


def run_as_shown(words, folder, env):
    assert words[0] == "python"
    return run_command(words[1], *words[2:], cwd=str(folder), env=env)


def test_the_readmes_tasks_run_as_shown(user_folder):
    folder, env = user_folder
    trained = run_as_shown(readme("python train_cifar10.py --classes 0,1"), folder, env)
    assert trained.returncode == 0, trained.stderr
    assert [json.loads(line)["epoch"] for line in trained.stdout.splitlines()] == [0, 1, 2, 3, 4]
    resumable = run_as_shown(readme("python train_cifar10.py --classes 0,1 --model-prefix"), folder, env)
    assert resumable.returncode == 0 and "nothing to resume" in resumable.stderr, resumable.stderr
    done = run_as_shown(readme("python train_cifar10.py --classes 0,1 --model-prefix"), folder, env)
    assert done.returncode == 2 and "has all 5 epochs" in done.stderr  # the same command: it finished
    # predict.py needs an export and a picture
    export = run_command("train_cifar10.py", "--classes", "0,1", "--epochs", "1", "--export", "exported/spec",
                         "--quiet", "--no-comet", cwd=str(folder), env=env)
    assert export.returncode == 0, export.stderr
    write_picture(folder / "photo.jpg")
    predicted = run_as_shown(readme("python predict.py"), folder, env)
    assert predicted.returncode == 0, predicted.stderr
    line = json.loads(predicted.stdout)
    assert line["input"] == "photo.jpg" and line["class"] in ("airplane", "automobile")


def write_picture(path, seed=0):
    """A 32x32 picture of the small CIFAR-10's kind (a class colour and noise), as a file."""
    import cv2

    rng = np.random.RandomState(seed)
    image = np.clip(rng.randint(40, 216, size=(1, 1, 3)) + rng.randint(-40, 41, size=(32, 32, 3)), 0, 255)
    cv2.imwrite(str(path), image.astype(np.uint8))


# ----------------------------------------------------------------------------------------------
# docs/deploy-onnx.md's program

def python_program(page):
    text = open(os.path.join(REPO, "docs", page)).read()
    (program,) = re.findall(r"```python\n(.*?)```", text, re.S)
    return program


def test_the_onnx_runtime_program_answers_as_predict_does(user_folder):
    pytest.importorskip("onnxruntime", reason="no onnxruntime (requirements-onnx.txt)")
    folder, env = user_folder
    if not (folder / "exported" / "spec.onnx").exists():
        assert run_command("train_cifar10.py", "--classes", "0,1", "--epochs", "1", "--export", "exported/spec",
                           "--quiet", "--no-comet", cwd=str(folder), env=env).returncode == 0
    pictures = []
    for seed in range(3):
        pictures.append("picture%d.png" % seed)
        write_picture(folder / pictures[-1], seed)
    (folder / "classify.py").write_text(python_program("deploy-onnx.md"))
    ran = subprocess.run([sys.executable, "classify.py", *pictures], cwd=str(folder), capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    predicted = run_command("predict.py", "exported/spec.onnx", *pictures, cwd=str(folder), env=env)
    assert predicted.returncode == 0, predicted.stderr
    theirs = [line.split() for line in ran.stdout.splitlines()]
    ours = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [(t[0], t[1]) for t in theirs] == [(o["input"], o["class"]) for o in ours]
    assert [float(t[2]) for t in theirs] == pytest.approx([o["probability"] for o in ours], abs=1e-5)


# ----------------------------------------------------------------------------------------------
# Links

def anchors(path):
    """The anchors GitHub makes of a page's headings: lowercase, punctuation dropped, spaces as -."""
    found = set()
    fenced = False
    for line in open(path).read().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", title)))
    return found


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=[os.path.relpath(p, REPO) for p in PAGES])
def test_every_link_of_a_page_leads_to_a_file_and_heading_there(page):
    broken = []
    for target in LINK.findall(open(page).read()):
        if re.match(r"^[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(full):
            broken.append(target)
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            broken.append(target)
    assert broken == []
