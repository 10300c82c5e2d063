from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from vireid_zoo.cli import main
from vireid_zoo.cli.demo import SIZES, run_demo, synthetic_sysu


@pytest.mark.slow
def test_tiny_demo_trains_scores_and_draws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_demo(
        tmp_path / "out", size="tiny", epochs=2, cache_dir=tmp_path / "cache", progress=False
    )
    assert set(result.untrained) == set(result.trained) == {"sysu_mm01/all", "sysu_mm01/indoor"}
    for results in (result.untrained, result.trained):
        for scores in results.values():
            assert len(scores.per_trial) == 10
            assert 0.0 < scores.mean["mAP"] <= 1.0
    assert result.trained["sysu_mm01/all"].mean != result.untrained["sysu_mm01/all"].mean
    lines = result.table.splitlines()
    assert [line.split()[:2] for line in lines[2:6]] == [
        ["untrained", "sysu_mm01/all"],
        ["untrained", "sysu_mm01/indoor"],
        ["trained", "sysu_mm01/all"],
        ["trained", "sysu_mm01/indoor"],
    ]
    for picture in (result.ranked_list, result.cmc_curve):
        with Image.open(picture) as image:
            assert image.format == "PNG" and image.width > 300
    # The synthetic dataset is cached: asking again writes nothing.
    cached = sorted((tmp_path / "cache" / "synthetic").iterdir())
    assert [path.name.endswith("-maps") for path in cached] == [False, True]

    def no_writing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached dataset was written again")

    monkeypatch.setattr("vireid_zoo.cli.demo.make_sysu_mm01", no_writing)
    assert synthetic_sysu(SIZES["tiny"], tmp_path / "cache", 0) == cached[0]


def test_demo_arguments_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--size", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
