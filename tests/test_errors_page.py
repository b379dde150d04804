"""docs/when-something-fails.md lists every error message in the code: each message a command can
end with (a usage error, a raised user error, an exit line) is found in the sources, the shell
scripts' `error:` lines too, and its fixed text looked up on the page. The other way round, each
line the page quotes is one the code can print."""
import ast
import functools
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


@functools.lru_cache(None)
def sources():
    """(path in the repository, syntax tree) of the product's Python files, subpackages included."""
    paths = sorted(os.path.relpath(os.path.join(folder, name), REPO)
                   for package in PACKAGES for folder, _, names in os.walk(os.path.join(REPO, package))
                   for name in names if name.endswith(".py"))
    return [(path, ast.parse(open(os.path.join(REPO, path)).read())) for path in paths]


def messages():
    """(file, line, message template) of every message call in the product's sources."""
    found = []
    for path, tree in sources():
        for node in ast.walk(tree):
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


# The page quotes messages as `error: ...`, `warning: ...` and as bulleted lines (usage errors);
# capital words stand for what the code fills in, "..." for a remedy left out.
QUOTED = re.compile(r"`((?:error|warning): [^`]+)`|^\s*- `([^`]+)`", re.M)
PREFIX = re.compile(r"^(?:error|warning): |^argument [-\w]+: ")
PYTHONS_OWN = "[Errno N] REASON: 'FILE'"  # an OSError as Python words it
FILLED_IN = re.compile(r"%(?:\.\d+)?[sdrgf]|%04d")


def quoted_lines():
    page = open(PAGE).read()
    lines = {" ".join((a or b).split()) for a, b in QUOTED.findall(page)}
    return sorted(line for line in lines if " " in line and not line.startswith("python ")
                  and not line.endswith(".py") and PYTHONS_OWN not in line)


def code_texts():
    """Every string constant of the product's sources and every shell `error:` line, as its fixed
    pieces (between them the code fills something in) and a regular expression of it."""
    texts = {text for _, _, text in shell_messages()}
    for _, tree in sources():
        texts |= {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    found = []
    for text in texts:
        pieces = [p.strip() for p in FILLED_IN.split(PREFIX.sub("", " ".join(text.split())))]
        if len(re.findall(r"[a-z]{2,}", " ".join(pieces), re.I)) >= 2:  # not "%s (%s)"
            found.append((pieces, re.compile(joined(pieces) + r"\s*")))
    return found


def joined(pieces):
    return r"\s*" + ".*?".join(map(re.escape, pieces))


def begins(pieces, rest):
    """Whether rest is how a text of these pieces begins: a line the page cuts off with "..."."""
    rest = rest.strip()
    for k, piece in enumerate(pieces):
        head = re.compile(joined(pieces[:k]) + ".*?" if k else "")
        if any(head.fullmatch(rest, 0, j) and piece.startswith(rest[j:].strip()) for j in range(len(rest) + 1)):
            return True
    return False


def printed_by_the_code(line, texts):
    """Whether line is a run of code texts one after another (a message, its remedy, ...)."""
    elided = line.endswith("...")
    line = line[:-3] if elided else line
    candidates = [(pieces, rx) for pieces, rx in texts
                  if all(p in line for p in pieces if p) or elided and next(p for p in pieces if p) in line]

    @functools.lru_cache(None)
    def covered(start):
        if not line[start:].strip(" .:;()"):
            return True
        return any(elided and begins(pieces, line[start:])
                   or any(rx.fullmatch(line, start, end) and covered(end) for end in range(len(line), start, -1))
                   for pieces, rx in candidates)
    return covered(0)


def test_every_line_the_page_quotes_is_one_the_code_prints():
    texts = code_texts()
    assert printed_by_the_code("PATH.onnx does not exist", texts)
    assert not printed_by_the_code("PATH.onnx does not exist any more", texts)  # the check can fail
    lines = [PREFIX.sub("", line) for line in quoted_lines()]
    assert len(lines) > 120
    stale = [line for line in lines if not printed_by_the_code(line, texts)]
    assert not stale, "docs/when-something-fails.md quotes lines the code does not print: %s" % stale
