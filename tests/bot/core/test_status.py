"""The status line a chat shows for a job, and which events are worth an edit."""

from memeswap.bot.core.status import JobStatus, failure_line, fitted, refusal_line, status_line
from memeswap.bot.core.wording import DISCORD
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.contract import Busy, Failed, Progress, Queued, RateLimited, Started, Succeeded


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_for_each_event():
    assert status_line(Queued(position=0)) == "⏳ In the queue: you're next"
    assert status_line(Queued(position=3)) == "⏳ In the queue: 3 ahead of you"
    assert status_line(Started()) == "🎬 Swapping faces…"
    assert status_line(Progress(done=12, total=48)) == "🎬 Swapping faces… 25% (12/48 frames)"
    assert status_line(Succeeded(result_ref="r", mime="image/gif", size=1)) == "✅ Done!"
    assert failure_line(Failed(code="internal", message="something broke", retryable=True)) == \
        "Something broke. You can try again."
    assert failure_line(Failed(code="no_face", message="no face found.", retryable=False)) == "No face found."


def test_refusals_are_said_kindly():
    assert refusal_line(Busy(4.2)) == "Lots of memes are being made right now. Busy, try again in about 5 s."
    assert refusal_line(RateLimited(30)).startswith("Easy there! Too many swaps in a short time")
    assert refusal_line(InputError("x", code="no_saved_face")).startswith("Send me a selfie first")
    assert refusal_line(InputError("that file is 21.0 MB")) == "That file is 21.0 MB."
    assert refusal_line(InputError("x", code="no_saved_face"), DISCORD).startswith("You have no saved face yet")


def test_a_line_is_kept_within_a_message():
    assert fitted("x" * 2000, 2000) == "x" * 2000
    assert fitted("x" * 5000, 2000) == "x" * 1999 + "…"


def test_only_news_is_worth_an_edit():
    clock = Clock()
    status = JobStatus(min_interval_s=1.5, clock=clock)
    assert status.line_for(Queued(position=2)) is not None
    assert status.line_for(Queued(position=2)) is None  # nothing new
    assert status.line_for(Queued(position=1)) is not None
    assert status.line_for(Started()) is not None
    assert status.line_for(Progress(done=1, total=48)) is not None
    clock.now = 0.5
    assert status.line_for(Progress(done=10, total=48)) is None  # too soon after the last edit
    clock.now = 2.0
    assert status.line_for(Progress(done=20, total=48)) is not None
    clock.now = 2.1
    assert status.line_for(Progress(done=48, total=48)) is not None  # the last frame always shows
