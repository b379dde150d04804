"""docs/flags.md: exactly what tools.flag_reference generates from the parsers, and no flag of a
command's --help missing from it."""
import re

import pytest

from helpers import COMMANDS, run_command, run_script
from tools import flag_reference

OPTION = re.compile(r"^  (-[\w-]+(?:, -[\w-]+)*)", re.M)  # the flags that start a line of --help


def page_sections():
    """{the command as a user runs it: its section of the page}."""
    with open(flag_reference.PAGE) as f:
        text = f.read()
    return {part.split("\n", 1)[0]: part for part in text.split("\n## ")[1:]}


def test_the_page_is_what_the_parsers_generate():
    with open(flag_reference.PAGE) as f:
        assert f.read() == flag_reference.page(), "regenerate it: python -m tools.flag_reference --write"


@pytest.mark.parametrize("run", [run for run, _ in flag_reference.COMMANDS])
def test_every_flag_of_a_commands_help_is_on_the_page(run):
    script = run.split()[-1] if " -m " not in run else run.split()[-1].replace(".", "/") + ".py"
    # the PyTorch scripts are not this project's commands: they run as a user runs them
    result = run_command(script, "--help") if script in COMMANDS else run_script(script, "--help")
    assert result.returncode == 0, result.stderr
    flags = {flag for line in OPTION.findall(result.stdout) for flag in line.split(", ")} - {"-h", "--help"}
    assert flags, result.stdout
    section = page_sections()[run]
    assert sorted(flag for flag in flags if "`%s`" % flag not in section and "`%s " % flag not in section) == []


def test_the_tool_prints_the_page_and_writes_it(tmp_path, monkeypatch, capsys):
    assert flag_reference.main([]) == 0
    assert capsys.readouterr().out == flag_reference.page()
    monkeypatch.setattr(flag_reference, "PAGE", str(tmp_path / "flags.md"))
    assert flag_reference.main(["--write"]) == 0
    assert (tmp_path / "flags.md").read_text() == flag_reference.page()
