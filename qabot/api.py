"""`qabot serve`: the HTTP JSON API (FastAPI), built over a search backend.

`create_app(backend)` knows HTTP (routes, the request's fields, errors as JSON with their
status, the bearer token); the backend knows how to answer. `LocalBackend` answers from an
index in this process; a Ray Serve ingress can build the same app over a backend that fans a
question out to shards. `POST /ask` returns exactly `qabot ask --json` (format.to_json of
answer.respond's Reply); the generation it was answered from is in the `X-Qabot-Generation`
header. Imported only by `qabot serve`: FastAPI and uvicorn are the optional `serve` extra.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at run time.
import contextlib
import datetime as dt
import errno
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException

from . import format as fmt
from .answer import Reply, respond
from .config import SearchOptions
from .errors import BadQuestion, IndexIncompatible, IndexNotFound, QabotError, ShardUnavailable
from .reader import Retriever
from .retrieve import MAX_QUESTION_CHARS, check_question

logger = logging.getLogger("qabot.api")

GENERATION_HEADER = "X-Qabot-Generation"
TOKEN_ENV = "QABOT_API_TOKEN"


@dataclass(frozen=True)
class Query:
    """What `qabot ask` takes: the question, and what it may override (None: the settings')."""

    question: str
    k: int | None = None
    mode: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    as_of: dt.date | None = None
    partial: bool = False  # sharded: answer from the shards that answer in time (and say which)


@dataclass(frozen=True)
class Answered:
    """A reply and the generation every step of it was answered from; with `partial`, which
    shards it comes from (`coverage`, added to the JSON)."""

    generation: int
    reply: Reply
    coverage: dict[str, Any] | None = None


@dataclass(frozen=True)
class Health:
    """What `GET /health` tells: the generation in use and what it holds."""

    generation: int
    articles: int
    passages: int
    newest: dt.date | None  # the newest article's date (None: no dated article)


class Backend(Protocol):
    """What the app asks of whatever answers: this process's index, or shards elsewhere.
    Both raise the domain errors (errors.py); the app gives each its status."""

    def ask(self, query: Query) -> Answered: ...
    def health(self) -> Health: ...


class LocalBackend:
    """Answers from an index this process reads: the Retriever follows new commits, and each
    question is answered from one generation, taken when it starts (Retriever.pinned)."""

    def __init__(self, retriever: Retriever, options: SearchOptions) -> None:
        self.retriever = retriever
        self.options = options

    def ask(self, query: Query) -> Answered:
        """The reply `qabot ask` gives, and its generation."""
        options = replace(self.options, k=query.k or self.options.k, mode=query.mode or self.options.mode)
        with self.retriever.pinned():
            # Taken first: with no index yet, small talk too gets the 503 (nothing is served yet).
            snap = self.retriever.snapshot()
            reply = respond(self.retriever, query.question, options, since=query.since,
                            until=query.until, as_of=query.as_of)
        return Answered(snap.manifest.generation, reply)

    def health(self) -> Health:
        """The current generation's counts, read from its manifest and catalog."""
        snap = self.retriever.snapshot()
        known = snap.catalog.summary()
        return Health(snap.manifest.generation, known.articles, snap.manifest.passage_count, known.last)

    def warm(self) -> None:
        """Load the generation, its tables and the encoder now, so the first question is not slow
        (no index yet: nothing to load; /ask says so until there is one)."""
        with contextlib.suppress(QabotError):
            self.ask(Query("warm-up"))


# ------------------------------------------------------------------------------- the HTTP side

# FastAPI hands pydantic the parsed JSON, where a lax date would also take 1700000000 or
# "2024-01-02T00:00": only a YYYY-MM-DD string is a day, as `qabot ask --since` takes it.
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _day(value: object) -> object:
    if isinstance(value, str) and _DAY.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"{value!r} is no date ({err})") from None
    if value is None:
        return None
    raise ValueError("should be a date written YYYY-MM-DD, e.g. \"2024-03-31\"")


Day = Annotated[dt.date | None, BeforeValidator(_day)]
Mode = Literal["hybrid", "dense", "bm25"]


