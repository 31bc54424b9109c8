"""A job's log as a terminal would have shown it: cursor moves replayed, colours kept, nothing raw.

Jobs write to a file, but tools that draw progress (Playwright's line
reporter, pnpm, pytest) move the cursor to redraw: `\\r`, `ESC[1A` (up),
`ESC[2K` (erase the line). Shown raw those are noise; stripped blindly they
leave every intermediate frame. This is a small line model, not a screen
emulator (pyte and friends keep a fixed screen and lose or slow down on
logs of many megabytes): the log is a list of lines and a cursor; printable
text is written in bulk, `\\r \\b \\t \\n` and the CSI cursor and erase
sequences move or clear, SGR colours become CSS classes (`fgN`, `bgN`,
`b`, `d`, `i`, `u`), and every other control or escape sequence (window
titles, hyperlinks, modes) is dropped. It is fed incrementally, so a live
log costs only its new bytes.
"""
from __future__ import annotations

import re
from array import array
from collections.abc import Iterator

from markupsafe import Markup, escape

_TOKEN = re.compile(
    r"(?P<csi>\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~]))"
    r"|(?P<osc>\x1b\][^\x07\x1b]*(?:\x07|\x1b\\))"
    r"|(?P<esc>\x1b[ -/]*[0-Z\\^-~])"
    r"|(?P<ctl>[\r\n\b\t])"
    r"|(?P<junk>[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f])")
# The start of a sequence cut by the end of what was read so far: it waits for the rest (up to a bound).
_PARTIAL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[ -/]*)")
_MAX_PARTIAL = 512
_TAB = 8
# The 16 basic colours: 0-7 normal, 8-15 bright (xterm's palette, for 256-colour and RGB approximation).
_PALETTE = [(0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205),
            (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255),
            (255, 0, 255), (0, 255, 255), (255, 255, 255)]
Style = tuple[int, int, bool, bool, bool, bool]  # fg, bg (-1 default, else 0-15), bold, dim, italic, underline
_PLAIN: Style = (-1, -1, False, False, False, False)


def _nearest(r: int, g: int, b: int) -> int:
    return min(range(16), key=lambda i: sum((x - y) ** 2 for x, y in zip(_PALETTE[i], (r, g, b), strict=True)))


