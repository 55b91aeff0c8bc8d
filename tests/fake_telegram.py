"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests of python-telegram-bot bots.

Point a PTB ``Application`` at it with
``ApplicationBuilder().token(tg.token).base_url(tg.base_url).build()``. PTB then POSTs
``application/x-www-form-urlencoded`` bodies to ``/bot<TOKEN>/<method>``; every value is a string,
with non-string values (ints, bools, lists, objects) JSON-encoded. JSON bodies and query strings
are accepted too.

Standard library only. The HTML parser is a port of tdlib's ``parse_html`` (the code the real Bot
API runs), so error descriptions and byte offsets match what Telegram answers.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

JSON = dict[str, Any]

DEFAULT_TOKEN = "123456:TEST-token"
BOT_USERNAME = "qabot_test_bot"
BOT_FIRST_NAME = "QA Bot"
DEFAULT_USER_ID = 10001
DEFAULT_GROUP_ID = -4000000001
DEFAULT_SUPERGROUP_ID = -1001000000001
FIRST_UPDATE_ID = 500000001
MAX_MESSAGE_LENGTH = 4096
MAX_POLL_LIMIT = 100

# Without allowed_updates, Telegram delivers everything except these three.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Parameters that are plain strings on the wire; everything else PTB sends JSON-encoded.
_STRING_PARAMS = frozenset(
    {
        "text",
        "parse_mode",
        "caption",
        "action",
        "callback_query_id",
        "url",
        "inline_message_id",
        "language_code",
        "business_connection_id",
        "message_effect_id",
        "secret_token",
        "ip_address",
    }
)
_CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and optional response parameters."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSON:
        """Return the JSON body Telegram sends for this error."""
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class _Disconnect(Exception):
    """Close the connection without answering (simulates a dropped network connection)."""


def _bad_request(detail: str) -> ApiError:
    """Build a 400 error the way the Bot API words it."""
    return ApiError(400, f"Bad Request: {detail}")


class HtmlParseError(ValueError):
    """An HTML message Telegram would reject; the message is tdlib's own wording."""


# ----------------------------------------------------------------------------------------------
# Text helpers
# ----------------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram uses for lengths and entity offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _is_word_char(ch: str) -> bool:
    """Match tdlib's is_word_character: letters, numbers and underscore."""
    return ch == "_" or unicodedata.category(ch)[0] in ("L", "N")


def _is_name_char(ch: str) -> bool:
    """Characters allowed in command names and usernames."""
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _scan(text: str, pos: int, accept: Callable[[str], bool]) -> int:
    """Return the first index at or after pos whose character is not accepted."""
    while pos < len(text) and accept(text[pos]):
        pos += 1
    return pos


def _char_at(text: str, pos: int) -> str:
    """Return text[pos], or '' past either end."""
    return text[pos] if 0 <= pos < len(text) else ""


def _find_bot_commands(text: str) -> list[tuple[int, int]]:
    """Code point spans of bot commands, ported from tdlib's match_bot_commands."""
    spans: list[tuple[int, int]] = []
    start = text.find("/")
    while start != -1:
        prev = _char_at(text, start - 1)
        ok = not (prev and (_is_word_char(prev) or prev in "/<>"))
        end = _scan(text, start + 1, _is_name_char)
        ok = ok and 1 <= end - start - 1 <= 64
        if ok and _char_at(text, end) == "@":
            mention_end = _scan(text, end + 1, _is_name_char)
            ok = 3 <= mention_end - end - 1 <= 32
            end = mention_end
        nxt = _char_at(text, end)
        if ok and not (nxt and (_is_word_char(nxt) or nxt in "/<>")):
            spans.append((start, end))
        start = text.find("/", start + 1)
    return spans


def _find_mentions(text: str) -> list[tuple[int, int]]:
    """Code point spans of @username mentions, ported from tdlib's find_mentions."""
    spans: list[tuple[int, int]] = []
    start = text.find("@")
    while start != -1:
        prev = _char_at(text, start - 1)
        end = _scan(text, start + 1, _is_name_char)
        nxt = _char_at(text, end)
        # tdlib drops mentions shorter than 5 characters (apart from a few reserved names).
        valid = 5 <= end - start - 1 <= 32 and not (prev and _is_word_char(prev))
        if valid and not (nxt and _is_word_char(nxt)):
            spans.append((start, end))
        start = text.find("@", start + 1)
    return spans


