"""Terminal control codes in job logs are replayed (cursor moves, erases, colours), never shown raw."""
from __future__ import annotations

import random

import pytest

from ci_runner.redact import MASK, Redactor
from ci_runner.termlog import Terminal, render

# What Playwright's line reporter writes on a terminal: each test's line replaces the one before.
PLAYWRIGHT_LINE = (
    "\nRunning 3 tests using 1 worker\n\n"
    "\x1b[1A\x1b[2K[1/3] [chromium] › tests/table.spec.js:6:1 › page loads the bundle\n"
    "\x1b[1A\x1b[2K[2/3] [chromium] › tests/table.spec.js:16:1 › table renders the rows\n"
    "\x1b[1A\x1b[2K\x1b[31m  1) [chromium] › tests/table.spec.js:16:1 › table renders the rows \x1b[39m\n\n"
    "    Error: \x1b[2mexpect(\x1b[22m\x1b[31mreceived\x1b[39m\x1b[2m).\x1b[22mtoBe\n\n"
    "\x1b[1A\x1b[2K[3/3] [chromium] › tests/table.spec.js:26:1 › sorting\n"
    "\x1b[1A\x1b[2K\x1b[31m  1 failed\x1b[39m\n\x1b[32m  2 passed\x1b[39m (12.7s)\n")


def test_playwrights_line_reporter_keeps_only_what_a_terminal_would_show() -> None:
    lines = render(PLAYWRIGHT_LINE)
    assert lines == [
        "",
        "Running 3 tests using 1 worker",
        "  1) [chromium] › tests/table.spec.js:16:1 › table renders the rows ",
        "",
        "    Error: expect(received).toBe",
        "  1 failed",
        "  2 passed (12.7s)",
    ]
    assert not any("\x1b" in line or "[1A" in line or "[2K" in line for line in lines)


@pytest.mark.parametrize("seed", range(5))
def test_feeding_in_arbitrary_pieces_gives_the_same_lines(seed: int) -> None:
    rng = random.Random(seed)
    text = PLAYWRIGHT_LINE * 3 + "\x1b]0;title\x07done \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\r\n"
    term, i = Terminal(), 0
    while i < len(text):
        n = rng.randint(1, 7)
        term.feed(text[i:i + n])
        i += n
    term.finish()
    assert [term.text(r) for r in range(len(term))] == render(text)


def test_carriage_returns_backspaces_tabs_and_erases() -> None:
    assert render("progress 10%\rprogress 55%\rprogress 100%\n") == ["progress 100%"]
    assert render("abc\b\bX\n") == ["aXc"]
    assert render("a\tb\n") == ["a       b"]
    assert render("hello world\r\x1b[6C\x1b[K\n") == ["hello "]
    assert render("hello world\x1b[5D\x1b[1K!\n") == ["      !orld"]
    assert render("one\ntwo\nthree\x1b[2A\r\x1b[J1\n") == ["1"]  # erase below
    assert render("keep\n\x1b[2J\x1b[Hafter\n") == ["keep", "after"]  # a clear screen keeps the history


def test_colours_become_css_classes_and_text_is_escaped() -> None:
    term = Terminal()
    term.feed("\x1b[1;31mred <b>\x1b[0m plain & \x1b[38;5;46mgreen\x1b[38;2;0;0;250mblue\x1b[m\n")
    html = str(term.html(0))
    assert html == ('<span class="fg1 b">red &lt;b&gt;</span> plain &amp; <span class="fg10">green</span>'
                    '<span class="fg4">blue</span>')


def test_unknown_and_private_sequences_are_dropped_not_printed() -> None:
    lines = render("\x1b[?25l\x1b[?2004hx\x1b=\x1b>\x1b(By\x00\x07z\x1b[5n\n")
    assert lines == ["xyz"]


def test_changed_since_names_the_first_line_a_later_feed_touched() -> None:
    term = Terminal()
    term.feed("a\nb\nc\n")
    tick = term.tick
    assert term.changed_since(tick) == len(term) == 3
    term.feed("\x1b[1A\x1b[2Kc2\nd\n")
    assert term.changed_since(tick) == 2
    assert [term.text(i) for i in range(term.changed_since(tick), len(term))] == ["c2", "d"]
    assert term.changed_since(-5) == 0  # older than the history kept: everything


def test_unfinished_secret_at_the_end_of_a_live_line_is_masked() -> None:
    r = Redactor(["ghp_abcdefghijklmnop"])
    assert r.unfinished("token: ghp_abcd") == f"token: {MASK}"
    assert r.unfinished("token: gh") == "token: gh"  # too short to say
    assert r("the ghp_abcdefghijklmnop is") == f"the {MASK} is"
