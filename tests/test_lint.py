"""The code passes the linter the project configures (ruff.toml): pyflakes, pycodestyle, blind
excepts, with the `noqa` markers the code carries."""
import subprocess
import sys

from helpers import REPO


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