def detect_entities(text: str) -> list[JSON]:
    """Entities Telegram attaches to an incoming user message: bot_command and mention."""
    found = [("bot_command", span) for span in _find_bot_commands(text)]
    found += [("mention", span) for span in _find_mentions(text)]
    entities = [
        {
            "type": kind,
            "offset": utf16_len(text[:start]),
            "length": utf16_len(text[start:end]),
        }
        for kind, (start, end) in found
    ]
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _trim(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Strip surrounding whitespace like Telegram does, shifting and clipping entities."""
    stripped = text.strip()
    if not stripped:
        return "", []
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


# ----------------------------------------------------------------------------------------------
# HTML parse mode (port of tdlib td/telegram/MessageEntity.cpp parse_html)
# ----------------------------------------------------------------------------------------------

_SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED_ENTITIES = {b"lt": ord("<"), b"gt": ord(">"), b"amp": ord("&"), b"quot": ord('"')}
# tdlib's is_space also treats NUL as a space, which is how the C string's end stops scans.
_SPACE = frozenset(b" \t\r\n\v\0")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_ALNUM = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LT, _GT, _AMP, _SLASH, _EQ = (ord(c) for c in "<>&/=")
_QUOTES = (ord('"'), ord("'"))


def _decode_entity(src: bytes, pos: int) -> tuple[int, int]:
    """Decode the character reference at src[pos] == '&'; (0, pos) if it is not one."""
    end = pos + 1
    code = 0
    if src[pos + 1] == ord("#"):
        end += 1
        if src[pos + 2] == ord("x"):
            end += 1
            while src[end] in _HEX:
                code = code * 16 + int(chr(src[end]), 16)
                end += 1
        else:
            while src[end] in _DIGITS:
                code = code * 10 + src[end] - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(src[end]).isascii() and chr(src[end]).isalpha():
            end += 1
        code = _NAMED_ENTITIES.get(src[pos + 1 : end], 0)
        if not code:
            # Unknown names like &nbsp; (or a bare &) are kept literally, not rejected.
            return 0, pos
    if src[end] == ord(";"):
        end += 1
    return code, end


def _link_entity(url: str, offset: int, length: int) -> JSON | None:
    """Entity for an <a> tag: text_mention for tg://user links, text_link otherwise."""
    url = url.strip()
    if url.startswith("tg://user?id="):
        user_id = url.removeprefix("tg://user?id=")
        if user_id.isdigit():
            user = {"id": int(user_id), "is_bot": False, "first_name": ""}
            return {"type": "text_mention", "offset": offset, "length": length, "user": user}
    if not url or any(ch.isspace() for ch in url):
        # Telegram silently drops links it can't check instead of failing the message.
        return None
    if "://" not in url and not url.startswith("tg:"):
        url = f"http://{url}"
    return {"type": "text_link", "offset": offset, "length": length, "url": url}


@dataclass
class _OpenTag:
    """A start tag waiting for its end tag."""

    name: str
    argument: str
    utf16_offset: int
    out_offset: int


class _HtmlParser:
    """tdlib's HTML parser: byte offsets in errors, UTF-16 offsets in entities."""

    def __init__(self, text: str) -> None:
        # The trailing NUL mirrors the C string the original scans; it ends every loop.
        self.src = text.encode("utf-8", "surrogatepass") + b"\0"
        self.size = len(self.src) - 1
        self.out = bytearray()
        self.utf16 = 0
        self.entities: list[JSON] = []
        self.stack: list[_OpenTag] = []
        self.saw_surrogate = False

    def parse(self) -> tuple[str, list[JSON]]:
        """Return the visible text and its entities, or raise HtmlParseError."""
        i = 0
        while i < self.size:
            c = self.src[i]
            if c == _AMP:
                code, end = _decode_entity(self.src, i)
                if code:
                    self._append_char(code)
                    i = end
                    continue
            if c != _LT:
                self._append_byte(c)
                i += 1
                continue
            closing = self.src[i + 1] == _SLASH
            i = (self._end_tag(i) if closing else self._start_tag(i)) + 1
        return self._finish()

    def _finish(self) -> tuple[str, list[JSON]]:
        """Check for unclosed tags and return the result."""
        if self.stack:
            name = self.stack[-1].name
            raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{name}"')
        if self.saw_surrogate:
            raise HtmlParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        for entity in self.entities:
            entity.pop("_language", None)
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return self.out.decode("utf-8", "replace"), entities

    def _append_byte(self, c: int) -> None:
        """Copy one source byte; count UTF-16 units on UTF-8 lead bytes."""
        if c & 0xC0 != 0x80:
            self.utf16 += 2 if c >= 0xF0 else 1
        self.out.append(c)

    def _append_char(self, code: int) -> None:
        """Append a decoded character reference."""
        self.utf16 += 2 if code > 0xFFFF else 1
        if 0xD800 <= code <= 0xDFFF:
            self.saw_surrogate = True
            return
        self.out += chr(code).encode("utf-8")

    def _skip_spaces(self, i: int) -> int:
        """Skip spaces but never the terminating NUL."""
        while self.src[i] != 0 and self.src[i] in _SPACE:
            i += 1
        return i

    def _name_end(self, i: int) -> int:
        """Scan a tag name up to a space, '>' or the end of the text."""
        while self.src[i] not in _SPACE and self.src[i] != _GT:
            i += 1
        return i

    def _start_tag(self, begin: int) -> int:
        """Parse a start tag at src[begin] == '<'; return the index of its '>'."""
        i = self._name_end(begin + 1)
        if self.src[i] == 0:
            raise HtmlParseError(f"Unclosed start tag at byte offset {begin}")
        name = self.src[begin + 1 : i].lower().decode("utf-8", "replace")
        if name not in _SUPPORTED_TAGS:
            raise HtmlParseError(f'Unsupported start tag "{name}" at byte offset {begin}')
        argument = ""
        while self.src[i] != _GT:
            i = self._skip_spaces(i)
            if self.src[i] == _GT:
                break
            i, argument = self._attribute(i, begin, name, argument)
        if name == "span" and argument != "spoiler":
            raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
        self.stack.append(_OpenTag(name, argument, self.utf16, len(self.out)))
        return i

    def _attribute(self, i: int, begin: int, tag: str, argument: str) -> tuple[int, str]:
        """Parse one attribute; return the next index and the tag's (possibly new) argument."""
        attr_begin = i
        while self.src[i] not in _SPACE and self.src[i] not in b"=>/\"'":
            i += 1
        attr = self.src[attr_begin:i]
        if not attr:
            raise HtmlParseError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        i = self._skip_spaces(i)
        if self.src[i] != _EQ:
            if self.src[i] == 0:
                raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
            if tag == "blockquote" and attr == b"expandable":
                argument = "1"
            return i, argument
        i = self._skip_spaces(i + 1)
        if self.src[i] == 0:
            raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        value, i = self._attribute_value(i)
        if self.src[i] == 0:
            raise HtmlParseError(f"Unclosed start tag at byte offset {begin}")
        return i, _tag_argument(tag, attr, value, argument)

    def _attribute_value(self, i: int) -> tuple[str, int]:
        """Parse a quoted string or an unquoted name token."""
        if self.src[i] not in _QUOTES:
            start = i
            while self.src[i] in _ALNUM or self.src[i] in b".-":
                i += 1
            if self.src[i] not in _SPACE and self.src[i] != _GT:
                raise HtmlParseError(f"Unexpected end of name token at byte offset {start}")
            return self.src[start:i].lower().decode(), i
        quote = self.src[i]
        i += 1
        value = bytearray()
        while self.src[i] != quote and self.src[i] != 0:
            if self.src[i] == _AMP:
                code, end = _decode_entity(self.src, i)
                if code:
                    value += chr(code).encode("utf-8", "surrogatepass")
                    i = end
                    continue
            value.append(self.src[i])
            i += 1
        if self.src[i] == quote:
            i += 1
        return value.decode("utf-8", "replace"), i

    def _end_tag(self, begin: int) -> int:
        """Parse an end tag at src[begin] == '<'; return the index of its '>'."""
        if not self.stack:
            raise HtmlParseError(f"Unexpected end tag at byte offset {begin}")
        i = self._name_end(begin + 1)
        end_name = self.src[begin + 2 : i].lower().decode("utf-8", "replace")
        i = self._skip_spaces(i)
        if self.src[i] != _GT:
            raise HtmlParseError(f"Unclosed end tag at byte offset {begin}")
        tag = self.stack[-1]
        if end_name and end_name != tag.name:
            raise HtmlParseError(
                f'Unmatched end tag at byte offset {begin}, expected "</{tag.name}>", '
                f'found "</{end_name}>"'
            )
        if self.utf16 > tag.utf16_offset:
            self._add_entity(tag)
        self.stack.pop()
        return i

    def _add_entity(self, tag: _OpenTag) -> None:
        """Turn a closed, non-empty tag into a MessageEntity dict."""
        offset, length = tag.utf16_offset, self.utf16 - tag.utf16_offset
        if tag.name in _SIMPLE_TAG_TYPES:
            entity: JSON | None = {"type": _SIMPLE_TAG_TYPES[tag.name]}
        elif tag.name == "tg-emoji":
            entity = {"type": "custom_emoji", "custom_emoji_id": _emoji_id(tag.argument)}
        elif tag.name == "a":
            url = tag.argument or self.out[tag.out_offset :].decode("utf-8", "replace")
            entity = _link_entity(url, offset, length)
        elif tag.name == "blockquote":
            entity = {"type": "expandable_blockquote" if tag.argument else "blockquote"}
        else:
            entity = self._pre_or_code(tag, offset, length)
        if entity is not None:
            self.entities.append({**entity, "offset": offset, "length": length})

    def _pre_or_code(self, tag: _OpenTag, offset: int, length: int) -> JSON | None:
        """<pre><code class="language-x"> nest into one pre entity with a language."""
        last = self.entities[-1] if self.entities else None
        same_span = last is not None and (last["offset"], last["length"]) == (offset, length)
        if tag.name == "pre":
            if last is not None and same_span and last["type"] == "code" and last["_language"]:
                last.update(type="pre", language=last.pop("_language"))
                return None
            return {"type": "pre"}
        if last is not None and same_span and last["type"] == "pre" and tag.argument:
            last["language"] = tag.argument
            return None
        return {"type": "code", "_language": tag.argument}


def _tag_argument(tag: str, attr: bytes, value: str, current: str) -> str:
    """The one attribute each tag cares about; other attributes are ignored like Telegram."""
    if tag == "a" and attr == b"href":
        return value
    if tag == "code" and attr == b"class" and value.startswith("language-"):
        return value.removeprefix("language-")
    if tag == "span" and attr == b"class" and value.startswith("tg-"):
        return value.removeprefix("tg-")
    if tag == "tg-emoji" and attr == b"emoji-id":
        return value
    if tag == "blockquote" and attr == b"expandable":
        return "1"
    return current


def _emoji_id(argument: str) -> str:
    """Validate a tg-emoji emoji-id like tdlib (a non-zero 64-bit integer)."""
    try:
        value = int(argument)
    except ValueError:
        value = 0
    if value == 0 or not -(2**63) <= value < 2**63:
        raise HtmlParseError("Invalid custom emoji identifier specified")
    return str(value)


def parse_html(text: str) -> tuple[str, list[JSON]]:
    """Parse Telegram HTML into (visible text, entities); raise HtmlParseError like the API."""
    return _HtmlParser(text).parse()


# ----------------------------------------------------------------------------------------------
# Request parsing
# ----------------------------------------------------------------------------------------------


def _decode_value(name: str, value: Any) -> Any:
    """Undo PTB's wire encoding: JSON-encoded non-strings, plain strings for text fields."""
    if not isinstance(value, str) or name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _parse_body(content_type: str, body: bytes) -> JSON:
    """Decode a form-encoded or JSON request body."""
    if not body:
        return {}
    if content_type == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise _bad_request("can't parse JSON object") from exc
        if not isinstance(decoded, dict):
            raise _bad_request("JSON object expected")
        return decoded
    if content_type == "multipart/form-data":
        raise _bad_request("file uploads (multipart/form-data) are not supported by FakeTelegram")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _int_param(params: JSON, name: str, default: int) -> int:
    """Read an integer parameter, answering 400 on garbage like the API."""
    value = params.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise _bad_request(f"wrong parameter {name} in request") from exc


def _float_param(params: JSON, name: str, default: float) -> float:
    """Read a number parameter (PTB sends fractional timeouts as floats)."""
    value = params.get(name, default)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise _bad_request(f"wrong parameter {name} in request") from exc


def _chat_id(params: JSON) -> int | str:
    """The chat_id parameter as an int, or an @channel username string."""
    value = params.get("chat_id")
    if value is None or value == "":
        raise _bad_request("chat_id is empty")
    if isinstance(value, str) and value.startswith("@"):
        return value
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise _bad_request("chat not found") from exc


def _update_type(update: JSON) -> str:
    """The update's kind: the one key besides update_id."""
    return next((key for key in update if key != "update_id"), "unknown")


# ----------------------------------------------------------------------------------------------
# HTTP server
# ----------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its FakeTelegram and its open connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeTelegram, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.busy = 0
        self.connections_lock = threading.Condition()

    def close_connections(self, grace: float = 2.0) -> None:
        """Let in-flight answers finish, then shut keep-alive sockets so their threads exit."""
        with self.connections_lock:
            self.connections_lock.wait_for(lambda: self.busy == 0, timeout=grace)
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Routes /bot<token>/<method> requests to FakeTelegram."""

    server: _Server
    # Keep-alive like api.telegram.org, so latency numbers are not dominated by TCP handshakes.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; Nagle + delayed ACK would add ~40 ms.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        """Track the connection so close() can end it."""
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        """Forget the connection."""
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet; FakeTelegram.calls records every request instead."""

    def do_POST(self) -> None:
        """Serve a Bot API call."""
        self._serve()

    def do_GET(self) -> None:
        """The Bot API accepts GET with query parameters too."""
        self._serve()

    def _serve(self) -> None:
        """Count the request as in flight while serving it."""
        with self.server.connections_lock:
            self.server.busy += 1
        try:
            self._answer()
        finally:
            with self.server.connections_lock:
                self.server.busy -= 1
                self.server.connections_lock.notify_all()

    def _answer(self) -> None:
        """Read the request, dispatch it and write the JSON answer."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, payload = self.server.fake._dispatch(
                self.path, self.headers.get_content_type(), body
            )
        except _Disconnect:
            self.close_connection = True
            return
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            # The client gave up (e.g. PTB cancelled a long poll on shutdown); nothing to do.
            self.close_connection = True


# ----------------------------------------------------------------------------------------------
# The fake
# ----------------------------------------------------------------------------------------------


@dataclass
class _Failure:
    """One injected error answer."""

    status: int
    description: str
    parameters: JSON | None


@dataclass
class _Queued:
    """An injected update waiting to be fetched with getUpdates."""

    update_id: int
    update: JSON


class FakeTelegram:
    """In-process Telegram Bot API server; use as a context manager."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = BOT_USERNAME,
        bot_first_name: str = BOT_FIRST_NAME,
        latency: float = 0.0,
        strict: bool = False,
    ) -> None:
        """Configure; `latency` delays every non-getUpdates answer, `strict` adds chat checks."""
        self.token = token
        self.latency = latency
        self.strict = strict
        bot_id = token.split(":", 1)[0]
        self.bot_user: JSON = {
            "id": int(bot_id) if bot_id.isdigit() else 123456,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._cond = threading.Condition()
        self._closed = False
        self._server = _Server(self, (host, port))
        self._thread: threading.Thread | None = None
        self._init_state()
        self._methods: dict[str, Callable[[JSON], Any]] = {
            "getme": lambda _params: dict(self.bot_user),
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendmessage": self._send_message,
            "sendchataction": self._send_chat_action,
            "editmessagetext": self._edit_message_text,
            "answercallbackquery": self._answer_callback_query,
            "getchat": self._get_chat,
            "close": lambda _params: True,
            "logout": lambda _params: True,
        }

    def _init_state(self) -> None:
        """Create the recorded state; every field is guarded by self._cond."""
        self._queue: list[_Queued] = []
        self._next_update_id = FIRST_UPDATE_ID
        self._next_message_id = 1
        self._next_callback_id = 1
        self._poll_generation = 0
        self._allowed_updates: set[str] | None = None
        self._webhook_url = ""
        self._sent: list[JSON] = []
        self._edits: list[JSON] = []
        self._calls: list[JSON] = []
        self._callback_answers: list[JSON] = []
        self._server_errors: list[str] = []
        self._commands: dict[str, list[JSON]] = {}
        self._last_commands: list[JSON] | None = None
        self._failures: dict[str, collections.deque[_Failure]] = {}
        self._chats: dict[int | str, JSON] = {}
        self._messages: dict[tuple[int | str, int], JSON] = {}
        self._message_update: dict[tuple[int | str, int], int] = {}
        self._callback_ids: set[str] = set()
        self._update_times: dict[int, float] = {}
        self._injected: list[JSON] = []
        self._delivery_times: dict[int, float] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        """Start serving in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="FakeTelegram",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the server; wakes blocked getUpdates and wait_* calls first."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> FakeTelegram:
        """Start and return self."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Close."""
        self.close()

    @property
    def port(self) -> int:
        """The TCP port bound on 127.0.0.1."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """Pass to ApplicationBuilder().base_url(); PTB appends the token."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def api_url(self) -> str:
        """The full URL prefix for this bot's methods, for raw HTTP calls."""
        return f"{self.base_url}{self.token}"

    # -- recorded state (snapshots, safe to read from any thread) ---------------------------

    @property
    def sent(self) -> list[JSON]:
        """Successful sendMessage calls, oldest first."""
        with self._cond:
            return [dict(entry) for entry in self._sent]

    @property
    def calls(self) -> list[JSON]:
        """Every API call: method, params, time (perf_counter), status, error."""
        with self._cond:
            return [dict(entry) for entry in self._calls]

    @property
    def edits(self) -> list[JSON]:
        """Successful editMessageText calls, oldest first."""
        with self._cond:
            return [dict(entry) for entry in self._edits]

    @property
    def callback_answers(self) -> list[JSON]:
        """Parameters of every answerCallbackQuery call."""
        with self._cond:
            return [dict(entry) for entry in self._callback_answers]

    @property
    def commands(self) -> list[JSON] | None:
        """The command list from the last setMyCommands call (None if never called)."""
        with self._cond:
            return None if self._last_commands is None else list(self._last_commands)

    @property
    def pending_updates(self) -> int:
        """Updates injected but not yet confirmed by a getUpdates offset."""
        with self._cond:
            return len(self._queue)

    @property
    def injected(self) -> list[JSON]:
        """Every injected update in order: update_id, update, time (perf_counter)."""
        with self._cond:
            return [dict(entry) for entry in self._injected]

    @property
    def update_times(self) -> dict[int, float]:
        """update_id -> time.perf_counter() when the update was injected."""
        with self._cond:
            return dict(self._update_times)

    @property
    def delivery_times(self) -> dict[int, float]:
        """update_id -> time.perf_counter() when getUpdates first returned the update."""
        with self._cond:
            return dict(self._delivery_times)

    @property
    def server_errors(self) -> list[str]:
        """Unexpected exceptions inside the fake (answered as 500); should stay empty."""
        with self._cond:
            return list(self._server_errors)

    # -- test-side injection ----------------------------------------------------------------

    def send_update(self, update: JSON) -> int:
        """Inject a raw update (any kind); assigns update_id if missing and returns it."""
        update = dict(update)
        with self._cond:
            update_id = int(update.get("update_id") or self._next_update_id)
            update["update_id"] = update_id
            self._next_update_id = max(self._next_update_id, update_id + 1)
            self._remember_update_messages(update_id, update)
            self._queue.append(_Queued(update_id, update))
            now = time.perf_counter()
            self._update_times[update_id] = now
            self._injected.append({"update_id": update_id, "update": update, "time": now})
            self._cond.notify_all()
        return update_id

    def send_text(
        self,
        text: str,
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
        chat_type: str = "private",
        reply_to_bot: bool = False,
        reply_to_message_id: int | None = None,
        entities: list[JSON] | None = None,
        username: str | None = "alice",
        first_name: str = "Alice",
        chat_title: str = "QA test group",
    ) -> int:
        """Inject a user's text message like Telegram builds it; return its update_id."""
        user, chat = self._user_and_chat(chat_id, user_id, chat_type, username, first_name)
        if chat_type != "private":
            chat["title"] = chat_title
        message: JSON = {"from": user, "chat": chat, "date": int(time.time()), "text": text}
        message["entities"] = detect_entities(text) if entities is None else entities
        if not message["entities"]:
            del message["entities"]
        with self._cond:
            message = {"message_id": self._take_message_id(), **message}
            reply = self._reply_source(chat["id"], reply_to_bot, reply_to_message_id)
            if reply is not None:
                message["reply_to_message"] = reply
        return self.send_update({"message": message})

    def send_callback_query(
        self,
        data: str,
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
        message_id: int | None = None,
        username: str | None = "alice",
        first_name: str = "Alice",
    ) -> int:
        """Inject a button press on a bot message (default: the last one in the chat)."""
        user, chat = self._user_and_chat(chat_id, user_id, "private", username, first_name)
        with self._cond:
            message = self._reply_source(chat["id"], message_id is None, message_id)
            query_id = f"{user['id']}{self._next_callback_id:08d}"
            self._next_callback_id += 1
            self._callback_ids.add(query_id)
        query = {
            "id": query_id,
            "from": user,
            "chat_instance": str(abs(chat["id"])),
            "data": data,
            "message": message,
        }
        return self.send_update({"callback_query": query})

    def fail_next(
        self,
        method: str = "sendMessage",
        times: int = 1,
        *,
        retry_after: int = 1,
        status: int = 429,
        description: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` fail; status 0 drops the connection."""
        if status == 429:
            failure = _Failure(
                429,
                description or f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        else:
            failure = _Failure(status, description or _default_description(status), None)
        with self._cond:
            queue = self._failures.setdefault(method.lower(), collections.deque())
            queue.extend([failure] * times)

    # -- test-side waiting ------------------------------------------------------------------

    def wait_for_messages(
        self,
        n: int = 1,
        chat_id: int | str | None = None,
        timeout: float = 30.0,
        *,
        after_update: int | None = None,
    ) -> list[JSON]:
        """Block until n messages were sent (to chat_id, after update); return the first n."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matching = self._matching_sent(chat_id, after_update)
                if len(matching) >= n:
                    return [dict(entry) for entry in matching[:n]]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise AssertionError(self._wait_report(n, chat_id, timeout, matching))
                self._cond.wait(remaining)

    def wait_for_call(self, method: str, n: int = 1, timeout: float = 10.0) -> list[JSON]:
        """Block until `method` was called n times (any outcome); return those calls."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matching = [c for c in self._calls if c["method"].lower() == method.lower()]
                if len(matching) >= n:
                    return [dict(call) for call in matching[:n]]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    seen = [c["method"] for c in self._calls]
                    raise AssertionError(
                        f"expected {n} {method} call(s) within {timeout}s, got {len(matching)}; "
                        f"calls so far: {seen}"
                    )
                self._cond.wait(remaining)

    # -- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, path: str, content_type: str, body: bytes) -> tuple[int, JSON]:
        """Answer one HTTP request: (status, JSON body)."""
        url = urlsplit(path)
        prefix, _, rest = url.path.partition("/bot")
        token, _, method = rest.partition("/")
        if prefix or not method or "/" in method:
            return 404, ApiError(404, "Not Found").payload()
        call: JSON = {"method": method, "params": {}, "time": time.perf_counter()}
        call.update(status=None, error=None)
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            raw = {**dict(parse_qsl(url.query)), **_parse_body(content_type, body)}
            call["params"] = {key: _decode_value(key, value) for key, value in raw.items()}
            status, payload = 200, {"ok": True, "result": self._call(method, call["params"])}
        except ApiError as err:
            status, payload = err.code, err.payload()
        except _Disconnect:
            self._finish_call(call, 0, "connection dropped")
            raise
        except Exception as exc:  # a bug in the fake must surface as a 500, not hang PTB
            with self._cond:
                self._server_errors.append(f"{method}: {exc!r}")
            status, payload = 500, ApiError(500, f"Internal Server Error: {exc!r}").payload()
        self._finish_call(call, status, payload.get("description"))
        return status, payload

    def _finish_call(self, call: JSON, status: int, error: str | None) -> None:
        """Record a call's outcome."""
        with self._cond:
            call["status"] = status
            call["error"] = error
            self._cond.notify_all()

    def _call(self, method: str, params: JSON) -> Any:
        """Apply injected failures and latency, then run the method."""
        name = method.lower()
        with self._cond:
            pending = self._failures.get(name)
            failure = pending.popleft() if pending else None
        if self.latency and name != "getupdates":
            time.sleep(self.latency)
        if failure is not None:
            if failure.status == 0:
                raise _Disconnect
            raise ApiError(failure.status, failure.description, failure.parameters)
        handler = self._methods.get(name)
        if handler is None:
            raise ApiError(404, "Not Found")
        return handler(params)

    # -- updates ----------------------------------------------------------------------------

    def _get_updates(self, params: JSON) -> list[JSON]:
        """Long polling with Telegram's offset/limit/timeout/allowed_updates semantics."""
        offset = _int_param(params, "offset", 0)
        limit = min(max(_int_param(params, "limit", MAX_POLL_LIMIT), 1), MAX_POLL_LIMIT)
        timeout = max(_float_param(params, "timeout", 0.0), 0.0)
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._webhook_url:
                raise ApiError(409, _CONFLICT_WEBHOOK)
            self._set_allowed_updates(params.get("allowed_updates"))
            # A newer poll terminates an older one with 409, exactly like Telegram.
            self._poll_generation += 1
            generation = self._poll_generation
            self._cond.notify_all()
            self._confirm(offset)
            while True:
                batch = self._take_batch(limit)
                if batch or self._closed:
                    return batch
                if generation != self._poll_generation:
                    raise ApiError(409, _CONFLICT_OTHER_POLL)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)

    def _set_allowed_updates(self, allowed: Any) -> None:
        """Remember allowed_updates; omitted keeps the previous setting, [] means default."""
        if allowed is None:
            return
        if not isinstance(allowed, list):
            raise _bad_request("can't parse allowed updates")
        self._allowed_updates = {str(kind) for kind in allowed} or None

    def _confirm(self, offset: int) -> None:
        """Forget updates confirmed by offset (negative offset keeps only the last ones)."""
        if offset > 0:
            self._queue = [q for q in self._queue if q.update_id >= offset]
        elif offset < 0:
            self._queue = self._queue[offset:]

    def _take_batch(self, limit: int) -> list[JSON]:
        """Return up to limit deliverable updates; drop ones allowed_updates excludes."""
        kept: list[_Queued] = []
        batch: list[JSON] = []
        now = time.perf_counter()
        for queued in self._queue:
            if not self._is_allowed(_update_type(queued.update)):
                continue
            kept.append(queued)
            if len(batch) < limit:
                batch.append(json.loads(json.dumps(queued.update)))
                self._delivery_times.setdefault(queued.update_id, now)
        self._queue = kept
        return batch

    def _is_allowed(self, kind: str) -> bool:
        """Whether the current allowed_updates setting delivers this update kind."""
        if self._allowed_updates is None:
            return kind not in _OPT_IN_UPDATES
        return kind in self._allowed_updates

    def _set_webhook(self, params: JSON) -> bool:
        """Record the webhook URL; getUpdates answers 409 while it is set."""
        with self._cond:
            self._webhook_url = str(params.get("url") or "")
            if params.get("drop_pending_updates"):
                self._queue.clear()
        return True

    def _delete_webhook(self, params: JSON) -> bool:
        """Remove the webhook, optionally dropping pending updates."""
        with self._cond:
            self._webhook_url = ""
            if params.get("drop_pending_updates"):
                self._queue.clear()
        return True

    def _get_webhook_info(self, _params: JSON) -> JSON:
        """Webhook status as Telegram reports it."""
        with self._cond:
            return {
                "url": self._webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": len(self._queue),
            }

    # -- commands ---------------------------------------------------------------------------

    def _set_my_commands(self, params: JSON) -> bool:
        """Validate and store the command list for its scope and language."""
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        cleaned = [_clean_command(command) for command in commands]
        with self._cond:
            self._commands[_commands_key(params)] = cleaned
            self._last_commands = cleaned
        return True

    def _get_my_commands(self, params: JSON) -> list[JSON]:
        """The stored command list for the scope and language."""
        with self._cond:
            return list(self._commands.get(_commands_key(params), []))

    def _delete_my_commands(self, params: JSON) -> bool:
        """Forget the command list for the scope and language."""
        with self._cond:
            self._commands.pop(_commands_key(params), None)
        return True

    # -- messages ---------------------------------------------------------------------------

    def _send_message(self, params: JSON) -> JSON:
        """Validate like Telegram, record, and return the sent Message."""
        chat_id = self._known_chat(params)
        visible, entities = _render(params)
        reply_source = self._reply_target(chat_id, params)
        with self._cond:
            message = self._bot_message(chat_id, visible, entities, params)
            if reply_source is not None:
                message["reply_to_message"] = reply_source
            key = (chat_id, message["message_id"])
            self._messages[key] = message
            self._sent.append(self._sent_record(chat_id, message, params, reply_source))
            self._cond.notify_all()
        return message

    def _sent_record(
        self, chat_id: int | str, message: JSON, params: JSON, reply_source: JSON | None
    ) -> JSON:
        """What tests see in `sent`: raw parameters plus what Telegram made of them."""
        reply_to = reply_source["message_id"] if reply_source else _reply_message_id(params)
        return {
            "message_id": message["message_id"],
            "chat_id": chat_id,
            "text": params["text"],
            "visible_text": message["text"],
            "entities": message.get("entities", []),
            "parse_mode": params.get("parse_mode"),
            "reply_to_message_id": reply_to,
            "reply_parameters": params.get("reply_parameters"),
            "reply_markup": params.get("reply_markup"),
            "reply_to_update_id": self._message_update.get((chat_id, reply_to or 0)),
            "link_preview_options": params.get("link_preview_options"),
            "disable_notification": params.get("disable_notification"),
            "params": params,
            "message": message,
            "time": time.perf_counter(),
        }

    def _bot_message(
        self, chat_id: int | str, text: str, entities: list[JSON], params: JSON
    ) -> JSON:
        """Build the Message object Telegram returns for a message the bot sent."""
        message: JSON = {
            "message_id": self._take_message_id(),
            "from": dict(self.bot_user),
            "chat": self._chat_object(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        markup = params.get("reply_markup")
        # Telegram echoes only inline keyboards back in the returned message.
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    def _edit_message_text(self, params: JSON) -> JSON | bool:
        """Edit a message the bot sent earlier."""
        visible, entities = _render(params)
        if params.get("inline_message_id"):
            self._record_edit(None, None, visible, params)
            return True
        chat_id = _chat_id(params)
        message_id = _int_param(params, "message_id", 0)
        with self._cond:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise _bad_request("message to edit not found")
            if message["from"].get("id") != self.bot_user["id"]:
                raise _bad_request("message can't be edited")
            markup = params.get("reply_markup")
            same_markup = markup is None or markup == message.get("reply_markup")
            same_text = (visible, entities) == (message["text"], message.get("entities", []))
            if same_text and same_markup:
                raise ApiError(400, _NOT_MODIFIED)
            message.update(text=visible, edit_date=int(time.time()))
            message.pop("entities", None)
            if entities:
                message["entities"] = entities
            if isinstance(markup, dict) and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            self._record_edit(chat_id, message_id, visible, params)
            return dict(message)

    def _record_edit(
        self, chat_id: int | str | None, message_id: int | None, visible: str, params: JSON
    ) -> None:
        """Append to `edits` and wake waiters."""
        with self._cond:
            self._edits.append(
                {
                    "chat_id": chat_id,
                    "message_id": message_id,
                    "text": params.get("text"),
                    "visible_text": visible,
                    "parse_mode": params.get("parse_mode"),
                    "params": params,
                    "time": time.perf_counter(),
                }
            )
            self._cond.notify_all()

    def _send_chat_action(self, params: JSON) -> bool:
        """Accept the actions Telegram knows."""
        self._known_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    def _answer_callback_query(self, params: JSON) -> bool:
        """Record the answer; strict mode rejects ids that were never injected."""
        query_id = str(params.get("callback_query_id") or "")
        with self._cond:
            known = query_id in self._callback_ids
            if not query_id or (self.strict and not known):
                raise _bad_request(
                    "query is too old and response timeout expired or query ID is invalid"
                )
            self._callback_answers.append(dict(params))
        return True

    def _get_chat(self, params: JSON) -> JSON:
        """Return a chat seen in an injected update."""
        chat_id = _chat_id(params)
        with self._cond:
            chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad_request("chat not found")
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11}

    # -- helpers (callers hold self._cond unless noted) -------------------------------------

    def _take_message_id(self) -> int:
        """Next message id (one counter for every chat keeps ids unique in tests)."""
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _user_and_chat(
        self,
        chat_id: int | None,
        user_id: int | None,
        chat_type: str,
        username: str | None,
        first_name: str,
    ) -> tuple[JSON, JSON]:
        """Build the from/chat objects of an injected message (no lock needed)."""
        if chat_type == "private":
            user_id = user_id or chat_id or DEFAULT_USER_ID
            chat_id = user_id
        elif chat_type in ("group", "supergroup"):
            user_id = user_id or DEFAULT_USER_ID
            fallback = DEFAULT_GROUP_ID if chat_type == "group" else DEFAULT_SUPERGROUP_ID
            chat_id = chat_id or fallback
        else:
            raise ValueError(f"unsupported chat_type {chat_type!r}")
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        chat: JSON = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        if username:
            user["username"] = username
            if chat_type == "private":
                chat["username"] = username
        user["language_code"] = "en"
        return user, chat

    def _reply_source(
        self, chat_id: int, reply_to_bot: bool, message_id: int | None
    ) -> JSON | None:
        """The message an injected message replies to (last bot message, or by id)."""
        if message_id is not None:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise ValueError(f"no message {message_id} in chat {chat_id} to refer to")
            return _without_reply(message)
        if not reply_to_bot:
            return None
        for entry in reversed(self._sent):
            if entry["chat_id"] == chat_id:
                return _without_reply(self._messages[(chat_id, entry["message_id"])])
        raise ValueError(f"the bot has not sent anything to chat {chat_id} to reply to")

    def _remember_update_messages(self, update_id: int, update: JSON) -> None:
        """Index messages and chats carried by an injected update."""
        for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
            message = update.get(key)
            if isinstance(message, dict) and isinstance(message.get("chat"), dict):
                chat = message["chat"]
                self._chats[chat["id"]] = dict(chat)
                if "message_id" in message:
                    self._messages[(chat["id"], message["message_id"])] = message
                    self._message_update[(chat["id"], message["message_id"])] = update_id

    def _known_chat(self, params: JSON) -> int | str:
        """chat_id of the call; strict mode requires a chat seen in an injected update."""
        chat_id = _chat_id(params)
        if self.strict:
            with self._cond:
                if chat_id not in self._chats:
                    raise _bad_request("chat not found")
        return chat_id

    def _reply_target(self, chat_id: int | str, params: JSON) -> JSON | None:
        """The replied-to message; strict mode rejects unknown ones like Telegram."""
        message_id = _reply_message_id(params)
        if message_id is None:
            return None
        with self._cond:
            message = self._messages.get((chat_id, message_id))
        reply = params.get("reply_parameters")
        allow_missing = bool(
            params.get("allow_sending_without_reply")
            or (isinstance(reply, dict) and reply.get("allow_sending_without_reply"))
        )
        if message is None and self.strict and not allow_missing:
            raise _bad_request("message to be replied not found")
        return None if message is None else _without_reply(message)

    def _chat_object(self, chat_id: int | str) -> JSON:
        """The chat as Telegram describes it, inventing one for unseen ids."""
        chat = self._chats.get(chat_id)
        if chat is not None:
            return dict(chat)
        if isinstance(chat_id, str):
            return {"id": -1001999999999, "type": "channel", "title": chat_id.lstrip("@")}
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "User"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": "Unknown chat"}

    def _matching_sent(self, chat_id: int | str | None, after_update: int | None) -> list[JSON]:
        """Sent messages filtered by chat and by injection time of an update."""
        since = self._update_times.get(after_update, 0.0) if after_update is not None else 0.0
        return [
            entry
            for entry in self._sent
            if (chat_id is None or str(entry["chat_id"]) == str(chat_id))
            and entry["time"] >= since
        ]

    def _wait_report(
        self, n: int, chat_id: int | str | None, timeout: float, matching: list[JSON]
    ) -> str:
        """Explain a wait_for_messages timeout: what was sent and which calls failed."""
        target = "" if chat_id is None else f" to chat {chat_id}"
        lines = [f"expected {n} message(s){target} within {timeout}s, got {len(matching)}."]
        lines.append(f"All {len(self._sent)} sent message(s):")
        lines += [f"  chat {e['chat_id']}: {e['text'][:200]!r}" for e in self._sent[-20:]]
        failed = [c for c in self._calls if c["status"] not in (None, 200)]
        if failed:
            lines.append("Failed calls:")
            lines += [f"  {c['method']} -> {c['status']} {c['error']}" for c in failed[-10:]]
        if self._server_errors:
            lines.append(f"Fake server errors: {self._server_errors[-5:]}")
        lines.append(f"Pending (undelivered/unconfirmed) updates: {len(self._queue)}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Module-level helpers used by the handlers
# ----------------------------------------------------------------------------------------------


def _render(params: JSON) -> tuple[str, list[JSON]]:
    """Validate text + parse_mode like sendMessage and return (visible text, entities)."""
    text = params.get("text")
    if text is None or text == "":
        raise _bad_request("message text is empty")
    text = str(text)
    mode = str(params.get("parse_mode") or "").lower()
    if mode == "html":
        try:
            visible, entities = parse_html(text)
        except HtmlParseError as exc:
            raise _bad_request(f"can't parse entities: {exc}") from exc
    elif mode in ("", "markdown", "markdownv2"):
        # Markdown is passed through unparsed: tests here exercise HTML.
        given = params.get("entities")
        visible, entities = text, given if isinstance(given, list) else []
    else:
        raise _bad_request("unsupported parse_mode")
    visible, entities = _trim(visible, entities)
    if not visible:
        raise _bad_request("message text is empty")
    if utf16_len(visible) > MAX_MESSAGE_LENGTH:
        raise _bad_request("message is too long")
    return visible, entities


def _reply_message_id(params: JSON) -> int | None:
    """message_id from reply_parameters (what PTB 22 sends) or legacy reply_to_message_id."""
    reply = params.get("reply_parameters")
    if isinstance(reply, dict) and reply.get("message_id") is not None:
        return int(reply["message_id"])
    legacy = params.get("reply_to_message_id")
    return None if legacy is None else int(legacy)


def _without_reply(message: JSON) -> JSON:
    """Copy of a message as embedded in reply_to_message (Telegram does not nest further)."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def _clean_command(command: Any) -> JSON:
    """Validate one BotCommand with tdlib's and the server's wording."""
    if not isinstance(command, dict):
        raise _bad_request("can't parse BotCommand")
    name = str(command.get("command", "")).strip().removeprefix("/")
    description = str(command.get("description", "")).strip()
    if not name:
        raise _bad_request("command must be non-empty")
    if len(name) > 32:
        raise _bad_request("command length must not exceed 32")
    if not description:
        raise _bad_request("command description must be non-empty")
    if len(description) > 256:
        raise _bad_request("command description length must not exceed 256")
    if not all(_is_name_char(ch) for ch in name) or name.lower() != name:
        raise _bad_request("BOT_COMMAND_INVALID")
    return {"command": name, "description": description}


def _commands_key(params: JSON) -> str:
    """Commands are stored per (scope, language_code)."""
    scope = params.get("scope") or {"type": "default"}
    return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)


def _default_description(status: int) -> str:
    """A Telegram-like description for an injected error status."""
    if status == 400:
        return "Bad Request"
    if status == 403:
        return "Forbidden: bot was blocked by the user"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Error {status}"
