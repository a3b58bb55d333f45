"""Who may use the console: the password check, the session cookie, CSRF tokens, the sign-in limit.

* **Password**: ``FW_WEB_PASSWORD`` (compared in constant time, as SHA-256 digests so its length
  does not leak either) or ``FW_WEB_PASSWORD_HASH``, an argon2 hash checked by argon2-cffi in a
  thread (a check takes tens of milliseconds of CPU; the event loop keeps serving meanwhile).
* **Session**: aiohttp-session's ``EncryptedCookieStorage`` (Fernet: AES + HMAC, so the cookie is
  signed and unreadable), ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the request came over
  https (or, with ``FW_WEB_BEHIND_PROXY``, the proxy says ``X-Forwarded-Proto: https``). Its key
  is derived from ``FW_WEB_SECRET``, or made at random when the process starts.
  The session holds the sign-in time and a fingerprint of the password: changing the password
  ends every sign-in.
* **CSRF**: every session gets a random token; every console form carries it and every POST is
  refused with 403 unless it matches. ``SameSite=Strict`` already keeps other sites' forms from
  carrying the cookie; the token also covers browsers and proxies that do not honour it.
* **Sign-in limit**: ``MAX_FAILURES`` wrong passwords from one address within ``FAILURE_WINDOW``
  and that address gets 429 with ``Retry-After`` until the oldest failure ages out. The failures
  are rows in the database (``sign_in_failures``), so replicas behind one load balancer share one
  limit rather than granting ``MAX_FAILURES`` guesses each.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web
from aiohttp_session import Session, get_session, new_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.settings import Settings
from bot.store.sign_ins import SignInFailures

SESSION_COOKIE = "fw_console"
CSRF_FIELD = "csrf_token"
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60.0  # seconds
MAX_TRACKED_ADDRESSES = 10_000  # memory bound: the oldest address is forgotten past this

_SIGNED_IN = "signed_in_at"
_CREDENTIAL = "credential"
_CSRF = "csrf"


def hash_password(password: str) -> str:
    """An argon2id hash for ``FW_WEB_PASSWORD_HASH`` (argon2-cffi's recommended parameters)."""
    return PasswordHasher().hash(password)


class PasswordCheck:
    """Checks a submitted password against ``FW_WEB_PASSWORD`` or ``FW_WEB_PASSWORD_HASH``."""

    def __init__(self, *, password: str | None = None, password_hash: str | None = None) -> None:
        if (password is None) == (password_hash is None):
            raise ValueError("give a password or its hash, not both or neither")
        self._digest = hashlib.sha256(password.encode()).digest() if password is not None else None
        self._hash = password_hash
        self._hasher = PasswordHasher()
        stored = password if password is not None else password_hash
        assert stored is not None
        # What a session remembers of the credential: a change of password ends every sign-in.
        self.fingerprint = hashlib.sha256(
            b"frontierwatch console credential\0" + stored.encode()
        ).hexdigest()[:32]

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordCheck:
        if settings.web_password is not None:
            return cls(password=settings.web_password.get_secret_value())
        if settings.web_password_hash is not None:
            return cls(password_hash=settings.web_password_hash.get_secret_value())
        raise ValueError("the console needs FW_WEB_PASSWORD or FW_WEB_PASSWORD_HASH")

    async def matches(self, given: str) -> bool:
        if self._digest is not None:
            return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._digest)
        assert self._hash is not None
        return await asyncio.to_thread(self._verify_hash, self._hash, given)

    def _verify_hash(self, stored: str, given: str) -> bool:
        try:
            return self._hasher.verify(stored, given)
        except (VerificationError, InvalidHashError):
            return False


