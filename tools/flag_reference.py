"""docs/flags.md: every flag of every command, generated from the commands' parsers.

    python -m tools.flag_reference --write     # rewrites docs/flags.md
    python -m tools.flag_reference             # prints it

The page is never edited by hand: a test checks that it is what this prints, and that each
command's --help has no flag the page lacks.
"""
import argparse
import importlib
import os
import re
import sys

from common import runtime
from common.cli import ArgumentParser, command

PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "flags.md")

# (how a user runs it, the module whose build_parser() makes its parser), in the page's order
COMMANDS = (
    ("python train_cifar10.py", "commands.train_flags"),
    ("python predict.py", "commands.predict"),
    ("python export_model.py", "commands.export_model"),
    ("python pack_images.py", "commands.pack_images"),
    ("python sweep.py", "commands.sweep"),
    ("python launch.py", "commands.launch"),
    ("python -m tools.compare_runs", "tools.compare_runs"),
    ("python -m tools.compare_runtimes", "tools.compare_runtimes"),
    ("python -m tools.benchmark", "tools.benchmark"),
    ("python -m tools.step_profile", "tools.step_profile"),
    ("python tools/torch_reference.py", "tools.torch_reference"),
    ("python tools/torch_best.py", "tools.torch_best"),
    ("python tools/torch_airbench94.py", "tools.torch_airbench94"),
)

INTRODUCTION = """# Every flag of every command

Generated from the commands' parsers by `python -m tools.flag_reference --write`; `--help` of
each command prints the same. Defaults are those of the command line: a recipe (`--recipe`)
changes some of `train_cifar10.py`'s, as [its page](fast94.md) says. Switches (no value) are off
unless given.
"""


def parser_of(module):
    return importlib.import_module(module).build_parser()


def anchor(run):
    """The page's anchor of a command's section, as GitHub makes it from the heading."""
    return re.sub(r"[^\w\- ]", "", run.lower()).replace(" ", "-")


def flag_cell(action):
    if not action.option_strings:
        return "`%s`" % (action.metavar or action.dest)
    names = ", ".join("`%s`" % name for name in action.option_strings)
    if action.nargs == 0:
        return names
    if action.choices:
        value = "{%s}" % ",".join(str(choice) for choice in action.choices)
    else:
        value = action.metavar or action.dest.upper()
    return "%s `%s`" % (names, str(value).replace("|", "\\|"))


def default_cell(action):
    if action.nargs == 0 or action.default in (None, "", argparse.SUPPRESS) or not action.option_strings:
        return ""
    if isinstance(action.default, (list, tuple)):
        return "`%s`" % ",".join(map(str, action.default))
    return "`%s`" % (action.default,)


def help_cell(action):
    text = (action.help or "").replace("%%", "%").replace("|", "\\|")
    return " ".join(text.split())


def section(run, parser):
    lines = ["## %s" % run, "", " ".join(parser.description.split()), ""]
    for group in parser._action_groups:  # argparse keeps a parser's groups only there
        actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        title = {"positional arguments": "arguments", "options": "options"}.get(group.title, group.title)
        lines += ["### %s: %s" % (run.split()[-1], title), "", "| flag | default | what it does |",
                  "| --- | --- | --- |"]
        lines += ["| %s | %s | %s |" % (flag_cell(a), default_cell(a), help_cell(a)) for a in actions]
        lines.append("")
    return lines


def page():
    lines = [INTRODUCTION.rstrip("\n"), ""]
    lines += ["- [%s](#%s)" % (run, anchor(run)) for run, _ in COMMANDS]
    lines.append("")
    for run, module in COMMANDS:
        lines += section(run, parser_of(module))
    return "\n".join(lines).rstrip("\n") + "\n"


def build_parser():
    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite docs/flags.md instead of printing it")
    return parser


@command
def main(argv=None):
    args = build_parser().parse_args(argv)
    text = page()
    if args.write:
        from common.files import atomic_write

        with atomic_write(PAGE) as tmp, open(tmp, "w") as f:
            f.write(text)
        print("wrote %s" % PAGE)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(runtime.start(main))  # the commands' parsers import MXNet
