"""Where saved networks come from: a folder, ``local-dir:PATH`` or a Hub repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vireid_zoo.core.contract import HF_HUB_PREFIX, LOCAL_DIR_PREFIX, parse_hub_source

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def resolve_files(
    source: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> tuple[Path, Path]:
    """Return local paths of ``(config.json, model.safetensors)`` of a source.

    ``source`` is a folder (``local-dir:PATH`` or a plain path) or a Hub repository
    (``hf-hub:ORG/NAME[@REVISION]`` or ``ORG/NAME``); ``hf-hub:`` always means the Hub,
    even where a folder of that name exists. Only the safetensors file is fetched: a
    repository that holds only pickled weights is refused.
    """
    from_hub = source.startswith(HF_HUB_PREFIX)
    if from_hub:
        source, at_revision = parse_hub_source(source)
        revision = revision or at_revision
    folder = Path(source.removeprefix(LOCAL_DIR_PREFIX)).expanduser()
    if not from_hub and (source.startswith(LOCAL_DIR_PREFIX) or folder.is_dir()):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{source}: the folder {folder} does not exist ({LOCAL_DIR_PREFIX}PATH names a "
                f"folder written by save_pretrained; a Hub repository is {HF_HUB_PREFIX}ORG/NAME)"
            )
        config, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        for path in (config, weights):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} does not exist: a saved model folder holds {CONFIG_NAME} and "
                    f"{WEIGHTS_NAME} (written by save_pretrained)"
                )
        return config, weights
    from huggingface_hub import hf_hub_download  # the Hub client only when the Hub is asked

    def download(filename: str) -> Path:
        """One file of the repository, from the Hub or the local cache."""
        return Path(
            hf_hub_download(
                repo_id=source,
                filename=filename,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                local_files_only=local_files_only,
                token=token,
            )
        )

    return download(CONFIG_NAME), download(WEIGHTS_NAME)


def read_config(path: Path) -> dict[str, Any]:
    """Read a JSON file written by the zoo (``config.json``, ``test_results.json``)."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path} as JSON: {error}") from error
