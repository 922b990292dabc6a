import io

from core.progress import format_duration, progress_iter
from tests.engine.test_progress import FakeTerminal


def test_plain_lines_first_and_last_item_when_not_a_terminal():
    stream = io.StringIO()
    assert list(progress_iter(range(5), "scoring Set5", stream=stream, every_s=3600)) == [0, 1, 2, 3, 4]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "scoring Set5: 1/5 (" in lines[0] and "ETA" in lines[0]
    assert "scoring Set5: 5/5 (" in lines[1] and "ETA" not in lines[1]


def test_every_item_is_reported_when_the_interval_is_zero():
    stream = io.StringIO()
    list(progress_iter(iter("abc"), "LR_1", stream=stream, every_s=0))  # no len(): no total
    assert [line.split(" ", 2)[2].split(" (")[0] for line in stream.getvalue().splitlines()] == [
        "LR_1: 1", "LR_1: 2", "LR_1: 3"]


def test_terminal_gets_a_bar_and_disabled_gets_nothing():
    terminal, quiet = FakeTerminal(), io.StringIO()
    assert list(progress_iter([1, 2, 3], "LR_2", stream=terminal)) == [1, 2, 3]
    assert "LR_2:   0%|" in terminal.getvalue() and "/3 [" in terminal.getvalue()  # a tqdm bar
    assert list(progress_iter([1, 2], "x", stream=quiet, enabled=False)) == [1, 2]
    assert quiet.getvalue() == ""


def test_format_duration():
    assert [format_duration(s) for s in (4.4, 185, 7620)] == ["4s", "3m05s", "2h07m"]
