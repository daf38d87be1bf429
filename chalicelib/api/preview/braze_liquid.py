"""Braze's Liquid on python-liquid: an emulation of what a Braze message does with a template,
enough to render the README's snippets and the preview's cards the way Braze would.

What is emulated (from Braze's documentation, not from Braze's code):
- `{{${user_id}}}` and `custom_attribute.${name}`: Braze's attribute syntax, rewritten to plain
  Liquid variables before parsing;
- `{% connected_content URL [:option value ...] %}`: the URL (itself Liquid) is rendered, the call
  made through a `Fetch` the caller supplies (the app in-process, or `chalice.test.Client`), a
  JSON response parsed into `:save VAR` (default `connected`), `__http_status_code__` added to a
  JSON *object* only (never to an array), a non-JSON body inserted as text, a 404 rendering an
  empty string and saving nothing, a 5xx failing the message (Braze retries, then aborts);
- `{% abort_message('reason') %}`: stops the message; the reason is what Braze's Message
  Activity Log would show;
- the `url_param_escape` filter (every character a URL does not allow, `&` included, as Ruby's
  `CGI.escape`).
Braze's caching, retries with back-off and its 2-second timeout are not emulated: each render
calls the app once per tag. Liquid itself is python-liquid's, which follows Shopify's Liquid,
as Braze's does (up to Liquid 5).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from io import StringIO
from typing import Any, TextIO

from liquid import BoundTemplate, Environment, RenderContext, Tag, TokenStream
from liquid.ast import Node
from liquid.builtin.expressions import FilteredExpression, tokenize
from liquid.exceptions import LiquidError
from liquid.expression import Expression
from liquid.token import TOKEN_EXPRESSION, Token

from chalicelib.api.preview.message import url_param_escape


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: str


# (method, url, headers, body) -> the response, as the app (or a stand-in) answers it.
Fetch = Callable[[str, str, Mapping[str, str], str], Response]


@dataclass(frozen=True)
class Call:
    """One connected_content call of a render, for the preview to show."""

    method: str
    url: str
    response: Response
    saved_as: str | None
    value: Any  # what the template saw (parsed JSON, text, or None)


@dataclass(frozen=True)
class Rendered:
    output: str
    aborted: str | None  # the abort_message reason; None when the message would be sent
    calls: list[Call] = field(default_factory=list)
    error: str | None = None  # a Liquid error: Braze would refuse the template


class MessageAborted(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectedContentFailed(MessageAborted):
    """A 5xx (or an unreachable host): Braze retries with `:retry`, then aborts the message."""


_SESSION = "braze"
# `${name}` after a dot (`custom_attribute.${Favourite colour}`) or alone (`{{${user_id}}}`).
_ATTRIBUTE = re.compile(r"(\.)?\$\{([^}]+)\}")
_BAD_HEADERS = 'connected_content :headers must be a JSON object, e.g. {"x-api-key": "KEY"}'
_OPTION = re.compile(r"(?:^|\s+):([a-z_]+)(?=\s|$)")


def braze_to_liquid(source: str) -> str:
    """Braze's attribute syntax as plain Liquid: `${user_id}` -> `user_id`,
    `custom_attribute.${Favourite colour}` -> `custom_attribute["Favourite colour"]`."""

    def plain(match: re.Match[str]) -> str:
        dot, name = match.group(1), match.group(2).strip()
        if dot or not re.fullmatch(r"[A-Za-z_][\w-]*", name):
            return f"[{json.dumps(name)}]"
        return name

    return _ATTRIBUTE.sub(plain, source)


@dataclass
class _Session:
    fetch: Fetch
    calls: list[Call] = field(default_factory=list)


class _ConnectedContentNode(Node):
    __slots__ = ("markup",)

    def __init__(self, token: Token, markup: BoundTemplate) -> None:
        super().__init__(token)
        self.markup = markup

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        session: _Session = context.tag_namespace[_SESSION]
        expanded = StringIO()
        self.markup.render_with_context(context, expanded)
        url, options = _options(expanded.getvalue())
        method = options.get("method", "get").upper()
        headers = _headers(options)
        body = options.get("body", "")
        response = session.fetch(method, url, headers, body)
        if response.status >= 500:
            session.calls.append(Call(method, url, response, options.get("save"), None))
            raise ConnectedContentFailed(f"connected_content: {url} answered {response.status}")
        value: Any = None
        written = 0
        if response.status != 404:  # Braze renders an empty string for a 404
            try:
                value = json.loads(response.body)
            except ValueError:
                value = response.body
            if isinstance(value, dict):
                value["__http_status_code__"] = response.status
            if isinstance(value, dict | list):
                context.assign(options.get("save", "connected"), value)
            else:
                written = buffer.write(str(value))
        session.calls.append(Call(method, url, response, options.get("save"), value))
        return written


class ConnectedContentTag(Tag):
    name = "connected_content"
    block = False

    def parse(self, stream: TokenStream) -> Node:
        # python-liquid's protocol: leave the stream on the tag's last token.
        token = stream.current
        if stream.peek.kind != TOKEN_EXPRESSION or not stream.peek.value.strip():
            raise LiquidError("connected_content needs a URL", token=token)
        next(stream)
        return _ConnectedContentNode(token, self.env.from_string(stream.current.value))


class _AbortNode(Node):
    __slots__ = ("reason",)

    def __init__(self, token: Token, reason: Expression | None) -> None:
        super().__init__(token)
        self.reason = reason

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        reason = self.reason.evaluate(context) if self.reason is not None else ""
        raise MessageAborted("" if reason is None else str(reason))


class AbortMessageTag(Tag):
    name = "abort_message"
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token = stream.current
        if stream.peek.kind != TOKEN_EXPRESSION:
            return _AbortNode(token, None)
        next(stream)
        inner = stream.current.value.strip()
        if inner.startswith("(") and inner.endswith(")"):
            inner = inner[1:-1]
        if not inner.strip():
            return _AbortNode(token, None)
        tokens = TokenStream(tokenize(inner, parent_token=stream.current))
        expression = FilteredExpression.parse(self.env, tokens)
        tokens.expect_eos()
        return _AbortNode(token, expression)


class BrazeEnvironment(Environment):
    """python-liquid with Braze's tags and filter, and limits that keep a hostile or mistaken
    template (an endless loop, a huge output) from holding the server."""

    loop_iteration_limit = 100_000
    local_namespace_limit = 1_000_000
    output_stream_limit = 2_000_000
    context_depth_limit = 30

    def __init__(self) -> None:
        super().__init__()
        self.add_tag(ConnectedContentTag)
        self.add_tag(AbortMessageTag)
        self.add_filter("url_param_escape", url_param_escape)


_ENV: BrazeEnvironment | None = None


def environment() -> BrazeEnvironment:
    global _ENV  # noqa: PLW0603 - one environment (its tag registry) per process
    if _ENV is None:
        _ENV = BrazeEnvironment()
    return _ENV


def render(source: str, fetch: Fetch, attributes: Mapping[str, object]) -> Rendered:
    """Render a Braze message template for one user (`attributes`: `user_id`,
    `custom_attribute`, ...), calling `fetch` for each connected_content tag."""
    session = _Session(fetch)
    env = environment()
    try:
        template = env.from_string(braze_to_liquid(source))
        context = RenderContext(template, globals=template.make_globals(dict(attributes)))
        context.tag_namespace[_SESSION] = session
        buffer = StringIO()
        template.render_with_context(context, buffer)
    except MessageAborted as exc:
        return Rendered("", exc.reason, session.calls)
    except LiquidError as exc:
        return Rendered("", None, session.calls, error=str(exc))
    return Rendered(buffer.getvalue(), None, session.calls)


def _options(expanded: str) -> tuple[str, dict[str, str]]:
    """`URL :name value :flag ...` -> (URL, {name: value, flag: ""})."""
    parts = _OPTION.split(expanded.strip())
    url = parts[0].strip()
    options = {name: value.strip() for name, value in zip(parts[1::2], parts[2::2], strict=True)}
    return url, options


def _headers(options: Mapping[str, str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    if options.get("headers"):
        try:
            parsed = json.loads(options["headers"])
        except ValueError:
            raise LiquidError(_BAD_HEADERS, token=None) from None
        if not isinstance(parsed, dict):
            raise LiquidError(_BAD_HEADERS, token=None)
        headers = {str(k).lower(): str(v) for k, v in parsed.items()}
    content_type = options.get("content_type")
    if content_type:
        headers["content-type"] = headers["accept"] = content_type
    return headers
