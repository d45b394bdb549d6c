"""Tokens already sent keep working: strings made by the 0.1 development code,
fixed here, must decode forever (signed, encrypted and both base32 modes)."""

from __future__ import annotations

import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import InvalidToken
from flask_mailtrack import Tracker

SECRET = "test-secret-key-0123456789abcdef"
ENCRYPTION_KEY = "test-encryption-key-0123456789ab"
OLD_SECRET = "old-secret-key-0123456789abcdef"
OLD_ENCRYPTION_KEY = "old-encryption-key-0123456789ab"
URL = "https://www.example.com/products/item?id=42&utm_source=newsletter"
METADATA = {"customer_id": 12345, "campaign_id": "spring-sale-2026", "name": "Jürgen"}
WEBHOOK = "https://hooks.example.com/in"
ISSUED_AT = 1_800_000_000

#: Made with max_age=3600 and the webhook URL embedded: expiry, webhook,
#: both sections deflated, a non-ASCII metadata value.
FULL = [
    pytest.param(
        {"secret_key": SECRET},
        "1PmtJ0gBrSeAQF0MWSa0AmpeTChaHpylQUgJFqYkRdksAg4lk5OdnF-ulVgBNzEkFy2Tm"
        "caH5wNDI2MRUB80bxQVFmXnpuqA0oWtkYGSmpAOLAK_De4rSU_OUagErzTmI4NjqJzB40"
        "f1-ALNa",
        "1JmtJ0gBrSeAQg4lk5OdnF-ulVgBNzEkFy2TmcaH5wNDI2MRUB80bxQVFmXnpuqA0oWtk"
        "YGSmpAOLAK_De4rSU_OUagFRORjIm80h70Pca2QYzZH7",
        id="signed",
    ),
    pytest.param(
        {"encryption_key": ENCRYPTION_KEY},
        "2G3F-CNLaDMyBGJefPCHIQfOZVqr_8h2gXhZeoz4UE6sKevjANf5M3s5fg8gPzXgSkWMe"
        "_qsS7C_ElqGIsnNMdlsgUzMR_t6Tor5wLS6mwhv8_stBb7fLZjRXMJ_UWJOUwVOuhcsl6"
        "Mi3iGtiFvUqTxPeNVNCDTAxwg",
        "2G_ZnoFOU8NJsyJeR4Qu8jFFOcVxzV6foy0bhZrvPshJ94lmQ9Bsw-ajehpXzwA2yt6n0"
        "05IcqyJTf4MEXTYcu3EZjdbzxomEsm-1tpo848NpweZWJ5inXY_77SQfRT6WBw",
        id="encrypted",
    ),
    pytest.param(
        {"secret_key": SECRET, "case_insensitive_tokens": True},
        "3hzvutuqanne6aeaximletliatklzgcqwq6tssucsajc2tcirozfqba4jmtsoozyx5osv"
        "macnzreqls3e4zy2d6oa2denrrcua7grxrifiwmxt2n2ua2kc23embsknjadrmak7q33r"
        "ljfh44unia2weemafylu4qh5cuiwrzetueoy",
        "3ezvutuqanne6aeedrfsojz3hc7v2kvqajxgesbolmtthdipzydimrwgekqd42g6favcz"
        "s6pjxkqdjillmrqgjjveaofqbl6dpofneu7tsrvac4d5irgujrpfngo5epk4lfqrlgy",
        id="signed-ci",
    ),
    pytest.param(
        {"encryption_key": ENCRYPTION_KEY, "case_insensitive_tokens": True},
        "4dp2xv5pb3qmwqpzfg4hcrbywjgvmsp26jiqsq4tict63yxk36xcsu5zcsgoytk2fw7sd"
        "7i2zcj7kepop6qyw4axbqkabnqbp2zbrn7b7jh7jia2bp6gjfxnuefi2irc7c6k2ln7jl"
        "uy7vjsuz3su3yqkre77o7wxxqzl4nndpix2jbjvui2crwkbxwmik2nws4",
        "4dphkcuks5apmgtfskzjyz3axcqbxotzl3rb257dukjvcog2ewu6e66erymts36i426sz"
        "nd25cljl6domdtf6xnp3czrs4r2g6mf565j55gd4ivkdbuvecvqymibpa5gduymro6gxp"
        "7zjpozjmkjouwo7tadq",
        id="encrypted-ci",
    ),
]

