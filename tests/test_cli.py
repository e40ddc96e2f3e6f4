"""The CLI surface: discoverable, and stubs never pretend to succeed."""

import subprocess
import sys

import pytest

from kws_kd.cli.main import SUBCOMMAND_MODULES, build_parser, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMAND_MODULES:
        assert name.replace("_", "-") in out


@pytest.mark.parametrize("name", [n.replace("_", "-") for n in SUBCOMMAND_MODULES])
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: kws-kd " + name in capsys.readouterr().out


def test_console_script_installed():
    proc = subprocess.run([sys.executable, "-m", "kws_kd.cli.main", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("kws-kd ")


def test_parser_requires_a_command():
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([])
    assert exc.value.code != 0