class AskBody(BaseModel):
    """`POST /ask`: what `qabot ask` takes. Dates are YYYY-MM-DD."""

    # strict: "5" is no k nor 5.0, true or 1 a question; a misspelt field is refused, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"question": "Which road did Azerbaijan propose to help Armenian residents in Karabakh?", "k": 3}]})

    question: str = Field(description=f"The question, 1 to {MAX_QUESTION_CHARS:,} characters.")
    k: int | None = Field(None, ge=1, le=100, description="How many articles [config search.k, default 5].")
    mode: Mode | None = Field(None, description="dense (meaning), bm25 (words) or hybrid (both) "
                                                "[config search.mode, default hybrid].")
    since: Day = Field(None, description="Only articles dated on or after this day.")
    until: Day = Field(None, description="Only articles dated on or before this day.")
    as_of: Day = Field(None, description="Answer as of this day: later articles are left "
                                                    "out; ages count from it [default: today].")
    partial: bool = Field(False, description="Sharded (`qabot serve --ray`): when a shard misses its "
                                             "deadline, answer from the others and say so in "
                                             "`coverage`, rather than 503.")


class HealthBody(BaseModel):
    """`GET /health`."""

    generation: int = Field(description="The index generation questions are answered from now.")
    articles: int
    passages: int
    newest: dt.date | None = Field(description="The newest article's date (null: no dated article).")


class ErrorBody(BaseModel):
    """Every error: one line saying what to do, as `qabot ask` prints it after `Error:`."""

    error: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A bad question or field."},
    401: {"model": ErrorBody, "description": f"No or wrong bearer token ({TOKEN_ENV} is set)."},
    503: {"model": ErrorBody, "description": "No usable index yet: run `qabot index`."},
}
_ASK_OK: dict[int | str, dict[str, Any]] = {200: {
    "description": "Exactly what `qabot ask --json` prints (README, \"qabot ask --json prints one "
                   f"object\"); the header {GENERATION_HEADER} names the index generation it comes from.",
    "content": {"application/json": {"schema": {"type": "object"}}}}}


