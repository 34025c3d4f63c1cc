"""User-facing data errors: malformed episodes, NaN actions, wrong shapes, missing keys.

Every message names the file, the episode and the key, and says how to fix it.
The `vla-jax` CLI prints it as one line.
"""

import collections
import logging
import threading


class DataError(Exception):
    """Bad input data; the message is the whole explanation."""


class BadDataCounter:
    """Counts bad episodes skipped under `skip_bad_episodes=True`.

    Skipping is opt-in and never silent: each skip is logged with the full
    `DataError` message and counted by reason, so a run can report (and a test
    can assert) exactly how much data was dropped and why.
    """

    def __init__(self, source: str = "data"):
        self.source = source
        self._lock = threading.Lock()
        self.by_reason: collections.Counter[str] = collections.Counter()
        self.messages: list[str] = []

    @property
    def count(self) -> int:
        return sum(self.by_reason.values())

    def record(self, err: "DataError | str", reason: str = "bad_episode") -> None:
        message = str(err)
        with self._lock:
            self.by_reason[reason] += 1
            if len(self.messages) < 1000:
                self.messages.append(message)
        logging.getLogger("data_pipelines").warning(
            "skipping bad episode (%s, %d skipped so far): %s", reason, self.count, message
        )

    def summary(self) -> dict:
        return {"skipped": self.count, "by_reason": dict(self.by_reason)}
