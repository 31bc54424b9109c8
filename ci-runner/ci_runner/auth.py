"""Who may rerun and cancel from the pages: whoever holds the admin token (`WARMCI_ADMIN_TOKEN`).

Three ways to show it, each safe against cross-site requests:
- `Authorization: Bearer TOKEN` (scripts): no cookie is involved, so a
  forged request from another site cannot carry it;
- the token typed into the form next to the button: the same, one click;
- a session from `POST /login`: an HttpOnly, SameSite=Strict cookie signed
  with a key derived from the token (a new token ends every session), and
  every form carries a CSRF token derived from that session; a request
  whose Origin is another site is refused outright.
Without a configured token, rerun and cancel from the pages are off.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

COOKIE = "warmci_session"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Verdict:
    ok: bool
    why: str = ""


class Auth:
    def __init__(self, token: str) -> None:
        self.token = token
        self._key = hmac.new(token.encode(), b"warmci run pages session v1", hashlib.sha256).digest()

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def token_ok(self, given: str | None) -> bool:
        return self.enabled and given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, now: float | None = None) -> str:
        issued = str(int(now if now is not None else time.time()))
        return f"{issued}.{self._mac('session:' + issued)}"

    def session_ok(self, cookie: str | None, now: float | None = None) -> bool:
        if not self.enabled or not cookie or "." not in cookie:
            return False
        issued, mac = cookie.split(".", 1)
        if not issued.isdigit() or not hmac.compare_digest(mac, self._mac("session:" + issued)):
            return False
        age = (now if now is not None else time.time()) - int(issued)
        return 0 <= age < SESSION_SECONDS

    def csrf(self, cookie: str) -> str:
        return self._mac("csrf:" + cookie)

    def check(self, *, bearer: str | None, form_token: str | None, cookie: str | None, csrf: str | None,
              origin: str | None, own_origins: tuple[str, ...]) -> Verdict:
        """May this POST change something? Never from another site's page, whatever it carries."""
        if not self.enabled:
            return Verdict(False, "rerun and cancel from the pages are off: the service has no admin token "
                                  "(set WARMCI_ADMIN_TOKEN), or use `python -m ci_runner rerun|cancel RUN`")
        if origin and origin.rstrip("/") not in own_origins:
            return Verdict(False, f"refused: the request came from another site ({origin})")
        if bearer is not None or form_token:
            given = bearer if bearer is not None else form_token
            return Verdict(True) if self.token_ok(given) else Verdict(False, "wrong admin token")
        if not self.session_ok(cookie):
            return Verdict(False, "not logged in: give the admin token (or log in first)")
        assert cookie is not None
        if not csrf or not hmac.compare_digest(csrf, self.csrf(cookie)):
            return Verdict(False, "the form's CSRF token is missing or stale: reload the page and try again")
        return Verdict(True)
