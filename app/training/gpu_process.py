"""One training process of a multi-GPU run, started once per GPU by the supervisor:
`accelerate launch -m app.training.gpu_process RUN_DIR`.

The worker that started it follows the run folder: this process writes `progress.json` and
stops (after a checkpoint) when a `stop` file appears."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.training.supervisor import STOPPED_EXIT
from app.training.trainer import StopRequested, train


def main(folder: Path) -> int:
    """Train the run in `folder`; the exit status says how it ended."""

    def on_step(step: int, total: int) -> None:
        (folder / "progress.json").write_text(json.dumps({"step": step, "total": total}))
        if (folder / "stop").exists():
            raise StopRequested()

    try:
        train(folder, on_step)
    except StopRequested:
        return STOPPED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
