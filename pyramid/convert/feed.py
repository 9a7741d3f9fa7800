"""RSS 2.0, RSS 1.0 (RDF) and Atom feeds → one entry per item, its HTML turned into markdown.

MarkItDown's ``RssConverter`` renders a whole feed as one markdown string; an item is the unit a
reader cites, so items are read here (defusedxml: no entity expansion, no external fetches) and
only their HTML bodies go through MarkItDown's HTML converter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConversionError
from .deps import load
from .office import html_to_markdown
from .text import clean_markdown, one_line, plain_title

_ATOM = "{http://www.w3.org/2005/Atom}"
_RSS1 = "{http://purl.org/rss/1.0/}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_XHTML = "{http://www.w3.org/1999/xhtml}"


@dataclass
class FeedItem:
    key: str  # guid/id, else link, else a hash of title and date (or of the body)
    title: str
    markdown: str
    meta: dict[str, str] = field(default_factory=dict)


def parse_feed(data: bytes, path: str) -> tuple[str | None, list[FeedItem]]:
    """``(feed title, items)``; items without any text are skipped."""
    from xml.etree.ElementTree import ParseError

    load()
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data)
    except ParseError as exc:
        raise ConversionError(path, f"malformed feed XML: {one_line(str(exc))}") from exc
    except DefusedXmlException as exc:
        raise ConversionError(path, f"refused feed XML: {type(exc).__name__} (entity or DTD tricks)") from exc
    if root.tag == f"{_ATOM}feed" or root.tag == "feed":
        ns = _ATOM if root.tag.startswith("{") else ""
        feed_title = _text(root.find(f"{ns}title"))
        entries = [_atom_entry(entry, ns) for entry in root.findall(f"{ns}entry")]
    elif root.tag == "rss":
        channel = root.find("channel")
        channel = channel if channel is not None else root
        feed_title = _text(channel.find("title"))
        entries = [_rss_item(item, "") for item in channel.findall("item")]
    elif root.tag == f"{_RDF}RDF":
        channel = root.find(f"{_RSS1}channel")
        feed_title = _text(channel.find(f"{_RSS1}title")) if channel is not None else None
        entries = [_rss_item(item, _RSS1) for item in root.findall(f"{_RSS1}item")]
    else:
        raise ConversionError(path, f"not an RSS or Atom feed (root element {root.tag!r})")
    items = _number(entries)
    if not items:
        raise ConversionError(path, "feed has no items with text")
    return plain_title(feed_title) if feed_title else None, items


def _number(entries: list[dict[str, Any]]) -> list[FeedItem]:
    items: list[FeedItem] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, 1):
        body = entry["body"]
        title = entry["title"] or ""
        if not body and not title:
            continue
        # Without guid or link, key by what the item says rather than by its position: a position
        # shifts when an earlier item leaves the feed, which would re-add every later item.
        key = entry["id"] or entry["link"] or _content_key(title, entry["published"], body)
        if key in seen:  # feeds do repeat guids; the key must stay unique within the file
            key = f"{key}~{number}"
        seen.add(key)
        meta = {name: entry[name] for name in ("link", "published", "author") if entry[name]}
        lines = [f"# {title}"] if title else []
        byline = ", ".join(part for part in (entry["published"], entry["author"]) if part)
        if byline:
            lines.append(f"*{byline}*")
        if body:
            lines.append(body)
        items.append(FeedItem(key, title, clean_markdown("\n\n".join(lines)), meta))
    return items


def _content_key(title: str, published: str | None, body: str) -> str:
    import hashlib

    basis = f"{title}\n{published or ''}" if title else body
    return "item-" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:12]


def _rss_item(item: Any, ns: str) -> dict[str, Any]:
    guid = _text(item.find("guid")) or item.get(f"{_RDF}about")
    body = _first_text(item, [f"{_CONTENT}encoded", f"{ns}description"])
    return {
        "id": guid,
        "title": _title(_text(item.find(f"{ns}title"))),
        "link": _text(item.find(f"{ns}link")),
        "published": _text(item.find("pubDate")) or _text(item.find(f"{_DC}date")),
        "author": _text(item.find("author")) or _text(item.find(f"{_DC}creator")),
        # RSS puts HTML in description, escaped or in CDATA; plain text survives the HTML pass.
        "body": _html(body) if body else "",
    }


def _atom_entry(entry: Any, ns: str) -> dict[str, Any]:
    link = None
    for candidate in entry.findall(f"{ns}link"):
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            link = candidate.get("href")
            break
    author = entry.find(f"{ns}author")
    content = entry.find(f"{ns}content")
    if content is None or content.get("src") or _is_binary(content.get("type", "")):
        content = entry.find(f"{ns}summary")
    return {
        "id": _text(entry.find(f"{ns}id")),
        "title": _atom_text(entry.find(f"{ns}title")),
        "link": link,
        "published": _text(entry.find(f"{ns}published")) or _text(entry.find(f"{ns}updated")),
        "author": _text(author.find(f"{ns}name")) if author is not None else None,
        "body": _atom_body(content),
    }


def _is_binary(kind: str) -> bool:
    kind = kind.split(";", 1)[0].strip().lower()
    return "/" in kind and not (kind.startswith("text/") or kind.endswith(("+xml", "/xml")))


def _atom_body(node: Any) -> str:
    if node is None:
        return ""
    kind = node.get("type", "text").split(";", 1)[0].strip().lower()
    if kind in ("html", "text/html"):
        return _html(node.text or "")
    if kind == "xhtml" or kind.endswith(("+xml", "/xml")):
        return _html(_inner_markup(node))
    return clean_markdown(_text(node) or "")


def _atom_text(node: Any) -> str | None:
    """An Atom text construct (title): text, html or xhtml, reduced to one plain line."""
    if node is None:
        return None
    kind = node.get("type", "text").strip().lower()
    if kind == "html":
        return _title(node.text or "")
    if kind == "xhtml":
        return _title("".join(node.itertext()))
    return _title(_text(node))


def _inner_markup(node: Any) -> str:
    """Serialise an element's children as HTML without namespace prefixes (for xhtml content)."""
    from xml.etree.ElementTree import tostring

    parts = [node.text or ""]
    for child in node:
        for element in child.iter():
            if isinstance(element.tag, str) and element.tag.startswith(_XHTML):
                element.tag = element.tag[len(_XHTML) :]
        parts.append(tostring(child, encoding="unicode", default_namespace=None))
    return "".join(parts)


def _html(markup: str) -> str:
    return html_to_markdown(markup)[1]


def _title(raw: str | None) -> str | None:
    if not raw:
        return None
    if "<" in raw:  # titles may carry escaped markup ("Boathouse <i>roof</i>")
        raw = _html(raw)
    return plain_title(raw) or None


def _text(node: Any) -> str | None:
    if node is None:
        return None
    text = "".join(node.itertext()).strip()
    return text or None


def _first_text(node: Any, tags: list[str]) -> str | None:
    for tag in tags:
        text = _text(node.find(tag))
        if text:
            return text
    return None
