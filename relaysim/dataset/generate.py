"""The seeded dataset generator: a spec in, a sorted list of signed events out.

Theory of operation: :class:`_Builder` runs fixed phases (profiles, the viewer's account, root
notes, deep threads, scattered replies, dangling references, expiring notes, the viewer's notes
and the notifications aimed at them, reposts, reactions, zaps, deletions). Each phase draws from
its own named :class:`~relaysim.dataset.rng.Rng` stream, so changing one size does not reshuffle
the others, and every event is signed the moment it is made with aux randomness fixed by its
position. The result is sorted by ``(created_at, id)``: that order, and therefore the JSONL bytes,
depends on nothing but the spec, the relay URL and :data:`~relaysim.dataset.spec.GENERATOR_VERSION`.

What the shape is for (the client caches of ``shared/seed/000_*.txt``): more authors than the
500-entry author-metadata cache, thousands of notes against the 2,000-entry event cache, hundreds
of quotes against the 200-entry embed cache, thousands of replies against the 500-entry reply
cache, and notes with over 1,000 reactions for the reaction maps. Every relay hint, ``r`` tag and
media URL points at the relay that serves the data, so a client that follows them stays local.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from relaysim.dataset.content import EMOJI, Text, http_origin
from relaysim.dataset.keys import KeyRing, derive_secret
from relaysim.dataset.rng import Rng, WeightedPicker
from relaysim.dataset.spec import DatasetSpec
from relaysim.errors import UsageError
from relaysim.nostr.event import Event, EventId, Keypair, PubKey
from relaysim.nostr.nip19 import nevent_encode, nprofile_encode
from relaysim.nostr.zap import ZAP_RECEIPT, ZAP_REQUEST, lnurl_encode, zap_receipt_tags, zap_request_tags

__all__ = [
    "DEFAULT_RELAY_URL",
    "Cast",
    "Generated",
    "NoteRef",
    "build",
    "cast_for",
    "check_relay_url",
    "generate",
]

DEFAULT_RELAY_URL = "ws://127.0.0.1:7447/"
FAR_FUTURE = 4102444800  # 2100-01-01T00:00:00Z: a NIP-40 expiration no test run reaches
ZAP_AMOUNTS_SAT = (21, 21, 50, 100, 100, 210, 500, 1000, 1000, 2100, 5000, 10_000, 21_000, 100_000)
CUSTOM_EMOJI = ("soapbox", "pepe", "nostrich", "bitcoin", "catjam")
HOUR = 3600


@dataclass(frozen=True)
class NoteRef:
    """A note the traffic generator may reply to, react to or zap."""

    id: EventId
    pubkey: PubKey


@dataclass(frozen=True)
class Cast:
    """The dataset's people and notes, for signing new events that fit the dataset.

    ``author_secrets`` are the authors the viewer follows (so new notes land in the home feed);
    ``other_author_secrets`` the rest. Satisfies ``relaysim.traffic.generator.TrafficCast``.
    """

    relay_url: str
    window_end: int
    viewer_secret: bytes
    viewer_pubkey: PubKey
    author_secrets: tuple[bytes, ...]
    author_pubkeys: tuple[PubKey, ...]
    other_author_secrets: tuple[bytes, ...]
    zapper_secret: bytes
    zapper_pubkey: PubKey
    lightning_node_secret: bytes
    viewer_notes: tuple[NoteRef, ...]
    popular_notes: tuple[NoteRef, ...]

    @property
    def viewer_note_ids(self) -> tuple[EventId, ...]:
        return tuple(note.id for note in self.viewer_notes)

    @property
    def popular_note_ids(self) -> tuple[EventId, ...]:
        return tuple(note.id for note in self.popular_notes)


@dataclass(frozen=True)
class Generated:
    """A whole build: events in output order, plus the cast."""

    events: tuple[Event, ...]
    cast: Cast


@dataclass(eq=False)
class _Note:
    """A kind-1 note and what a reply to it needs (its thread root, depth and p tags)."""

    event: Event
    root: _Note | None = None  # None: this note is a root
    depth: int = 0
    ptags: tuple[str, ...] = ()

    @property
    def thread_root(self) -> _Note:
        return self.root or self


def check_relay_url(relay_url: str) -> str:
    """The relay URL written into hints must be a ws:// or wss:// URL with a host."""
    scheme, sep, rest = relay_url.partition("://")
    if (
        not sep
        or scheme not in ("ws", "wss")
        or not rest
        or rest.startswith("/")
        or any(c.isspace() for c in relay_url)
    ):
        raise UsageError(f"relay URL must look like ws://host:port/ (got {relay_url!r})")
    return relay_url


