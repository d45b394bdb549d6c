"""What the rewriters need from a tracker: :class:`LinkMaker`.

The rewriters sit above the core: they take anything that makes tracking
tokens, not :class:`~flask_mailtrack.Tracker` itself, so the core never has
to know they exist. A :class:`~flask_mailtrack.Tracker` is a
:class:`LinkMaker`; so is any object with the members below (a wrapper that
counts tokens, a test double, a tracker of another library).
"""

from __future__ import annotations

import typing as t

from ..tokens import Metadata as Metadata


class TrackingBase(t.Protocol):
    """A tracking base URL, split where the token goes: a tracking URL is
    ``prefix + token + suffix``."""

    @property
    def prefix(self) -> str:
        """Everything before the token."""

    @property
    def suffix(self) -> str:
        """Everything after the token."""


class LinkSettings(t.Protocol):
    """The settings a rewriter reads (a
    :class:`~flask_mailtrack.Configuration` has them)."""

    @property
    def untracked_url_patterns(self) -> t.Sequence[str]:
        """Substrings (case-insensitive) of URLs that are left untracked."""

    @property
    def pixel_position(self) -> str:
        """Where the open pixel goes by default: ``"top"`` or ``"bottom"``."""


class LinkMaker(t.Protocol):
    """Makes the tracking tokens of one recipient's links, and says where
    they go. :class:`~flask_mailtrack.Tracker` is the implementation.

    The rewriters only ask a :class:`LinkMaker` for tokens of links their
    :class:`~flask_mailtrack.rewrite.LinkPolicy` accepted, which are safe
    targets; :meth:`click_tokens` and :meth:`click_url` must still refuse
    any other URL, so that no caller can make an open redirect.

    .. versionadded:: 0.1.0
    """

    @property
    def configuration(self) -> LinkSettings:
        """The settings the rewriters read."""

    @property
    def open_base(self) -> TrackingBase | None:
        """Where open tokens go, ``None`` when open tracking is not set up.
        A document that already has a pixel on it gets no second one."""

    @property
    def click_base(self) -> TrackingBase | None:
        """Where click tokens go, ``None`` when click tracking is not set
        up. Links already on it (or on :attr:`open_base`) are left alone,
        so rewriting twice changes nothing."""

    def open_token(self, metadata: Metadata = None) -> str:
        """The token of the open pixel for ``metadata``."""

    def click_tokens(
        self, urls: t.Iterable[str], metadata: Metadata = None
    ) -> list[str]:
        """One click token per URL, in order, all carrying ``metadata``.

        :raise MailTrackError: a URL is not a safe redirect target.
        """

    def click_url(self, url: str, metadata: Metadata = None) -> str:
        """The whole tracking URL of ``url`` for ``metadata``.

        :raise MailTrackError: ``url`` is not a safe redirect target, or
            there is no :attr:`click_base`.
        """
