"""docs/when-something-fails.md lists every error message in the code: each message a command can
end with (a usage error, a raised user error, an exit line) is found in the sources, the shell
scripts' `error:` lines too, and its fixed text looked up on the page."""
import ast
import os
import re

import pytest

from helpers import REPO

PAGE = os.path.join(REPO, "docs", "when-something-fails.md")
PACKAGES = ("commands", "common", "data", "models", "training", "tools")
# Calls whose first argument is a message a user can meet: argparse's and our usage errors, the
# errors a command turns into its `error:` line, and the value errors the flag checks turn into
# usage errors.
MESSAGE_CALLS = {"error", "refuse", "exit", "ArgumentTypeError", "AmxError", "DataError", "EngineError", "CheckpointError",
                 "ModelError", "OnnxError", "GpuError", "CudaLibraryError", "LaunchError",
                 "RunFolderError", "SideFailed", "ValueError", "SpaceError", "StorageError", "TrialError",
                 "UserError"}
# Value errors no flag reaches (the flags are checked before): programming errors, not messages.
INTERNAL = {("training/schedules.py", "ValueError"), ("training/tta.py", "ValueError")}
PLACEHOLDER = re.compile(r"%(\.\d+)?[sdrgf]|%04d")


def template(node):
    """The fixed text of a message expression, placeholders as %s: 'a %s' % x, 'a' + 'b'."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return template(node.left)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return (template(node.left) or "%s") + (template(node.right) or "%s")
    return None


def messages():
    """(file, line, message template) of every message call in the product's sources."""
    files = [os.path.join(p, f) for p in PACKAGES for f in sorted(os.listdir(os.path.join(REPO, p)))
             if f.endswith(".py")]
    found = []
    for path in files:
        for node in ast.walk(ast.parse(open(os.path.join(REPO, path)).read())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in MESSAGE_CALLS or (path, name) in INTERNAL:
                continue
            text = template(node.args[-1] if name == "refuse" else node.args[0])
            if text and text.strip("%s :.") != "":
                found.append((path, node.lineno, text))
    return found


SHELL_SCRIPTS = ("train.sh", "test.sh", os.path.join("tools", "env.sh"))
SHELL_ERROR = re.compile(r'echo ("error: .*?)\s*>&2', re.S)  # echo "part" \<newline> "part" ... >&2
SHELL_VALUE = re.compile(r"\$\((?:[^()]|\([^()]*\))*\)|\$\{?\w+\}?")  # $(command), $NAME, ${NAME}


def shell_messages():
    """(file, line, message template) of every `echo "error: ..." >&2` in the shell scripts, the
    values they fill in as %s."""
    found = []
    for path in SHELL_SCRIPTS:
        source = open(os.path.join(REPO, path)).read()
        for match in SHELL_ERROR.finditer(source):
            parts = re.findall(r'"((?:[^"\\]|\\.|\$\([^)]*\))*)"', match.group(1))
            found.append((path, source[:match.start()].count("\n") + 1, SHELL_VALUE.sub("%s", " ".join(parts))))
    return found


def fragments(text):
    """The fixed pieces of a template worth looking up: those of 12 characters or more, or its
    longest piece where none is that long."""
    pieces = [" ".join(p.replace("error: ", "").split()).strip(" .,;:()") for p in PLACEHOLDER.split(text) if p]
    long = [p for p in pieces if len(p) >= 12]
    return long or [max(pieces, key=len)]


def test_the_scan_finds_the_messages_it_should():
    found = {text for _, _, text in messages()}
    assert "--coarse-labels goes with --dataset cifar100" in found  # a usage error
    assert "%s is missing; %s" in found  # a raised user error
    assert len(found) > 90
    shell = {text for _, _, text in shell_messages()}
    assert "error: CIFAR_MXNET_BUILD=%s: use cpu, gpu or auto" in shell and len(shell) >= 3


MESSAGES = messages() + shell_messages()


@pytest.mark.parametrize("path, line, text", MESSAGES, ids=["%s:%d" % (p, n) for p, n, _ in MESSAGES])
def test_every_error_message_in_the_code_is_on_the_page(path, line, text):
    page = " ".join(open(PAGE).read().split())
    missing = [piece for piece in fragments(text) if piece not in page]
    assert not missing, "%s:%d: %r is not on docs/when-something-fails.md" % (path, line, missing)