def build(spec: DatasetSpec, relay_url: str = DEFAULT_RELAY_URL) -> Iterator[Event]:
    """The dataset's events in output order (``created_at``, then id)."""
    return iter(generate(spec, relay_url).events)


def generate(spec: DatasetSpec, relay_url: str = DEFAULT_RELAY_URL, *, signed: bool = True) -> Generated:
    """Run the generator. ``signed=False`` writes zero signatures (ids and cast stay exact)."""
    url = check_relay_url(relay_url)
    generated = _Builder(spec, url, signed).run()
    _remember_cast(spec, url, generated.cast)
    return generated


# The casts of recent builds, so a relay that just built a dataset gets its cast for free.
_CASTS: dict[tuple[DatasetSpec, str], Cast] = {}
_CASTS_KEPT = 8


def _remember_cast(spec: DatasetSpec, url: str, cast: Cast) -> None:
    _CASTS.pop((spec, url), None)
    while len(_CASTS) >= _CASTS_KEPT:
        _CASTS.pop(next(iter(_CASTS)))  # the oldest entry (dicts keep insertion order)
    _CASTS[(spec, url)] = cast


def cast_for(spec: DatasetSpec, relay_url: str | None = None) -> Cast:
    """Keys and note ids of ``spec``'s people for the traffic generator.

    Reuses the cast of a recent build in this process; otherwise runs the generator unsigned:
    kind-1 ids never depend on signatures (quotes refer by id), so the note ids are the real
    build's (the tests check that).
    """
    url = check_relay_url(relay_url or DEFAULT_RELAY_URL)
    cast = _CASTS.get((spec, url))
    return cast if cast is not None else generate(spec, url, signed=False).cast


