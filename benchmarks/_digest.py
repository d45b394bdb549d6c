"""A link-dense HTML email for the rewriting benchmark, made here.

The shared newsletter has ~150 links in ~100 KB; a community or news digest
has several times as many per kilobyte, almost all distinct: every item links
its thread, its author, its category, its source and a reply form, each with
its own query string. :func:`digest` builds such an email, about 200 KB with
about 500 distinct tracked links, from a fixed seed: the same bytes on every
run and every machine, and nothing read from elsewhere.

It carries what real digests carry besides the items: a doctype, an Outlook
conditional comment with a VML button, ``&amp;`` in query strings, a few
links that are left alone (``mailto:``, an anchor, a merge tag, the
unsubscribe link) and some that repeat (the header and footer navigation).

Run ``python benchmarks/_digest.py`` to print it.
"""

from __future__ import annotations

import random

_WORDS = (
    "release notes python async database migration cache latency index query "
    "schema worker queue retry backoff token session cookie header proxy "
    "gateway deploy rollback canary metric alert dashboard trace span log "
    "parser encoder buffer stream socket thread process memory leak profile "
    "benchmark regression fix feature design review proposal roadmap survey "
    "tutorial guide question answer discussion community meetup conference"
).split()

_SOURCES = (
    "https://blog.example.org/{year}/{month:02d}/{slug}/",
    "https://www.example-news.com/articles/{id}-{slug}?ref=digest",
    "https://docs.example.dev/en/latest/{slug}.html#{word}",
    "https://github.example.com/{word}/{word2}/pull/{id}",
    "https://video.example.net/watch?v={code}&list=PL{code2}&t={seconds}s",
    "https://papers.example.edu/abs/{year}.{id:05d}v{version}",
)

_FORUM = "https://forum.example.com"
_CAMPAIGN = "utm_source=digest&amp;utm_medium=email&amp;utm_campaign=weekly-{week}"


def _slug(rng: random.Random, words: int) -> str:
    return "-".join(rng.choice(_WORDS) for _ in range(words))


def _title(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 10))).capitalize()


def _source(rng: random.Random, item: int) -> str:
    pattern = _SOURCES[item % len(_SOURCES)]
    return pattern.format(
        year=2020 + item % 6,
        month=1 + item % 12,
        slug=_slug(rng, rng.randint(3, 6)),
        id=10_000 + item * 37,
        word=rng.choice(_WORDS),
        word2=rng.choice(_WORDS),
        code=f"{rng.getrandbits(40):010x}",
        code2=f"{rng.getrandbits(64):016x}",
        seconds=rng.randint(10, 3000),
        version=1 + item % 3,
    ).replace("&", "&amp;")


def _item(rng: random.Random, item: int, campaign: str) -> str:
    """One digest entry: five distinct tracked links and a paragraph."""
    thread = 40_000 + item * 13
    slug = _slug(rng, rng.randint(3, 7))
    author = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}{item % 97}"
    category = rng.choice(_WORDS)
    title = _title(rng)
    excerpt = " ".join(_title(rng) + "." for _ in range(rng.randint(3, 5)))
    replies = rng.randint(0, 250)
    hours = rng.randint(1, 23)
    topic = f"{_FORUM}/t/{slug}/{thread}"
    return (
        '<tr><td class="item" style="padding:16px 24px;'
        'border-bottom:1px solid #e5e5e5;font-family:Helvetica,Arial,sans-serif;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0"'
        ' border="0"><tr>\n'
        f'<td width="48" valign="top"><a href="{_FORUM}/u/{author}?{campaign}'
        '&amp;utm_content=avatar">'
        f'<img src="https://cdn.example.com/avatars/{author}/96.png" width="40"'
        f' height="40" alt="{author}"'
        ' style="display:block;border-radius:20px;border:0;" /></a></td>\n'
        '<td valign="top" style="padding-left:12px;">\n'
        '<p style="margin:0 0 4px 0;font-size:12px;color:#777777;">'
        f'<a href="{_FORUM}/c/{category}/{item % 40 + 1}?{campaign}'
        '&amp;utm_content=category" style="color:#777777;text-decoration:none;">'
        f"#{category}</a> &middot; {replies} replies &middot; {hours}h ago</p>\n"
        '<h3 style="margin:0 0 6px 0;font-size:17px;line-height:22px;">'
        f'<a href="{topic}?{campaign}&amp;utm_content=title&amp;u={item}"'
        f' style="color:#1a1a1a;text-decoration:none;">{title}</a></h3>\n'
        '<p style="margin:0 0 8px 0;font-size:14px;line-height:20px;color:#444444;">'
        f"{excerpt}</p>\n"
        '<p style="margin:0;font-size:13px;">'
        f'<a href="{topic}/{replies + 1}?{campaign}&amp;utm_content=reply"'
        ' style="color:#0a66c2;">Reply</a> &nbsp;&middot;&nbsp; '
        f'<a href="{_source(rng, item)}" style="color:#0a66c2;">Source</a></p>\n'
        "</td></tr></table>\n"
        "</td></tr>\n"
    )


