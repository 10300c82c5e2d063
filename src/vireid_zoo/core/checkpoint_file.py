"""Reading a Lightning checkpoint file safely, with one-paragraph errors.

Every reader of a ``.ckpt`` in the zoo (the commands, ``load_from_checkpoint`` of a zoo
module, publishing, export and search) goes through [`read_checkpoint`][]: the file is
unpickled with ``torch.load(weights_only=True)``, so nothing in it runs, and a damaged or
foreign file is reported in one paragraph naming the file, what is wrong and what to do.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

FIX = "Use a checkpoint written by the zoo ('vireid-zoo fit', or a Trainer fitting a zoo module)."


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a Lightning checkpoint with ``weights_only=True`` (nothing in it runs).

    Warnings the unpickler gives about a file it then refuses are dropped with it: the
    error says what is wrong.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it is not a readable checkpoint (truncated, not a checkpoint, holding
            objects other than tensors and plain values), in one paragraph naming the file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise ValueError(_refused(path, str(error))) from None
        except (RuntimeError, EOFError, OSError) as error:
            raise ValueError(
                f"{path} is not a readable checkpoint ({_first_sentence(error)}): it may be "
                "truncated by an interrupted copy or run. Copy it again, or use another "
                "checkpoint of the run (e.g. last.ckpt)."
            ) from None
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if not isinstance(content, dict) or "state_dict" not in content:
        raise ValueError(f"{path} is not a Lightning checkpoint (it has no 'state_dict'). {FIX}")
    return content


def _refused(path: Path, message: str) -> str:
    """The paragraph for a file the weights-only unpickler refused."""
    referenced = re.search(r"GLOBAL ([\w.]+)", message)
    if referenced is None:  # not a pickle at all, or a damaged one
        return (
            f"{path} is not a readable checkpoint (it is not a PyTorch file, or it is damaged). "
            f"{FIX}"
        )
    return (
        f"{path} refers to {referenced.group(1)}, which is not a tensor or plain value: the zoo "
        "reads checkpoints with weights_only=True, so it was refused and nothing in it ran. "
        f"{FIX}"
    )


def _first_sentence(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text.split('. ')[0].rstrip('.') or 'no detail'}"
