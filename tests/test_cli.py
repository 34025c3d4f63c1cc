"""The `vla-jax` entry point: every subcommand answers --help, bad input is one line."""

import subprocess
import sys

import pytest

from vla_jax import cli


@pytest.mark.parametrize("name", sorted(cli.SUBCOMMANDS))
def test_every_subcommand_answers_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: vla-jax {name}")


def test_top_level_help_lists_every_subcommand(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in out


def test_unknown_subcommand_is_one_clear_line():
    proc = subprocess.run([sys.executable, "-m", "vla_jax.cli", "trian"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown command 'trian'" in proc.stderr
    assert "Traceback" not in proc.stderr
