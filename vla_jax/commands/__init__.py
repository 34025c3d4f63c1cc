"""One thin module per `vla-jax` subcommand (`vla-jax NAME` runs `vla_jax.commands.NAME`); see vla_jax/cli.py."""
