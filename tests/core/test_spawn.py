"""``ddp_spawn`` from a script without a main guard fails at once, in the parent."""

from __future__ import annotations

import multiprocessing.context
import os
import pickle
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from vireid_zoo.core import spawn
from vireid_zoo.core.spawn import has_main_guard, refuse_unguarded_spawn
from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.models import AGW, AGWModule

UNGUARDED = "import lightning\nprint('training')\n"
GUARDED = "def main():\n    print('training')\n\n\nif __name__ == '__main__':\n    main()\n"


@pytest.mark.parametrize(
    "source,guarded",
    [
        (UNGUARDED, False),
        (GUARDED, True),
        ('if "__main__" == __name__:\n    pass\n', True),
        ("if __name__ != '__main__':\n    pass\n", False),
        ("def f():\n    if __name__ == '__main__':\n        pass\n", False),  # not top level
    ],
)
def test_the_main_guard_is_recognised(tmp_path: Path, source: str, guarded: bool) -> None:
    script = tmp_path / "train.py"
    script.write_text(source)
    assert has_main_guard(script) is guarded


def spawning_from(monkeypatch: pytest.MonkeyPatch, script: Path, method: str) -> None:
    """Pretend a ``method`` process is being started by ``script`` run as __main__."""
    monkeypatch.setattr(spawn, "get_spawning_popen", lambda: types.SimpleNamespace(method=method))
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)


def test_zoo_objects_refuse_to_reach_a_spawned_process_of_an_unguarded_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sysu_root: Path
) -> None:
    module = AGWModule(AGW(4, arch="resnet18"))
    datamodule = SYSUMM01DataModule(sysu_root, image_size=(32, 16), check_counts=False)
    script = tmp_path / "train.py"
    script.write_text(UNGUARDED)
    spawning_from(monkeypatch, script, "spawn")
    for item, name in ((module, "AGWModule"), (datamodule, "SYSUMM01DataModule")):
        with pytest.raises(RuntimeError) as error:
            pickle.dumps(item)
        message = str(error.value)
        assert message.startswith(f"{script} starts processes with the 'spawn' method")
        assert f"receive the {name}" in message and "if __name__ ==" in message
    # A guarded script, or a fork, is fine: the objects travel as before.
    script.write_text(GUARDED)
    restored = pickle.loads(pickle.dumps(module))
    assert restored.describe() == module.describe()
    script.write_text(UNGUARDED)
    spawning_from(monkeypatch, script, "fork")
    refuse_unguarded_spawn("AGWModule")
    monkeypatch.setattr(spawn, "get_spawning_popen", multiprocessing.context.get_spawning_popen)
    refuse_unguarded_spawn("AGWModule")  # not starting a process at all


@pytest.mark.distributed
def test_ddp_spawn_from_an_unguarded_script_fails_before_any_process_starts(
    sysu_root: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.txt"
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import lightning as L

            from vireid_zoo.data import SYSUMM01DataModule
            from vireid_zoo.models import AGW, AGWModule

            with open({str(runs)!r}, "a") as runs:
                runs.write("the script ran\\n")
            data = SYSUMM01DataModule(
                {str(sysu_root)!r}, image_size=(32, 16), num_workers=0, check_counts=False
            )
            trainer = L.Trainer(
                accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=1, logger=False
            )
            trainer.fit(AGWModule(AGW(13, arch="resnet18")), datamodule=data)
            """
        )
    )
    completed = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode != 0
    assert 'no `if __name__ == "__main__":` guard' in completed.stderr
    assert runs.read_text() == "the script ran\n", "no process re-ran the script"