def _colour256(n: int) -> int:
    if n < 16:
        return n
    if n >= 232:
        level = 8 + (n - 232) * 10
        return _nearest(level, level, level)
    n -= 16
    steps = (0, 95, 135, 175, 215, 255)
    return _nearest(steps[n // 36], steps[(n // 6) % 6], steps[n % 6])


def _sgr(style: Style, params: str) -> Style:
    fg, bg, bold, dim, italic, underline = style
    codes = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            fg, bg, bold, dim, italic, underline = _PLAIN
        elif c == 1:
            bold = True
        elif c == 2:
            dim = True
        elif c == 3:
            italic = True
        elif c == 4:
            underline = True
        elif c == 22:
            bold = dim = False
        elif c == 23:
            italic = False
        elif c == 24:
            underline = False
        elif 30 <= c <= 37 or 90 <= c <= 97:
            fg = c - 30 if c < 90 else c - 82
        elif 40 <= c <= 47 or 100 <= c <= 107:
            bg = c - 40 if c < 100 else c - 92
        elif c == 39:
            fg = -1
        elif c == 49:
            bg = -1
        elif c in (38, 48) and i + 1 < len(codes):
            colour, used = -1, 0
            if codes[i + 1] == 5 and i + 2 < len(codes):
                colour, used = _colour256(codes[i + 2] % 256), 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                colour, used = _nearest(*(min(v, 255) for v in codes[i + 2:i + 5])), 4
            if c == 38:
                fg = colour
            else:
                bg = colour
            i += used
        i += 1
    return fg, bg, bold, dim, italic, underline


def _classes(style: Style) -> str:
    fg, bg, bold, dim, italic, underline = style
    out = [f"fg{fg}"] if fg >= 0 else []
    out += [f"bg{bg}"] if bg >= 0 else []
    out += [name for name, on in (("b", bold), ("d", dim), ("i", italic), ("u", underline)) if on]
    return " ".join(out)


class Line:
    """One line's text and, per character, the id of its style (one byte each)."""

    __slots__ = ("text", "styles")

    def __init__(self) -> None:
        self.text = ""
        self.styles = array("B")

    def write(self, col: int, text: str, style: int) -> None:
        if col > len(self.text):
            self.styles.extend([0] * (col - len(self.text)))
            self.text += " " * (col - len(self.text))
        end = col + len(text)
        if col == len(self.text):  # the common case: appending
            self.text += text
        else:
            self.text = self.text[:col] + text + self.text[end:]
            del self.styles[col:min(end, len(self.styles))]
        self.styles[col:col] = array("B", [style]) * len(text)

    def erase(self, start: int, end: int | None) -> None:
        """Blank [start, end) (to the end of the line when end is None)."""
        if end is None or end >= len(self.text):
            self.text, self.styles = self.text[:start], self.styles[:start]
        elif start < end:
            self.text = self.text[:start] + " " * (end - start) + self.text[end:]
            self.styles[start:end] = array("B", [0]) * (end - start)


class Terminal:
    """Feed it text (possibly cut anywhere); read back the lines as plain text or HTML."""

    def __init__(self) -> None:
        self.lines: list[Line] = [Line()]
        self.row = self.col = 0
        self.saved = (0, 0)
        self.style = _PLAIN
        self.style_ids: dict[Style, int] = {_PLAIN: 0}
        self.class_names: list[str] = [""]
        self.pending = ""
        self.tick = 0  # one per feed() that changed something
        self.changes: list[tuple[int, int]] = []  # (tick, lowest row it touched), the last ones
        self._low = 0

    # -- feeding -------------------------------------------------------------------------------
    def feed(self, text: str) -> None:
        text = self.pending + text
        cut = _cut_at(text)
        text, self.pending = text[:cut], text[cut:]
        if not text:
            return
        self._low = self.row
        pos = 0
        for m in _TOKEN.finditer(text):
            if m.start() > pos:
                self._print(text[pos:m.start()])
            pos = m.end()
            kind = m.lastgroup
            if kind == "ctl":
                self._control(m.group("ctl"))
            elif kind == "csi":
                self._csi(m.group("params"), m.group("final"))
            # osc, esc and junk are dropped
        if pos < len(text):
            self._print(text[pos:])
        self.tick += 1
        self.changes.append((self.tick, self._low))
        del self.changes[:-1000]

    def finish(self) -> None:
        """The log is complete: a cut sequence at its very end is dropped."""
        self.pending = ""

    def _print(self, text: str) -> None:
        self.lines[self.row].write(self.col, text, self._style_id())
        self.col += len(text)

    def _style_id(self) -> int:
        sid = self.style_ids.get(self.style)
        if sid is None:
            if len(self.class_names) >= 256:
                return 0  # past 255 distinct styles, the rest are shown plain
            sid = self.style_ids[self.style] = len(self.class_names)
            self.class_names.append(_classes(self.style))
        return sid

    def _move_to(self, row: int) -> None:
        self.row = max(0, min(row, len(self.lines) - 1))
        self._low = min(self._low, self.row)

    def _control(self, ch: str) -> None:
        if ch == "\n":  # a log is a pipe: a newline also returns the carriage (the tty's onlcr)
            self.row += 1
            self.col = 0
            if self.row == len(self.lines):
                self.lines.append(Line())
        elif ch == "\r":
            self.col = 0
        elif ch == "\b":
            self.col = max(0, self.col - 1)
        else:  # tab
            self._print(" " * (_TAB - self.col % _TAB))

    def _csi(self, params: str, final: str) -> None:
        if params.startswith(("?", ">", "=", "<")):
            return  # private modes (cursor visibility, bracketed paste): nothing to show
        nums = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []
        n = max(nums[0], 1) if nums else 1
        first = nums[0] if nums else 0
        if final == "m":
            self.style = _sgr(self.style, params)
        elif final in "AF":
            self._move_to(self.row - n)
            if final == "F":
                self.col = 0
        elif final in "BE":
            self._move_to(self.row + n)
            if final == "E":
                self.col = 0
        elif final == "C":
            self.col += n
        elif final == "D":
            self.col = max(0, self.col - n)
        elif final == "G":
            self.col = n - 1
        elif final == "K":
            line = self.lines[self.row]
            if first == 0:
                line.erase(self.col, None)
            elif first == 1:
                line.erase(0, self.col + 1)
            else:
                line.erase(0, None)
        elif final == "J" and first == 0:  # erase below; clearing the whole screen keeps the log's history
            self.lines[self.row].erase(self.col, None)
            del self.lines[self.row + 1:]
        elif final == "s":
            self.saved = (self.row, self.col)
        elif final == "u":
            self._move_to(self.saved[0])
            self.col = self.saved[1]

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Lines; a last empty line (the log ended with a newline) is not one."""
        return len(self.lines) - (0 if self.lines[-1].text else 1)

    def changed_since(self, tick: int) -> int:
        """The lowest row changed by the feeds after `tick` (0 when that is too long ago to know)."""
        if tick >= self.tick:
            return len(self)
        if not self.changes or self.changes[0][0] > tick + 1:
            return 0
        return min(low for t, low in self.changes if t > tick)

    def text(self, row: int) -> str:
        return self.lines[row].text

    def html(self, row: int) -> Markup:
        line = self.lines[row]
        if not line.text:
            return Markup("")
        out: list[str] = []
        for start, end, sid in _runs(line.styles):
            chunk = escape(line.text[start:end])
            cls = self.class_names[sid]
            out.append(f'<span class="{cls}">{chunk}</span>' if cls else str(chunk))
        return Markup("".join(out))


def _cut_at(text: str) -> int:
    """Where an escape sequence cut by the end of `text` starts (len(text) when none is)."""
    i = max(0, len(text) - _MAX_PARTIAL)
    while (j := text.find("\x1b", i)) >= 0:
        if _PARTIAL.fullmatch(text, j):
            return j
        whole = _TOKEN.match(text, j)
        i = whole.end() if whole else j + 1
    return len(text)


def _runs(styles: array[int]) -> Iterator[tuple[int, int, int]]:
    """(start, end, style) of each stretch of one style."""
    if styles.count(styles[0]) == len(styles):  # most lines have one style: no per-character loop
        yield 0, len(styles), styles[0]
        return
    start = 0
    for i in range(1, len(styles) + 1):
        if i == len(styles) or styles[i] != styles[start]:
            yield start, i, styles[start]
            start = i


def render(text: str) -> list[str]:
    """The plain lines of a whole log (for tests and one-off use)."""
    term = Terminal()
    term.feed(text)
    term.finish()
    return [term.text(i) for i in range(len(term))]