def digest(*, items: int = 100, seed: int = 20_240_601) -> str:
    """The digest email: ``items`` entries of five distinct links each,
    plus a header and footer (about 200 KB and 500 distinct tracked links
    with the defaults). The same arguments always give the same text."""
    rng = random.Random(seed)
    campaign = _CAMPAIGN.format(week=seed % 52 + 1)
    nav = "".join(
        f'<a href="{_FORUM}/{section}?{campaign}&amp;utm_content=nav"'
        f' style="color:#ffffff;text-decoration:none;">{section.title()}</a> &nbsp; '
        for section in ("latest", "top", "categories", "events")
    )
    button = f"{_FORUM}/latest?{campaign}&amp;utm_content=button"
    body = "".join(_item(rng, item, campaign) for item in range(items))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en" xmlns:v="urn:schemas-microsoft-com:vml">\n'
        "<head>\n"
        '<meta charset="utf-8" />\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0" />\n'
        "<title>Your weekly digest</title>\n"
        '<style type="text/css">body{margin:0;padding:0;}'
        " .item a{color:inherit;}</style>\n"
        "</head>\n"
        '<body style="margin:0;padding:0;background:#f6f6f6;">\n'
        '<a name="top" id="top"></a>\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0"'
        ' border="0" style="max-width:640px;margin:0 auto;background:#ffffff;">\n'
        '<tr><td style="padding:12px 24px;background:#1a1a1a;'
        f'font-family:Helvetica,Arial,sans-serif;font-size:14px;">{nav}</td></tr>\n'
        '<tr><td style="padding:16px 24px;">'
        f'<!--[if mso]><v:roundrect href="{button}"'
        ' style="height:36px;width:180px;" arcsize="10%" fillcolor="#0a66c2">'
        '<center style="color:#ffffff;">Open the forum</center></v:roundrect>'
        "<![endif]--><!--[if !mso]><!-- -->"
        f'<a href="{button}" style="background:#0a66c2;color:#ffffff;'
        'display:inline-block;line-height:36px;width:180px;text-align:center;">'
        "Open the forum</a><!--<![endif]--></td></tr>\n"
        f"{body}"
        '<tr><td style="padding:24px;font-family:Helvetica,Arial,sans-serif;'
        'font-size:12px;color:#777777;">\n'
        f'<p style="margin:0 0 8px 0;">{nav.replace("#ffffff", "#777777")}</p>\n'
        '<p style="margin:0 0 8px 0;">Questions?'
        ' <a href="mailto:team@forum.example.com">team@forum.example.com</a>'
        ' &middot; <a href="#top">Back to top</a></p>\n'
        '<p style="margin:0;"><a href="{{ preferences_url }}">Email preferences</a>'
        f' &middot; <a href="{_FORUM}/email/unsubscribe/{{{{ unsubscribe_key }}}}">'
        "Unsubscribe</a></p>\n"
        "</td></tr>\n"
        "</table>\n"
        "</body>\n"
        "</html>\n"
    )


if __name__ == "__main__":
    print(digest(), end="")
