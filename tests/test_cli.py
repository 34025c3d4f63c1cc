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


@pytest.mark.parametrize("name", ["sim-collect", "sim-eval", "export", "convert-episodes", "convert-hf"])
def test_out_that_is_a_file_is_one_line_for_every_subcommand(name, tmp_path, capsys):
    """Every subcommand with --out: a file there is refused before the command runs."""
    (tmp_path / "file").write_text("keep me")
    required = {
        "sim-collect": [],
        "sim-eval": ["--policy", str(tmp_path)],
        "export": ["--workdir", str(tmp_path)],
        "convert-episodes": ["--src", str(tmp_path)],
        "convert-hf": ["--src", str(tmp_path)],
    }[name]
    assert cli.main([name, *required, "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"vla-jax {name}: error: --out {tmp_path / 'file'} is a file, not a folder; pass a folder "
        "(created when missing)"
    )
    assert (tmp_path / "file").read_text() == "keep me"


def test_a_file_system_refusal_is_one_line(tmp_path, capsys):
    """An OSError from deep inside a command (here: a read-only /proc) names the path, no traceback."""
    assert cli.main(["sim-collect", "--episodes", "1", "--out", "/proc/vla_jax_episodes"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vla-jax sim-collect: error: ") and "/proc/vla_jax_episodes" in err and "\n" not in err


@pytest.mark.parametrize("name", ["inspect-data", "eval-offline"])
def test_out_that_names_a_file_is_not_refused_where_out_is_a_file(name, tmp_path, capsys):
    """inspect-data writes a PNG and eval-offline a JSON at --out: rerunning over the last one's output is fine."""
    (tmp_path / "file").write_text("last run")
    required = {
        "inspect-data": ["--mixture", "mobile", "--data-dir", str(tmp_path / "no_data")],
        "eval-offline": ["--workdir", str(tmp_path / "no_workdir"), "--data", str(tmp_path / "no_data")],
    }[name]
    assert cli.main([name, *required, "--out", str(tmp_path / "file")]) == 2  # fails later, on the missing input
    err = capsys.readouterr().err
    assert "is a file, not a folder" not in err and err.startswith(f"vla-jax {name}: error: ")