class _Builder:
    def __init__(self, spec: DatasetSpec, relay_url: str, signed: bool) -> None:
        self.spec = spec
        self.url = relay_url
        self.seed = spec.seed_bytes
        self.keys = KeyRing(self.seed, signed)
        self.start = spec.window_start
        self.end = spec.window_end
        self.text = Text(Rng(self.seed, "text"), relay_url)
        self.media = http_origin(relay_url) + "/media"
        self.events: list[Event] = []
        self.notes: list[_Note] = []  # every kind-1 note by an author, in creation order
        self.roots: list[_Note] = []
        self.by_author: dict[str, list[_Note]] = {}
        self.protected: set[str] = set()  # ids that deletions must leave alone (membership only)
        acc = spec.accounts
        self.viewer = self.keys.key("viewer", 0)
        self.authors = [self.keys.key("author", i) for i in range(acc.authors)]
        self.author_by_pubkey = {author.pubkey: author for author in self.authors}
        self.crowd = [self.keys.key("crowd", i) for i in range(acc.crowd)]
        self.zapper = self.keys.key("zapper", 0)
        self.strangers = [self.keys.key("stranger", i).pubkey for i in range(acc.strangers)]
        self.ln_node = derive_secret(self.seed, "lightning-node", 0)
        self.author_picker = WeightedPicker.zipf(self.authors, offset=8.0)
        self.followed: list[Keypair] = []
        self.viewer_notes: list[_Note] = []
        self.viral: list[_Note] = []
        self.popularity: list[_Note] = []

    # --- helpers -------------------------------------------------------------------------------

    def sign(
        self, key: Keypair, created_at: int, kind: int, tags: Sequence[Sequence[str]], content: str
    ) -> Event:
        event = self.keys.sign(key, created_at=created_at, kind=kind, tags=tags, content=content)
        self.events.append(event)
        return event

    def any_time(self, rng: Rng, low: int | None = None, high: int | None = None) -> int:
        low = self.start if low is None else low
        high = self.end if high is None else max(low, high)  # short windows: no room to spare
        return rng.between(low, high)

    def after(self, rng: Rng, created_at: int, within: int = 6 * HOUR) -> int:
        """A time shortly after ``created_at`` (clamped to the window end: clamping makes ties too)."""
        return min(self.end, created_at + 1 + rng.below(within))

    def missing_id(self, index: int) -> str:
        """An event id that is in no dataset: a dangling reference."""
        return hashlib.sha256(self.seed + b"\x00missing\x00" + str(index).encode()).hexdigest()

    def mention(self, pubkey: str) -> str:
        return "nostr:" + nprofile_encode(pubkey, [self.url])

    def quote_uri(self, event_id: str, author: str) -> str:
        return "nostr:" + nevent_encode(event_id, [self.url], author, 1)

    def add_note(self, note: _Note) -> _Note:
        self.notes.append(note)
        self.by_author.setdefault(note.event.pubkey, []).append(note)
        if note.root is None:
            self.roots.append(note)
        return note

    def write_note(
        self,
        rng: Rng,
        author: Keypair,
        created_at: int,
        *,
        tags: list[list[str]] | None = None,
        prefix: str = "",
        suffix: str = "",
    ) -> Event:
        """Sign a kind-1 note with generated text, plus maybe a mention or a quote."""
        spec = self.spec.notes
        body, extra = self.text.note(unicode=rng.chance(spec.unicode_share), long=rng.chance(spec.long_share))
        tags = list(tags or [])
        if rng.chance(spec.mention_share):
            target = self.author_picker.pick(rng).pubkey
            if target != author.pubkey:
                body = f"{body} {self.mention(target)}"
                tags.append(["p", target, self.url])
        if self.notes and rng.chance(spec.quote_share):
            quoted = rng.pick(self.notes).event
            if quoted.created_at <= created_at:
                suffix = f"{suffix}\n\n{self.quote_uri(quoted.id, quoted.pubkey)}"
                tags.append(["q", quoted.id, self.url, quoted.pubkey])
                if quoted.pubkey != author.pubkey:
                    tags.append(["p", quoted.pubkey, self.url])
        return self.sign(author, created_at, 1, tags + extra, prefix + body + suffix)

    def reply(self, rng: Rng, parent: _Note, author: Keypair, *, pooled: bool = True) -> _Note:
        """A NIP-10 reply: marked ``root``/``reply`` e tags, parent's p tags plus parent's author.

        ``pooled=False`` keeps it out of the pools later phases draw targets from.
        """
        root = parent.thread_root
        at = self.after(rng, parent.event.created_at)
        tags = [["e", root.event.id, self.url, "root", root.event.pubkey]]
        if parent is not root:
            tags.append(["e", parent.event.id, self.url, "reply", parent.event.pubkey])
        ptags = [pk for pk in (*parent.ptags, parent.event.pubkey) if pk != author.pubkey]
        ptags = list(dict.fromkeys(ptags))  # keep first occurrence, in order
        tags.extend(["p", pk, self.url] for pk in ptags)
        event = self.write_note(rng, author, at, tags=tags)
        note = _Note(event, root, parent.depth + 1, tuple(ptags))
        return self.add_note(note) if pooled else note

    # --- phases --------------------------------------------------------------------------------

    def run(self) -> Generated:
        self.profiles()
        self.viewer_account()
        self.root_notes()
        self.deep_threads()
        self.scattered_replies()
        self.dangling()
        self.expiring()
        self.viewer_activity()
        self.choose_popularity()
        self.reposts()
        self.reactions()
        self.zaps()
        self.deletions()
        events = tuple(sorted(self.events, key=lambda e: (e.created_at, e.id)))
        return Generated(events, self.cast())

    def profiles(self) -> None:
        """Kind 0 (1-3 versions; author 0 has two with the same created_at) and kind 10002 each."""
        rng = Rng(self.seed, "profiles")
        share = self.spec.accounts.multi_profile_share
        for index, author in enumerate(self.authors):
            versions = rng.between(2, 3) if rng.chance(share) else 1
            times = sorted(self.any_time(rng) for _ in range(versions))
            if index == 0:
                # Two versions in one second: a relay must keep the lowest id (NIP-01).
                times = [times[0], times[0]]
            for version, created_at in enumerate(times):
                self.sign(author, created_at, 0, [], self.text.profile(index, version))
            self.sign(author, self.any_time(rng), 10002, [["r", self.url]], "")

    def viewer_account(self) -> None:
        """The logged-in account: profile versions, follows with hints and petnames, relay list."""
        rng = Rng(self.seed, "viewer-account")
        spec = self.spec
        early = self.start + spec.window_seconds // 4
        times = sorted(self.any_time(rng, self.start, early) for _ in range(spec.viewer.profile_versions))
        for version, created_at in enumerate(times):
            about = f"The relaysim viewer account (version {version + 1})."
            body = (
                '{"name":"viewer","display_name":"Viewer","about":"'
                + about
                + '","picture":"'
                + f'{self.media}/avatar/viewer-{version}.png","nip05":"viewer@example.com"}}'
            )
            self.sign(self.viewer, created_at, 0, [], body)
        self.followed = rng.sample(self.authors, spec.accounts.followed)
        index_of = {author.pubkey: i for i, author in enumerate(self.authors)}
        follows = [["p", a.pubkey, self.url, Text.name(index_of[a.pubkey])] for a in self.followed]
        self.sign(self.viewer, self.any_time(rng, self.start, early), 3, follows, "")
        self.sign(self.viewer, self.any_time(rng, self.start, early), 10002, [["r", self.url]], "")

    def root_notes(self) -> None:
        """Roots spread over the window, plus same-second clusters, written in time order."""
        rng = Rng(self.seed, "roots")
        spec = self.spec.notes
        times = [self.any_time(rng) for _ in range(spec.roots)]
        for _ in range(spec.clusters):
            second = self.any_time(rng)
            times.extend([second] * spec.cluster_size)
        times.sort()
        for created_at in times:
            author = self.author_picker.pick(rng)
            self.add_note(_Note(self.write_note(rng, author, created_at)))

    def deep_threads(self) -> None:
        """Chains 4..max_depth deep with side branches: NIP-10 trees a thread view must walk."""
        rng = Rng(self.seed, "threads")
        spec = self.spec.notes
        for root in rng.sample(self.roots, spec.deep_threads):
            depth = rng.between(min(4, spec.max_depth), spec.max_depth)
            parent = root
            for _ in range(depth):
                author = root.event.pubkey if rng.chance(0.3) else None
                key = self.key_of(author) if author else self.author_picker.pick(rng)
                child = self.reply(rng, parent, key)
                for _ in range(rng.below(3) if rng.chance(0.4) else 0):
                    self.reply(rng, parent, self.author_picker.pick(rng))
                parent = child

    def key_of(self, pubkey: PubKey) -> Keypair:
        return self.author_by_pubkey[pubkey]

    def scattered_replies(self) -> None:
        """Replies to earlier notes: busy threads get busier, trees grow deeper at random."""
        rng = Rng(self.seed, "replies")
        root_picker = WeightedPicker.zipf(rng.shuffled(self.roots), offset=3.0)
        for _ in range(self.spec.notes.replies):
            parent = rng.pick(self.notes) if rng.chance(0.6) else root_picker.pick(rng)
            self.reply(rng, parent, self.author_picker.pick(rng))

    def dangling(self) -> None:
        """References to things not in the dataset: missing root, missing parent, quote, person."""
        rng = Rng(self.seed, "dangling")
        for i in range(self.spec.notes.dangling):
            author = self.author_picker.pick(rng)
            created_at = self.any_time(rng)
            ghost = self.missing_id(i)
            ghost_author = rng.pick(self.strangers) if self.strangers else self.viewer.pubkey
            case = i % 4
            if case == 0:  # reply whose whole thread is missing
                tags = [["e", ghost, self.url, "root", ghost_author], ["p", ghost_author, self.url]]
                self.write_note(rng, author, created_at, tags=tags)
            elif case == 1:  # reply to a missing parent inside an existing thread
                root = rng.pick(self.roots).event
                at = max(created_at, root.created_at)
                tags = [
                    ["e", root.id, self.url, "root", root.pubkey],
                    ["e", ghost, self.url, "reply", ghost_author],
                    ["p", root.pubkey, self.url],
                    ["p", ghost_author, self.url],
                ]
                self.write_note(rng, author, at, tags=tags)
            elif case == 2:  # quote of a missing note
                tags = [["q", ghost, self.url, ghost_author]]
                self.write_note(
                    rng, author, created_at, tags=tags, suffix="\n\n" + self.quote_uri(ghost, ghost_author)
                )
            else:  # mention of someone who never published anything here
                tags = [["p", ghost_author, self.url]]
                self.write_note(
                    rng, author, created_at, tags=tags, prefix=f"cc {self.mention(ghost_author)} "
                )

    def expiring(self) -> None:
        """NIP-40: notes that expired inside the window, and notes that expire in 2100."""
        rng = Rng(self.seed, "expiring")
        spec = self.spec.notes
        for _ in range(spec.expired):
            created_at = self.any_time(rng, self.start, self.end - 2 * HOUR)
            expires = min(self.end - 1, created_at + 60 + rng.below(3 * 24 * HOUR))
            tags = [["expiration", str(expires)]]
            self.write_note(
                rng, self.author_picker.pick(rng), created_at, tags=tags, prefix="[expires soon] "
            )
        for _ in range(spec.future_expiring):
            tags = [["expiration", str(FAR_FUTURE)]]
            self.write_note(rng, self.author_picker.pick(rng), self.any_time(rng), tags=tags)

    def viewer_activity(self) -> None:
        """The viewer's notes, and every kind of notification aimed at the viewer."""
        rng = Rng(self.seed, "viewer")
        spec = self.spec.viewer
        for created_at in sorted(
            self.any_time(rng, self.start, self.end - 12 * HOUR) for _ in range(spec.notes)
        ):
            event = self.write_note(rng, self.viewer, created_at)
            note = _Note(event)
            self.viewer_notes.append(note)
            self.protected.add(event.id)
        if not self.viewer_notes:
            return
        # Replies (some nested, some answered by the viewer): the viewer is in every reply's p tags.
        thread: list[_Note] = list(self.viewer_notes)
        for _ in range(spec.replies):
            parent = rng.pick(thread)
            author = (
                self.author_picker.pick(rng) if rng.chance(0.7) else rng.pick(self.followed or self.authors)
            )
            child = self.reply_in_viewer_thread(rng, parent, author)
            thread.append(child)
            if rng.chance(0.15):
                thread.append(self.reply_in_viewer_thread(rng, child, self.viewer))
        for _ in range(spec.mentions):
            author = self.author_picker.pick(rng)
            tags = [["p", self.viewer.pubkey, self.url]]
            self.write_note(
                rng, author, self.any_time(rng), tags=tags, prefix=f"{self.mention(self.viewer.pubkey)} "
            )
        for _ in range(spec.quotes):
            quoted = rng.pick(self.viewer_notes).event
            author = self.author_picker.pick(rng)
            tags = [["q", quoted.id, self.url, quoted.pubkey], ["p", quoted.pubkey, self.url]]
            self.write_note(
                rng,
                author,
                self.after(rng, quoted.created_at, 24 * HOUR),
                tags=tags,
                suffix="\n\n" + self.quote_uri(quoted.id, quoted.pubkey),
            )

    def reply_in_viewer_thread(self, rng: Rng, parent: _Note, author: Keypair) -> _Note:
        # Replies in the viewer's threads stay out of the general pools (deletions, popularity).
        note = self.reply(rng, parent, author, pooled=False)
        self.protected.add(note.event.id)
        return note

    def choose_popularity(self) -> None:
        """A heavy-tailed popularity order over all notes; the viral notes go first."""
        rng = Rng(self.seed, "popularity")
        followed = {key.pubkey for key in self.followed}
        candidates = [
            n for n in self.roots if n.event.pubkey in followed and not n.event.first_tag_value("expiration")
        ]
        pool = candidates if len(candidates) >= len(self.spec.engagement.viral) else self.roots
        self.viral = rng.sample(pool, len(self.spec.engagement.viral))
        for note in self.viral:
            self.protected.add(note.event.id)
        viral_ids = {note.event.id for note in self.viral}
        rest = [note for note in self.notes if note.event.id not in viral_ids]
        self.popularity = self.viral + rng.shuffled(rest)

    def reposts(self) -> None:
        """Kind 6 (NIP-18): the reposted note's JSON as content, or empty content."""
        rng = Rng(self.seed, "reposts")
        eng = self.spec.engagement
        picker = WeightedPicker.zipf(self.popularity, offset=4.0)
        targets = [picker.pick(rng) for _ in range(eng.reposts)]
        targets += [rng.pick(self.viewer_notes) for _ in range(self.spec.viewer.reposts)]
        for note in targets:
            target = note.event
            author = self.author_picker.pick(rng)
            content = "" if rng.chance(eng.empty_repost_share) else target.json.decode()
            tags = [["e", target.id, self.url], ["p", target.pubkey, self.url]]
            self.sign(author, self.after(rng, target.created_at, 48 * HOUR), 6, tags, content)

    def react(self, rng: Rng, reactor: Keypair, target: Event, within: int) -> None:
        """Kind 7 (NIP-25): like, dislike, emoji or custom emoji, e/p/k tags."""
        roll = rng.below(100)
        extra: list[list[str]] = []
        if roll < 55:
            content = "+"
        elif roll < 60:
            content = "-"
        elif roll < 63:
            content = ""
        elif roll < 88:
            content = rng.pick(EMOJI)
        else:
            code = rng.pick(CUSTOM_EMOJI)
            content = f":{code}:"
            extra = [["emoji", code, f"{self.media}/emoji/{code}.png"]]
        tags = [
            ["e", target.id, self.url, target.pubkey],
            ["p", target.pubkey, self.url],
            ["k", str(target.kind)],
        ]
        self.sign(reactor, self.after(rng, target.created_at, within), 7, tags + extra, content)

    def reactions(self) -> None:
        """Viral notes get their counts from distinct reactors; the rest follow a Zipf tail."""
        rng = Rng(self.seed, "reactions")
        eng = self.spec.engagement
        everyone = self.authors + self.crowd
        for note, count in zip(self.viral, eng.viral, strict=True):
            for reactor in rng.sample(everyone, count):
                self.react(rng, reactor, note.event, 72 * HOUR)
        picker = WeightedPicker.zipf(self.popularity, offset=4.0)
        for _ in range(eng.reactions):
            self.react(rng, rng.pick(everyone), picker.pick(rng).event, 48 * HOUR)
        if self.viewer_notes:
            viewer_picker = WeightedPicker.zipf(self.viewer_notes, offset=1.0)
            for _ in range(self.spec.viewer.reactions):
                self.react(rng, rng.pick(everyone), viewer_picker.pick(rng).event, 48 * HOUR)

    def zap(self, rng: Rng, target: Event) -> None:
        """A kind-9735 receipt carrying its kind-9734 request (NIP-57 Appendix D/E).

        The bolt11 is well-formed and signed by a made-up node key, with the request's amount in
        its prefix and the request's sha256 as its description hash. It is not a payable invoice:
        nothing here ever touches Lightning. The request is signed but not published.
        """
        sender = self.author_picker.pick(rng)
        amount_msat = rng.pick(ZAP_AMOUNTS_SAT) * 1000
        requested_at = self.after(rng, target.created_at, 48 * HOUR)
        lnurl = lnurl_encode(f"https://example.com/.well-known/lnurlp/{sender.pubkey[:12]}")
        request_tags = zap_request_tags(
            relays=[self.url],
            amount_msat=amount_msat,
            recipient=target.pubkey,
            event_id=target.id,
            kind=target.kind,
            lnurl=lnurl,
        )
        comment = rng.pick(("", "", "great post ⚡", "thank you!", "🤙"))
        request = self.keys.sign(
            sender, created_at=requested_at, kind=ZAP_REQUEST, tags=request_tags, content=comment
        )
        preimage = hashlib.sha256(self.seed + b"\x00preimage\x00" + request.id.encode()).digest()
        paid_at = min(self.end, requested_at + 1 + rng.below(20))
        tags = zap_receipt_tags(request, node_secret=self.ln_node, preimage=preimage)
        self.sign(self.zapper, paid_at, ZAP_RECEIPT, tags, "")

    def zaps(self) -> None:
        rng = Rng(self.seed, "zaps")
        picker = WeightedPicker.zipf(self.popularity, offset=4.0)
        for _ in range(self.spec.engagement.zaps):
            self.zap(rng, picker.pick(rng).event)
        for _ in range(self.spec.viewer.zaps if self.viewer_notes else 0):
            self.zap(rng, rng.pick(self.viewer_notes).event)

    def deletions(self) -> None:
        """Kind 5 (NIP-09): authors delete one or two of their own notes; one names a missing id."""
        rng = Rng(self.seed, "deletions")
        candidates = [note for note in self.notes if note.event.id not in self.protected]
        deleted: set[str] = set()
        for i in range(self.spec.engagement.deletions if candidates else 0):
            first = rng.pick(candidates)
            if first.event.id in deleted:
                continue
            own = [n for n in self.by_author[first.event.pubkey] if n.event.id not in self.protected]
            targets = [first]
            second = rng.pick(own)
            if rng.chance(0.25) and second is not first and second.event.id not in deleted:
                targets.append(second)
            tags = [["e", note.event.id] for note in targets]
            if i == 0:
                tags.append(["e", self.missing_id(10_000_000)])
            tags.append(["k", "1"])
            latest = max(note.event.created_at for note in targets)
            deleted.update(note.event.id for note in targets)
            reason = rng.pick(("", "posted by mistake", "typo", "🙈"))
            self.sign(self.key_of(first.event.pubkey), self.after(rng, latest, 24 * HOUR), 5, tags, reason)

    def cast(self) -> Cast:
        followed = {key.pubkey for key in self.followed}
        popular = self.viral + self.popularity[len(self.viral) : len(self.viral) + 20]
        return Cast(
            relay_url=self.url,
            window_end=self.end,
            viewer_secret=self.viewer.secret,
            viewer_pubkey=self.viewer.pubkey,
            author_secrets=tuple(key.secret for key in self.followed),
            author_pubkeys=tuple(key.pubkey for key in self.followed),
            other_author_secrets=tuple(key.secret for key in self.authors if key.pubkey not in followed),
            zapper_secret=self.zapper.secret,
            zapper_pubkey=self.zapper.pubkey,
            lightning_node_secret=self.ln_node,
            viewer_notes=tuple(NoteRef(n.event.id, n.event.pubkey) for n in self.viewer_notes),
            popular_notes=tuple(NoteRef(n.event.id, n.event.pubkey) for n in popular),
        )