#: Made with a key that has since been rotated out of first place: no
#: expiry, no webhook, short sections stored as they are.
ROTATED = [
    pytest.param(
        "secret_key",
        OLD_SECRET,
        SECRET,
        {},
        "1GGtJ0gANg4mkVgDNykkFx1IiAHsidSI6N32Y37tlFEQWwdDfhEmJPxbq",
        "1AGtJ0gBgH-RpQbpmNbJEqZ_SCoAU",
        id="signed",
    ),
    pytest.param(
        "encryption_key",
        OLD_ENCRYPTION_KEY,
        ENCRYPTION_KEY,
        {},
        "2tgVsiGUMDtUPgGtCtUdMb7OZabueC5ywxZngDWUqt50IWT7H4-PuoRMQ75_5d_4-R-Z8cCmLmQ",
        "2tr4KFXLsQ1p4NyDrmurNtE8XbjCVVEAXV3gaGix_7cqCmQ",
        id="encrypted",
    ),
    pytest.param(
        "secret_key",
        OLD_SECRET,
        SECRET,
        {"case_insensitive_tokens": True},
        "3dbvutuqabwbytjcwadg4usify5jcead3ej2seorxpwxub2lo3w3pg32pwhioqhg7glwq",
        "3abvutuqarbjemxhzh46bo67glyfuwif4ju",
        id="signed-ci",
    ),
    pytest.param(
        "encryption_key",
        OLD_ENCRYPTION_KEY,
        ENCRYPTION_KEY,
        {"case_insensitive_tokens": True},
        "4w3nuenswinuameeyewezrjaomqkgxejduf4fqrqy7z5c5hxrw2kpxk4xoyyjnnzicuk"
        "ark5cpogeyumzs2c2v46c",
        "4wypgze6lh7y5nc5rx7b7wus4wm5lbjunksueexq2ofxqzuirsc4eysi",
        id="encrypted-ci",
    ),
]


@pytest.mark.parametrize(("settings", "click", "open_"), FULL)
def test_tokens_made_by_earlier_code_still_decode(
    settings: dict[str, t.Any], click: str, open_: str
) -> None:
    tracker = Tracker(
        Configuration(
            **settings, max_age=3600, webhook_url=WEBHOOK, include_webhook_url=True
        )
    )
    now = ISSUED_AT + 60
    clicked = tracker.decode_click(click, now=now)
    assert clicked.tracked_url == URL
    assert clicked.metadata == METADATA
    assert clicked.webhook_url == WEBHOOK
    assert (clicked.issued_at, clicked.expires_at) == (ISSUED_AT, ISSUED_AT + 3600)
    opened = tracker.decode_open(open_, now=now)
    assert opened.metadata == METADATA
    assert opened.webhook_url == WEBHOOK
    assert (opened.issued_at, opened.expires_at) == (ISSUED_AT, ISSUED_AT + 3600)
    # Still bound to their kind.
    with pytest.raises(InvalidToken):
        tracker.decode_open(click, now=now)
    with pytest.raises(InvalidToken):
        tracker.decode_click(open_, now=now)


# The fixed tokens were made with a 31-byte OLD_SECRET, before short keys
# issued WeakSecretKeyWarning; the key cannot change without them.
@pytest.mark.filterwarnings("ignore::flask_mailtrack.exceptions.WeakSecretKeyWarning")
@pytest.mark.parametrize(
    ("option", "old", "new", "settings", "click", "open_"), ROTATED
)
def test_tokens_made_with_a_rotated_key_still_decode(
    option: str,
    old: str,
    new: str,
    settings: dict[str, t.Any],
    click: str,
    open_: str,
) -> None:
    rotated = Tracker(Configuration(**{option: [old, new]}, **settings))
    clicked = rotated.decode_click(click)
    assert clicked.tracked_url == "https://example.org/a"
    assert clicked.metadata == {"u": 7}
    assert clicked.issued_at == ISSUED_AT and clicked.expires_at is None
    assert rotated.decode_open(open_).metadata == {}
    without_old = Tracker(Configuration(**{option: [new]}, **settings))
    for kind, token in (("click", click), ("open", open_)):
        with pytest.raises(InvalidToken):
            without_old.decode(kind, token)  # type: ignore[arg-type]
