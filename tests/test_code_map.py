"""The code map is the packages' docstrings: each names every module (and subpackage) it holds."""
import ast
import os
import re

import pytest

from helpers import REPO

PACKAGES = ["common", "models", "data", "training", "training/recipes", "commands", "tools"]


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_docstring_names_each_of_its_modules(package):
    folder = os.path.join(REPO, package)
    with open(os.path.join(folder, "__init__.py")) as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    modules = [name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py"]
    modules += [name for name in os.listdir(folder) if os.path.isfile(os.path.join(folder, name, "__init__.py"))]
    assert [m for m in sorted(modules) if not re.search(r"\b%s\b" % re.escape(m), doc)] == []


def test_every_package_is_on_the_map():
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__")) and d not in ("tests", "docs", "runs")]
        if "__init__.py" in files:
            found.append(os.path.relpath(root, REPO))
    assert sorted(found) == sorted(PACKAGES)
