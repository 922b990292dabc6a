import io
import re

from engine.progress import ProgressReporter, format_duration


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


ROW = {"step": 200, "stage": "high", "lr": 1e-4, "loss": 0.01234, "seconds": 3.2, "val_psnr": 31.2345,
       "test_psnr": 30.5}
LINE = re.compile(r"\[train_N1\] step 200/1000 \(20\.0%\) stage=high lr=0\.0001 loss=0\.0123 "
                  r"val_psnr=31\.2345 test_psnr=30\.5000 [\d.e+]+ it/s, ETA \S+$")


def test_plain_lines_when_not_a_terminal(tmp_path):
    stream, log = io.StringIO(), tmp_path / "train_N1.log"
    with ProgressReporter(1000, log, stream=stream, name="train_N1") as progress:
        progress.advance(200)
        line = progress.on_eval(ROW)
        progress.message("stage high done")
    assert LINE.match(line), line
    printed = stream.getvalue().splitlines()
    assert [text.split(" ", 2)[2] for text in printed] == [line, "stage high done"]  # after the timestamp
    logged = log.read_text().splitlines()
    assert [text.split(" ", 2)[2] for text in logged] == [line, "stage high done"]


def test_terminal_keeps_the_bar_and_still_logs(tmp_path):
    stream, log = FakeTerminal(), tmp_path / "train.log"
    progress = ProgressReporter(1000, log, stream=stream, name="train_N1")
    progress.advance(200)
    line = progress.on_eval(ROW)
    progress.close()
    shown = stream.getvalue()
    assert "200/1000" in shown and "val_psnr=31.2345" in shown  # the tqdm bar and its postfix
    assert line not in shown  # no plain line on a terminal
    assert log.read_text().splitlines()[0].endswith(line)


def test_rate_and_eta_follow_the_steps_since_the_last_evaluation(tmp_path, monkeypatch):
    clock = iter([0.0, 10.0, 20.0])
    monkeypatch.setattr("engine.progress.time.perf_counter", lambda: next(clock))
    progress = ProgressReporter(1000, None, stream=io.StringIO(), initial_step=100)
    first = progress.on_eval({**ROW, "step": 300})  # 200 steps in 10 s
    second = progress.on_eval({**ROW, "step": 400})  # 100 steps in 10 s, 600 to go
    assert "20 it/s, ETA 35s" in first
    assert "10 it/s, ETA 1m00s" in second


def test_non_main_rank_is_silent(tmp_path):
    stream, log = io.StringIO(), tmp_path / "train.log"
    progress = ProgressReporter(10, log, stream=stream, is_main=False)
    progress.on_eval({**ROW, "step": 5})
    progress.message("hello")
    assert stream.getvalue() == "" and not log.exists()


def test_epoch_is_shown_with_two_decimals():
    line = ProgressReporter(1000, None, stream=io.StringIO()).on_eval({**ROW, "epoch": 12.5})
    assert "(20.0%) epoch=12.50 stage=high" in line


def test_format_duration():
    assert [format_duration(s) for s in (4.4, 185, 7620)] == ["4s", "3m05s", "2h07m"]
