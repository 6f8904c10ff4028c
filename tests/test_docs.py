"""The README and docs/ stay in step with the repository and the CLI.

Every relative link must reach a file (and, into a Markdown file, a heading), and every
``labmeter ...`` command shown in code must exist: ``--help`` runs for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from labmeter.cli.main import app

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# `labmeter` as a command: not part of a path, a package spec, a name or an identifier
# (``/opt/labmeter``, ``labmeter[agent]``, ``labmeter-collector``, ``labmeter_...``), except
# as the program in ``.venv/bin/labmeter``.
COMMAND = re.compile(r"(?:(?<=bin/)|(?<![\w/.:-]))labmeter(?![\w/.\[:-])")
WORD = re.compile(r"[a-z][a-z0-9-]*")


def _split(text: str) -> tuple[list[str], list[str]]:
    """(prose lines, code texts): fenced blocks line by line, inline code spans."""
    prose, code, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            code += [m.group(2) for m in CODE_SPAN.finditer(line)]
            prose.append(CODE_SPAN.sub("", line))
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6}\s+(.*)", line)):
            base = slug(m.group(1))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def links() -> list[tuple[Path, str]]:
    out = []
    for page in PAGES:
        prose, _ = _split(page.read_text())
        for line in prose:
            out += [(page, m.group(1)) for m in LINK.finditer(line)]
    return out


def shown_commands() -> list[tuple[Path, str]]:
    out = []
    for page in PAGES:
        for code in _split(page.read_text())[1]:
            for m in COMMAND.finditer(code):
                rest = code[m.end() :].split()
                if rest[:1] == ["labmeter"]:  # `sudo -u labmeter labmeter ...`: the user
                    continue
                out.append((page, " ".join(["labmeter", *rest]).strip()))
    return out


def resolve(command: str) -> list[str]:
    """The subcommand path of a shown command; fails on a word or option the CLI lacks."""
    node: Any = typer.main.get_command(app)
    path: list[str] = []
    tokens = command.split()[1:]
    while tokens and (commands := getattr(node, "commands", None)) is not None:
        token = tokens[0]  # a group (typer's groups are no click.Group): the next word
        if token in commands:
            node = commands[token]
            path.append(token)
            tokens.pop(0)
        elif WORD.fullmatch(token):
            raise AssertionError(f"{command!r}: no command {' '.join([*path, token])!r}")
        else:  # an option, a placeholder, a value
            break
    known = {opt for param in node.params for opt in (*param.opts, *param.secondary_opts)}
    for token in tokens:
        if token in ("#", "|", "&&", ">", ";"):  # a comment or the next command
            break
        option = token.split("=", 1)[0]
        if option.startswith("--") and len(option) > 2 and option not in known | {"--help"}:
            raise AssertionError(f"{command!r}: {' '.join(path) or 'labmeter'} has no {option}")
    return path


def test_the_readme_is_a_newcomers_page() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 260


def _id(value: object) -> str:
    return str(value.relative_to(ROOT)) if isinstance(value, Path) else str(value)


@pytest.mark.parametrize(("page", "target"), links(), ids=_id)
def test_every_relative_link_resolves(page: Path, target: str) -> None:
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
        return
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
    assert ROOT in resolved.parents or resolved == ROOT, f"{target} leaves the repository"
    if anchor and resolved.suffix == ".md":
        assert anchor in anchors(resolved), f"{page.relative_to(ROOT)}: no heading #{anchor}"


def test_the_pages_show_commands() -> None:
    readme = [c for p, c in shown_commands() if p.name == "README.md"]
    assert any(c.startswith("labmeter demo") for c in readme)
    assert any(c.startswith("labmeter agent check") for c in readme)


def _first_shown() -> dict[str, Path]:
    """Each distinct command shown, with the first page showing it."""
    out: dict[str, Path] = {}
    for page, command in shown_commands():
        out.setdefault(command, page)
    return out


@pytest.mark.parametrize(("command", "page"), sorted(_first_shown().items()), ids=_id)
def test_every_shown_command_exists(command: str, page: Path) -> None:
    path = resolve(command)
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, f"{page.relative_to(ROOT)}: {command}\n{result.output}"
    assert "Usage:" in result.output


def test_a_command_that_does_not_exist_is_caught() -> None:
    with pytest.raises(AssertionError, match="no command 'agent chek'"):
        resolve("labmeter agent chek -c agent.toml")
    with pytest.raises(AssertionError, match="demo has no --duraton"):
        resolve("labmeter demo --duraton 30")
    assert resolve("labmeter inventory check FILE") == ["inventory", "check"]
    assert resolve("labmeter agent -c agent.toml") == ["agent"]
    assert slug("B. Server without Docker (Debian/Ubuntu, apt + venv + systemd)") == (
        "b-server-without-docker-debianubuntu-apt--venv--systemd"
    )


def test_the_wire_contract_page_names_what_the_code_defines() -> None:
    """docs/architecture.md lists every state, category, event type and refusal reason."""
    from labmeter import contract

    page = (ROOT / "docs" / "architecture.md").read_text()
    reasons = set()
    for source in (ROOT / "labmeter").rglob("*.py"):
        reasons |= set(re.findall(r'PayloadRejected\(\s*"([a-z_]+)"', source.read_text()))
    assert len(reasons) > 15
    names = [*contract.STATES, *contract.CATEGORIES, *contract.EVENT_TYPES, *sorted(reasons)]
    assert [name for name in names if f"`{name}`" not in page] == []