def status_of(err: QabotError) -> int:
    """The HTTP status of a domain error."""
    if isinstance(err, BadQuestion):
        return 400
    if isinstance(err, IndexNotFound | IndexIncompatible | ShardUnavailable):
        return 503  # none yet, one to upgrade or repair, or a shard that did not answer
    return 500


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _field_errors(err: RequestValidationError) -> str:
    """Pydantic's complaints as one line: `k: Input should be less than or equal to 100`."""
    said = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"] if p != "body")
        if problem["type"] == "json_invalid":
            said.append("the body is not valid JSON; send one object, e.g. {\"question\": \"Who won?\"}")
        elif problem["type"] == "missing" and where:
            said.append(f"{where} is missing")
        elif problem["type"] == "extra_forbidden":
            said.append(f"unknown field {where!r}; the fields are {', '.join(AskBody.model_fields)}")
        else:
            said.append(f"{where or 'the body'}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(said) or "the request is malformed"


def _query(body: AskBody) -> Query:
    """The body as a Query, refused (BadQuestion) as `qabot ask` refuses it."""
    check_question(body.question)
    if body.since is not None and body.until is not None and body.since > body.until:
        raise BadQuestion(f"since {body.since} is later than until {body.until}, so no article "
                          "could match; swap them")
    return Query(body.question, body.k, body.mode, body.since, body.until, body.as_of, body.partial)


def create_app(backend: Backend, token: str | None = None) -> FastAPI:
    """The API over `backend`; with `token`, /ask and /health want `Authorization: Bearer <token>`."""
    app = FastAPI(
        title="qabot", version=_version(),
        description="Ask questions of a folder of news articles; the answering sentence, quoted "
                    "with exact citations. Every answer comes from one index generation "
                    f"(header {GENERATION_HEADER}); new commits are picked up without a restart.")
    bearer = HTTPBearer(auto_error=False, description=f"The value of {TOKEN_ENV}, when it is set.")
    expected = token.encode() if token else None

    def authorized(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if expected is None:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if not secrets.compare_digest(given, expected):  # constant time: no guessing by timing
            raise _Unauthorized

    @app.exception_handler(_Unauthorized)
    def unauthorized(request: Request, err: _Unauthorized) -> JSONResponse:
        return _error(401, f"send the token of {TOKEN_ENV} as `Authorization: Bearer <token>`",
                      {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    def bad_field(request: Request, err: RequestValidationError) -> JSONResponse:
        return _error(400, _field_errors(err))

    @app.exception_handler(QabotError)
    def domain_error(request: Request, err: QabotError) -> JSONResponse:
        status = status_of(err)
        if status == 500:
            logger.error("%s %s: %s", request.method, request.url.path, err)
        return _error(status, str(err), {"Retry-After": "10"} if status == 503 else None)

    @app.exception_handler(OSError)
    def machine_error(request: Request, err: OSError) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"the index could not be read ({err.strerror or err}); see the server's log")

    @app.exception_handler(HTTPException)
    def http_error(request: Request, err: HTTPException) -> JSONResponse:  # 404, 405...
        return _error(err.status_code, f"{request.method} {request.url.path}: {err.detail}; the API is "
                      "POST /ask, GET /health and the schema at /docs", err.headers)

    @app.exception_handler(Exception)
    def bug(request: Request, err: Exception) -> JSONResponse:  # uvicorn logs the traceback
        return _error(500, "internal error; see the server's log")

    @app.post("/ask", responses={**_ASK_OK, **_ERRORS}, dependencies=[Depends(authorized)],
              summary="Answer a question, as `qabot ask --json` does")
    def ask(body: AskBody) -> Response:
        # A plain def: FastAPI runs it in its thread pool, so the event loop never blocks.
        answered = backend.ask(_query(body))
        body_json = fmt.to_json(answered.reply) if answered.coverage is None else \
            fmt.dumps(fmt.reply_dict(answered.reply) | {"coverage": answered.coverage})
        return Response(body_json, media_type="application/json",
                        headers={GENERATION_HEADER: str(answered.generation)})

    @app.get("/health", responses=_ERRORS, dependencies=[Depends(authorized)],
             summary="The index generation in use and what it holds")
    def health(response: Response) -> HealthBody:
        known = backend.health()
        response.headers[GENERATION_HEADER] = str(known.generation)
        return HealthBody(generation=known.generation, articles=known.articles, passages=known.passages,
                          newest=known.newest)

    return app


class _Unauthorized(Exception):
    """No or the wrong bearer token."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qabot")
    except PackageNotFoundError:
        return "0"


# ------------------------------------------------------------------------------------- running


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one), or a QabotError saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise QabotError(f"can't listen on {host!r}: {err.strerror}; give --host an address of this "
                         "machine, e.g. 127.0.0.1") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart needn't wait out TIME_WAIT
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise QabotError(f"port {port} on {host} is already in use (another qabot serve?); stop "
                             "it or pick another with --port") from None
        if err.errno == errno.EACCES:
            raise QabotError(f"not allowed to listen on port {port} (below 1024 needs root); pick "
                             "another with --port, e.g. 8000") from None
        raise QabotError(f"can't listen on {host}:{port}: {err.strerror}; check --host") from None
    return sock


def url_of(sock: socket.socket) -> str:
    """http://host:port of a listening socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: FastAPI, access_log: bool) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level="info", access_log=access_log, lifespan="off",
                            timeout_graceful_shutdown=10)
    return uvicorn.Server(config)


def run(app: FastAPI, sock: socket.socket, access_log: bool = True) -> None:
    """Serve `app` on the bound socket until Ctrl-C or SIGTERM (uvicorn: one process, a thread
    pool for the answering)."""
    _server(app, access_log).run(sockets=[sock])


@contextlib.contextmanager
def serving(app: FastAPI, sock: socket.socket, access_log: bool = False) -> Iterator[str]:
    """Serve `app` on the bound socket from a thread of this process while the block runs; its
    URL. For tests and benchmarks (signals stay this process's own)."""
    server = _server(app, access_log)  # uvicorn leaves signals alone off the main thread
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            time.sleep(0.01)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
