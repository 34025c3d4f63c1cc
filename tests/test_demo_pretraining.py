"""`vla-jax demo --pretrained`: the cross-embodiment stages run the study's commands once, then are reused."""

from pathlib import Path

from vla_jax.study import demo_pretraining


def test_stages_run_the_study_recipe_once_then_reuse_it(tmp_path):
    ran: list[list[str]] = []

    def stage(name, done, fn):
        if not done:
            fn()

    def cli(argv):
        ran.append(argv)
        out = Path(argv[argv.index("--out" if "--out" in argv else "--workdir") + 1])
        out.mkdir(parents=True, exist_ok=True)

    folder = tmp_path / "pretrain"
    workdir, tokenizer = demo_pretraining.stages(stage, cli, folder, tmp_path / "rlds", 48)
    commands = [a[0] for a in ran]
    assert commands[-2:] == ["tokenizer", "train"] and commands.count("sim-collect") == 4  # 3 robots + Meta-World
    assert not any("{" in arg for argv in ran for arg in argv)  # every template filled
    train = ran[-1]
    assert f"--config.data.tokenizer={tokenizer}" in train and str(workdir) == train[train.index("--workdir") + 1]
    search = next(a for a in train if a.startswith("--config.data.config.data_dir="))
    assert str(folder / "convert_diff_drive") in search and str(folder / "metaworld") in search
    tok = ran[-2]
    assert tok[tok.index("--data-dir") + 1].startswith(f"{tmp_path / 'rlds'},")  # the target's instructions too

    ran.clear()
    demo_pretraining.stages(stage, cli, folder, tmp_path / "rlds", 48)
    assert ran == []  # cached: the second --pretrained demo pays nothing for pre-training
