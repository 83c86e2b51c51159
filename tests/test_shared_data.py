"""Missing read-only data (../shared) skips a test locally and fails it under CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_shared

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_a_missing_path_fails_under_ci(monkeypatch, tmp_path, value) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"the fixtures: .*absent is not available"):
        require_shared(tmp_path / "absent", "the fixtures")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_a_missing_path_skips_outside_ci(monkeypatch, tmp_path, value) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match=r"the fixtures: .*absent is not available"):
        require_shared(tmp_path / "absent", "the fixtures")


def test_a_present_path_is_returned_under_ci_and_outside(monkeypatch, tmp_path) -> None:
    for value in ("true", "false"):
        monkeypatch.setenv("CI", value)
        assert require_shared(tmp_path, "the folder") == tmp_path


def test_ci_entry_point_runs_under_ci() -> None:
    """``.ci/run`` exports CI=true before the suite, so CI cannot pass on skipped parity."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "export CI=true" in lines[: lines.index("make test")]
