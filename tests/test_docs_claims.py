"""What the code's own text points to exists: the docs it names, the options it names."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from tilewise.cli.app import cli

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "src" / "tilewise").rglob("*.py"))


def test_every_doc_named_in_the_code_exists():
    named = {
        (path.relative_to(ROOT), doc)
        for path in SOURCES
        for doc in re.findall(r"docs/[\w/.-]+\.md", path.read_text())
    }
    assert named, "the pattern finds the docs the code names"
    assert [(str(p), d) for p, d in sorted(named) if not (ROOT / d).is_file()] == []


def test_every_command_option_named_in_the_code_exists():
    named = {
        (command, option)
        for path in SOURCES
        for command, option in re.findall(r"tilewise (\w+) (--[\w-]+)", path.read_text())
    }
    assert named, "the pattern finds the options the code names"
    missing = []
    for command, option in sorted(named):
        help_text = CliRunner().invoke(cli, [command, "--help"]).output
        if option not in help_text:
            missing.append(f"tilewise {command} {option}")
    assert missing == []