class SignInLimiter:
    """Counts failed sign-ins per client address in a sliding window: in the database when given
    ``failures`` (every replica then counts the same ones; the console always does this), else in
    this process (a limiter for tests and tools without a database)."""

    def __init__(
        self,
        failures: SignInFailures | None = None,
        max_failures: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.failures = failures
        self.max_failures = max_failures
        self.window = timedelta(seconds=window)
        self._clock = clock
        self._memory: OrderedDict[str, deque[datetime]] = OrderedDict()

    async def attempt(self, address: str) -> int:
        """A sign-in attempt from ``address``: 0 when it may go on (it is counted as a failure
        until :meth:`succeeded`), else the seconds until it may try again (then it is not
        counted). Counted first and judged by the failures recorded before it, so parallel
        guesses cannot all pass the limit before any of them is counted, even on several
        replicas."""
        now = self._clock()
        cutoff = now - self.window
        if self.failures is not None:
            # A locked-out address is refused on a read alone: a flood of guesses writes nothing.
            count, oldest = await self.failures.since(address, cutoff)
            if count < self.max_failures:
                mine = await self.failures.record(address, now, forget_before=cutoff)
                count, oldest = await self.failures.since(address, cutoff, before=mine)
                if count >= self.max_failures:
                    await self.failures.forget(mine)
        else:
            earlier = self._recent(address, now)
            count, oldest = len(earlier), earlier[0] if earlier else None
            if count < self.max_failures:
                earlier.append(now)
                self._memory[address] = earlier
                self._memory.move_to_end(address)
                while len(self._memory) > MAX_TRACKED_ADDRESSES:
                    self._memory.popitem(last=False)
        if count < self.max_failures or oldest is None:
            return 0
        return max(1, int((oldest + self.window - now).total_seconds()) + 1)

    async def succeeded(self, address: str) -> None:
        if self.failures is not None:
            await self.failures.clear(address)
        else:
            self._memory.pop(address, None)

    def _recent(self, address: str, now: datetime) -> deque[datetime]:
        failures = self._memory.get(address, deque())
        cutoff = now - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            self._memory.pop(address, None)
        return failures


def client_address(request: web.Request, behind_proxy: bool) -> str:
    """The address the sign-in limit counts. Behind a proxy, the last ``X-Forwarded-For`` entry
    (the one our own proxy appended; earlier ones are whatever the client claimed)."""
    if behind_proxy:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
        if forwarded and forwarded[-1]:
            return forwarded[-1]
    return request.remote or "unknown"


def request_is_https(request: web.Request, behind_proxy: bool) -> bool:
    if request.secure:
        return True
    return behind_proxy and request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip() == "https"


def session_key(settings: Settings) -> bytes:
    """The 32-byte Fernet key of the session cookie: from ``FW_WEB_SECRET`` (so every replica and
    every restart reads the same cookies), else random for this process."""
    if settings.web_secret is None:
        return secrets.token_bytes(32)
    return hashlib.sha256(
        b"frontierwatch console session\0" + settings.web_secret.get_secret_value().encode()
    ).digest()


class ConsoleCookieStorage(EncryptedCookieStorage):
    """The encrypted cookie, marked ``Secure`` per request when the request came over https."""

    def __init__(self, key: bytes, *, max_age: int, behind_proxy: bool) -> None:
        super().__init__(
            key,  # raw bytes: the storage base64-encodes them into a Fernet key
            cookie_name=SESSION_COOKIE,
            max_age=max_age,
            httponly=True,
            samesite="Strict",
            path="/",
        )
        self.behind_proxy = behind_proxy

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        await super().save_session(request, response, session)
        cookie = response.cookies.get(self.cookie_name)
        if cookie is not None and request_is_https(request, self.behind_proxy):
            cookie["secure"] = True


# ---------------------------------------------------------------------------------------- sessions
async def csrf_token(request: web.Request) -> str:
    """This session's CSRF token (made on first use; an anonymous session has one too, for the
    sign-in form)."""
    session = await get_session(request)
    token = session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_CSRF] = token
    return token


async def csrf_valid(request: web.Request, submitted: str | None) -> bool:
    session = await get_session(request)
    expected = session.get(_CSRF)
    if not isinstance(expected, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


async def is_signed_in(request: web.Request, check: PasswordCheck, lifetime: float) -> bool:
    """Signed in with the current password, less than ``lifetime`` seconds ago (the cookie's own
    expiry is sliding, as it is re-encrypted whenever the session changes; this one is not)."""
    session = await get_session(request)
    fingerprint, since = session.get(_CREDENTIAL), session.get(_SIGNED_IN)
    if not isinstance(fingerprint, str) or not isinstance(since, int) or since + lifetime < time.time():
        return False
    return hmac.compare_digest(fingerprint, check.fingerprint)


async def sign_in(request: web.Request, check: PasswordCheck) -> None:
    """A fresh session (new CSRF token, so a token seen before sign-in is worth nothing after)."""
    session = await new_session(request)
    session[_SIGNED_IN] = int(time.time())
    session[_CREDENTIAL] = check.fingerprint
    session[_CSRF] = secrets.token_urlsafe(32)


async def sign_out(request: web.Request) -> None:
    session = await get_session(request)
    session.invalidate()


async def flash(request: web.Request, message: str) -> None:
    """A one-line message shown on the next page (after a POST's redirect)."""
    session = await get_session(request)
    session["flash"] = message[:300]


async def take_flash(request: web.Request) -> str | None:
    session = await get_session(request)
    message = session.pop("flash", None)
    return message if isinstance(message, str) else None
