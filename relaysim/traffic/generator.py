"""The traffic generator: new signed events from the dataset's cast, on a deterministic schedule.

Theory of operation: the generator is a pure value machine. It holds the cast (fixed keys and
note ids from the dataset), the rates, a start time and one counter pair per traffic kind; it
keeps no history, so its memory does not grow however long it runs.

* Schedule: the k-th scheduled event of a kind is due at ``start_time + k / rate`` (k = 1, 2, ...).
  :meth:`TrafficGenerator.events_due` returns everything due up to ``now`` that was not returned
  before; rates are exact fractions, so an hour at 0.1/s gives exactly 360 events.
* Content: every choice (author, target note, words, amount) and the BIP-340 auxiliary randomness
  come from sha256 over (seed, kind name, that kind's counter). The same seed and the same
  sequence of calls therefore give byte-identical events on any machine.
* Aim: every event is written by an author the viewer follows (the feed:
  ``{"authors": followed, "kinds": [1, 6]}``) and replies, reactions, reposts and zaps carry the
  viewer's ``p`` tag (notifications: ``{"#p": [viewer]}``), so a client under test receives them
  on the subscriptions it already holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from fractions import Fraction
from math import floor
from typing import NamedTuple, Protocol, TypeVar

import orjson

from relaysim.errors import UsageError
from relaysim.nostr.event import Event, Keypair, PubKey, sign_event
from relaysim.nostr.nip19 import note_encode, npub_encode
from relaysim.nostr.zap import ZAP_RECEIPT, ZAP_REQUEST, zap_receipt_tags, zap_request_tags
from relaysim.traffic.rates import KIND_NAMES, NOSTR_KINDS, Rates

__all__ = ["Emission", "TrafficCast", "TrafficGenerator"]

_T = TypeVar("_T")

# fmt: off
_WORDS = (
    "relay", "nostr", "coffee", "sunrise", "bitcoin", "garden", "signal", "ocean", "mountain",
    "music", "river", "keyboard", "zap", "thread", "bloom", "static", "lantern", "orbit", "pixel",
    "harbor", "ferment", "tundra", "wasm", "heap", "sats", "meadow", "cipher", "comet",
)
# fmt: on
_FLOURISH = ("", "", "", " 🌅", " ⚡", " 🤙", " — ça va?", " 日本語", " 🧪🧪", "!")
_REACTIONS = ("+", "+", "+", "🤙", "❤️", "🔥", "-", "+")
_ZAP_AMOUNTS_MSAT = (1_000, 21_000, 100_000, 210_000, 1_000_000, 5_000_000)
_ZAP_COMMENTS = ("", "", "great post", "⚡⚡", "thanks!")
# The receipt's reference tags in the order this generator has always written them (its output
# is pinned by a golden digest); the dataset uses NIP-57's example order.
_RECEIPT_TAG_ORDER = ("p", "e", "P")


class TrafficCast(Protocol):
    """What the generator needs from a dataset (``relaysim.dataset.cast_for(spec)`` provides it)."""

    @property
    def viewer_pubkey(self) -> str: ...
    @property
    def author_secrets(self) -> Sequence[bytes]: ...  # authors the viewer follows
    @property
    def zapper_secret(self) -> bytes: ...  # the recipient's LNURL server: signs zap receipts
    @property
    def lightning_node_secret(self) -> bytes: ...  # signs the bolt11 invoices
    @property
    def viewer_note_ids(self) -> Sequence[str]: ...  # kind-1 notes written by the viewer
    @property
    def popular_note_ids(self) -> Sequence[str]: ...
    @property
    def relay_url(self) -> str: ...


class Emission(NamedTuple):
    """One generated event and the traffic kind that produced it (notes and replies share kind 1)."""

    kind_name: str
    event: Event


class _Draws:
    """Deterministic choices for one event: the i-th draw is sha256(digest || i)."""

    __slots__ = ("_digest", "_index")

    def __init__(self, digest: bytes) -> None:
        self._digest = digest
        self._index = 0

    def _next(self) -> int:
        self._index += 1
        block = hashlib.sha256(self._digest + self._index.to_bytes(4, "big")).digest()
        return int.from_bytes(block[:8], "big")

    def below(self, n: int) -> int:
        return self._next() % n

    def pick(self, items: Sequence[_T]) -> _T:
        return items[self.below(len(items))]

    def secret(self, label: bytes) -> bytes:
        return hashlib.sha256(self._digest + b"\0" + label).digest()


class TrafficGenerator:
    """Makes the live traffic a relay pushes to a client under test. Pure: no clock, no I/O.

    Call :meth:`events_due` with the current time as often as you like; call :meth:`skip_to` when
    traffic resumes after a pause so the pause does not turn into a backlog; :meth:`burst` for
    ``n`` extra events of one kind now.
    """

    def __init__(self, cast: TrafficCast, seed: int | str, rates: Rates, start_time: float) -> None:
        if not cast.author_secrets:
            raise UsageError("the dataset's cast has no authors to write traffic as")
        self.rates = rates
        self.start_time = float(start_time)
        self._start = Fraction(self.start_time)
        self._seed = str(seed).encode()
        self._viewer = PubKey(cast.viewer_pubkey)
        self._viewer_npub = npub_encode(cast.viewer_pubkey)
        self._relay_url = cast.relay_url
        # One keypair per author: building it costs as much as a signature.
        self._authors = tuple(Keypair(secret) for secret in cast.author_secrets)
        self._zapper = Keypair(cast.zapper_secret)
        self._node_secret = bytes(cast.lightning_node_secret)
        self._viewer_notes = tuple(cast.viewer_note_ids)
        self._popular_notes = tuple(cast.popular_note_ids)
        self._now = self.start_time
        # Scheduled slots already handed out, and events made (scheduled + bursts), per kind.
        self._scheduled = dict.fromkeys(KIND_NAMES, 0)
        self._made = dict.fromkeys(KIND_NAMES, 0)

    # -- schedule -------------------------------------------------------------------------

    def _slots_due(self, name: str, now: float) -> int:
        rate = self.rates.rate(name)
        if rate <= 0:
            return 0
        elapsed = Fraction(now) - self._start
        return max(0, floor(elapsed * rate))

    def emissions_due(self, now: float) -> list[Emission]:
        """Like :meth:`events_due`, with the traffic kind of each event."""
        self._now = max(self._now, now)
        out: list[Emission] = []
        for name in KIND_NAMES:
            due = self._slots_due(name, now)
            owed = due - self._scheduled[name]
            if owed > 0:
                self._scheduled[name] = due
                out.extend(self._make(name, now) for _ in range(owed))
        return out

    def events_due(self, now: float) -> list[Event]:
        """Every scheduled event due at or before ``now`` not returned yet; ``created_at = int(now)``."""
        return [emission.event for emission in self.emissions_due(now)]

    def skip_to(self, now: float) -> None:
        """Drop whatever is due up to ``now`` without making it (call on resume after a pause)."""
        self._now = max(self._now, now)
        for name in KIND_NAMES:
            self._scheduled[name] = max(self._scheduled[name], self._slots_due(name, now))

    def burst_emissions(self, kind_name: str, n: int, now: float | None = None) -> list[Emission]:
        """Like :meth:`burst`, with the traffic kind of each event."""
        if kind_name not in NOSTR_KINDS:
            raise UsageError(f"unknown traffic kind '{kind_name}' (valid: {', '.join(KIND_NAMES)})")
        if n < 0:
            raise UsageError(f"burst size must not be negative, got {n}")
        at = self._now if now is None else now
        self._now = max(self._now, at)
        return [self._make(kind_name, at) for _ in range(n)]

    def burst(self, kind_name: str, n: int, now: float | None = None) -> list[Event]:
        """``n`` extra events of ``kind_name`` at ``now`` (default: the latest time seen)."""
        return [emission.event for emission in self.burst_emissions(kind_name, n, now)]

    def made(self) -> dict[str, int]:
        """Events made so far per traffic kind (scheduled and burst)."""
        return dict(self._made)

    # -- event makers ---------------------------------------------------------------------

    def _make(self, name: str, now: float) -> Emission:
        counter = self._made[name]
        self._made[name] = counter + 1
        digest = hashlib.sha256(
            b"relaysim-traffic\0" + self._seed + b"\0" + name.encode() + b"\0" + counter.to_bytes(8, "big")
        ).digest()
        draws = _Draws(digest)
        maker = getattr(self, f"_make_{name}")
        return Emission(name, maker(draws, counter, int(now)))

    def _sign(
        self,
        draws: _Draws,
        signer: Keypair,
        created_at: int,
        kind: int,
        tags: list[list[str]],
        content: str,
        label: bytes = b"aux",
    ) -> Event:
        """Sign with aux randomness drawn from this event's digest (``label`` tells two apart)."""
        aux = draws.secret(label)
        return sign_event(signer, created_at=created_at, kind=kind, tags=tags, content=content, aux=aux)

    def _sentence(self, draws: _Draws, counter: int) -> str:
        words = [draws.pick(_WORDS) for _ in range(3 + draws.below(8))]
        return f"{' '.join(words).capitalize()}{draws.pick(_FLOURISH)} (live #{counter})"

    def _viewer_note(self, draws: _Draws) -> str:
        if not self._viewer_notes:
            raise UsageError("the dataset's cast has no viewer notes for replies, reactions, reposts or zaps")
        return draws.pick(self._viewer_notes)

    def _make_notes(self, draws: _Draws, counter: int, created_at: int) -> Event:
        author = draws.pick(self._authors)
        content = self._sentence(draws, counter)
        tags: list[list[str]] = []
        style = draws.below(4)
        if style == 0:
            # NIP-27 mention of the viewer: also lands in the viewer's notifications.
            content += f" nostr:{self._viewer_npub}"
            tags.append(["p", self._viewer])
        elif style == 1 and self._popular_notes:
            # NIP-18 quote of a popular note.
            quoted = draws.pick(self._popular_notes)
            content += f" nostr:{note_encode(quoted)}"
            tags.append(["q", quoted, self._relay_url])
        return self._sign(draws, author, created_at, 1, tags, content)

    def _make_replies(self, draws: _Draws, counter: int, created_at: int) -> Event:
        author = draws.pick(self._authors)
        root = self._viewer_note(draws)
        # NIP-10: a direct reply to a root carries only the "root" marker; p = the parent's author.
        tags = [["e", root, self._relay_url, "root", self._viewer], ["p", self._viewer]]
        return self._sign(draws, author, created_at, 1, tags, self._sentence(draws, counter))

    def _make_reactions(self, draws: _Draws, counter: int, created_at: int) -> Event:
        author = draws.pick(self._authors)
        target = self._viewer_note(draws)
        # NIP-25: e and p of the target (last), k = the target's kind.
        tags = [["e", target, self._relay_url, self._viewer], ["p", self._viewer], ["k", "1"]]
        return self._sign(draws, author, created_at, 7, tags, draws.pick(_REACTIONS))

    def _make_reposts(self, draws: _Draws, counter: int, created_at: int) -> Event:
        author = draws.pick(self._authors)
        target = self._viewer_note(draws)
        # NIP-18: content MAY be empty (the generator keeps no copy of the reposted note);
        # the e tag MUST carry a relay URL, and clients fetch the note from it.
        tags = [["e", target, self._relay_url], ["p", self._viewer]]
        return self._sign(draws, author, created_at, 6, tags, "")

    def _make_zaps(self, draws: _Draws, counter: int, created_at: int) -> Event:
        sender = draws.pick(self._authors)
        target = self._viewer_note(draws)
        amount = draws.pick(_ZAP_AMOUNTS_MSAT)
        # NIP-57 Appendix A: the zap request (9734) the sender's wallet would have sent.
        request_tags = zap_request_tags(
            relays=[self._relay_url], amount_msat=amount, recipient=self._viewer, event_id=target
        )
        comment = draws.pick(_ZAP_COMMENTS)
        request = self._sign(
            draws, sender, created_at, ZAP_REQUEST, request_tags, comment, label=b"aux-request"
        )
        # NIP-57 Appendix E: the receipt, signed by the recipient's LNURL server key (the zapper).
        preimage = draws.secret(b"preimage")
        tags = zap_receipt_tags(
            request, node_secret=self._node_secret, preimage=preimage, order=_RECEIPT_TAG_ORDER
        )
        return self._sign(draws, self._zapper, created_at, ZAP_RECEIPT, tags, "")

    def _make_profiles(self, draws: _Draws, counter: int, created_at: int) -> Event:
        author = draws.pick(self._authors)
        pubkey = author.pubkey
        word = draws.pick(_WORDS)
        profile = {
            "name": f"{word}-{pubkey[:6]}",
            "display_name": f"{word.capitalize()} {pubkey[:4]}",
            "about": f"{self._sentence(draws, counter)} (profile update)",
        }
        return self._sign(draws, author, created_at, 0, [], orjson.dumps(profile).decode())
