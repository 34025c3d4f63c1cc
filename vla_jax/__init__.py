"""vla-jax: JAX/Flax vision-language-action robot policies in the RoboVLMs family."""

__version__ = "0.1.0"
