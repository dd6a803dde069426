"""A write that fails while checkpointing (a full disk) leaves the previous checkpoint intact.

The failure is real, not simulated: a child process lowers its file-size limit (RLIMIT_FSIZE) below
the new checkpoint's size, so the kernel refuses the write part-way (EFBIG), as a full disk refuses
it with ENOSPC; the child then reads back what is on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, signal, sys
from pathlib import Path
import torch
from audit.train.checkpoint import Checkpoint, LAST, INFO

folder = Path(sys.argv[1])
def checkpoint(epoch, size):
    return Checkpoint(run_id="r", config_hash="h", epoch=epoch, status="finished", stop=False,
                      history=[(e, {"loss": float(e)}) for e in range(1, epoch + 1)], schedule={}, rng=[],
                      model={"w": torch.full((size,), float(epoch))}, optimizer={})
checkpoint(1, 1_000).save(folder)
small = (folder / LAST).stat().st_size
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)           # a refused write raises instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (small * 4, small * 4))
try:
    checkpoint(2, 1_000_000).save(folder)               # 4 MB: refused part-way
    error = None
except Exception as exc:                              # torch.save re-raises the OSError as a RuntimeError
    error = " <- ".join(str(e) for e in (exc, exc.__context__) if e is not None)
back = Checkpoint.load(folder)
print(json.dumps({"error": error, "epoch": back.epoch, "value": float(back.model["w"][0]),
                  "info": json.loads((folder / INFO).read_text()),
                  "files": sorted(p.name for p in folder.iterdir())}))
"""


def test_a_refused_checkpoint_write_keeps_the_previous_one(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "ckpt")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "File too large" in seen["error"]                        # the write really failed
    assert seen["epoch"] == 1 and seen["value"] == 1.0 and seen["info"]["epoch"] == 1
    assert seen["files"] == ["last.json", "last.pt"]                # no partial file left holding the space
