"""The lead-time benchmark's command line: the simulated period's end is an explicit instant, so a
seed names the same fleet in every run (the run itself is a benchmark, not a test)."""

from datetime import datetime, timezone

import pytest

from benchmarks import lead_time


def test_the_end_is_fixed_unless_given_and_read_as_utc():
    assert lead_time.DEFAULT_END == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert lead_time._instant("2026-11-02T06:30Z") == datetime(2026, 11, 2, 6, 30, tzinfo=timezone.utc)
    assert lead_time._instant("2026-11-02T06:30") == datetime(2026, 11, 2, 6, 30, tzinfo=timezone.utc)
    assert lead_time._instant("2026-11-02T08:30+02:00") == datetime(2026, 11, 2, 6, 30, tzinfo=timezone.utc)


def test_a_bad_end_is_refused_with_the_expected_form(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        lead_time.main(["--end", "yesterday", "--json", str(tmp_path / "x.json")])
    assert exc.value.code == 2
    assert "not an ISO 8601 instant: 'yesterday'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
