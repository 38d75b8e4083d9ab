"""The web layer of `gankit explore`: Flask routes over one `Explorer`, and the server.

Flask is an optional dependency (`pip install 'gankit[explore]'`); it is imported when an app is
made, never when this module is, so `gankit --help` and the other commands never need it.

Every answer is JSON or a PNG. Every refusal is JSON `{"error": "..."}` with a 4xx status: 400
for a bad parameter, 404 for an unknown endpoint or latent, 405 for a wrong method, 413 for an
upload over `MAX_UPLOAD_BYTES`, 415 for an upload that is not an image. Anything unexpected is
logged with its traceback on the server and reaches the page as a 500 with one line, never the
traceback.

The server is werkzeug's threaded one (no debug mode, no reloader): each tab's requests run in
their own thread and take turns on the one loaded generator (the explorer's lock).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError
from gankit.explore.params import RequestError, page_message
from gankit.explore.session import MAX_UPLOAD_BYTES, Explorer

if TYPE_CHECKING:
    import flask

STATIC = Path(__file__).parent / "static"
#: The answer to a missing Flask.
FLASK_HINT = "gankit explore needs Flask: pip install 'gankit[explore]'"
#: Hosts that only this machine reaches.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger("gankit.explore")


def require_flask() -> Any:
    """The flask module, or a `GankitError` saying how to install it."""
    try:
        import flask
    except ImportError:
        raise GankitError(FLASK_HINT) from None
    return flask


def create_app(
    run_dir: str | Path, device: str = "cpu", explorer: Explorer | None = None
) -> flask.Flask:
    """The Flask app serving the page and the API (see the contract in the module doc) for one
    run, loaded once; `explorer` reuses one already loaded."""
    flask = require_flask()
    explorer = explorer or Explorer(run_dir, device)
    app = flask.Flask("gankit.explore", static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.json.sort_keys = False  # the contract's field order
    app.extensions["gankit_explorer"] = explorer
    _add_errors(app, flask)
    _add_routes(app, flask, explorer)
    return app


def _add_routes(app: flask.Flask, flask: Any, explorer: Explorer) -> None:
    request = flask.request

    def png(data: bytes) -> Any:
        response = flask.Response(data, mimetype="image/png")
        response.headers["Cache-Control"] = "no-store"
        return response

    def args() -> dict[str, str]:
        return request.args.to_dict(flat=True)

    @app.get("/")
    def index() -> Any:
        if not (STATIC / "index.html").is_file():
            raise RequestError("the page's files (gankit/explore/static/) are missing", 404)
        return flask.send_from_directory(STATIC, "index.html")

    @app.get("/api/info")
    def info() -> Any:
        return flask.jsonify(explorer.info())

    @app.get("/api/grid")
    def grid() -> Any:
        return flask.jsonify(explorer.grid(args()))

    @app.get("/api/interp.png")
    def interp() -> Any:
        return png(explorer.interp_png(args()))

    @app.get("/api/mix")
    def mix() -> Any:
        return flask.jsonify(explorer.mix(args()))

    @app.get("/api/scatter.png")
    def scatter() -> Any:
        return png(explorer.scatter_png(args()))

    @app.post("/api/translate")
    def translate() -> Any:
        data, name = _upload(request, "image")
        return flask.jsonify(explorer.translate(data, name, request.form.to_dict(flat=True)))

    @app.post("/api/latent")
    def latent() -> Any:
        data, name = _upload(request, "file")
        return flask.jsonify(explorer.add_latent(data, name))

    @app.post("/api/save")
    def save() -> Any:
        if request.files:  # a translation: the image and the form, view in the query
            view = request.args.get("view") or request.form.get("view")
            form = {k: v for k, v in request.form.to_dict(flat=True).items() if k != "view"}
            return flask.jsonify(explorer.save(view, form, _upload(request, "image")))
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise RequestError(
                'save takes JSON {"view": ..., "params": {...}} (or, for a translation, the '
                "image as multipart with ?view=translate)"
            )
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise RequestError('"params" must be an object of the view\'s parameters')
        return flask.jsonify(explorer.save(body.get("view"), params))


def _upload(request: Any, field: str) -> tuple[bytes, str]:
    """(bytes, file name) of the uploaded file `field`; 400 when it is missing."""
    file = request.files.get(field)
    if file is None:
        raise RequestError(f"send the file as multipart form field {field!r}")
    return file.read(), file.filename or field


def _add_errors(app: flask.Flask, flask: Any) -> None:
    from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

    def error(message: str, status: int) -> Any:
        return flask.jsonify({"error": message}), status

    @app.errorhandler(GankitError)
    def refused(err: GankitError) -> Any:
        if isinstance(err, RequestError):
            return error(str(err), err.status)
        return error(page_message(str(err)), 400)  # the library's words for the CLI's flags

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(err: RequestEntityTooLarge) -> Any:
        limit = MAX_UPLOAD_BYTES // 2**20
        return error(f"the upload is larger than {limit} MB; send a smaller file", 413)

    @app.errorhandler(HTTPException)
    def http(err: HTTPException) -> Any:
        if err.code == 404:
            return error(f"no such endpoint: {flask.request.path} (see /api/info)", 404)
        if err.code == 405:
            method, path = flask.request.method, flask.request.path
            return error(f"{path} does not take {method} requests", 405)
        return error(f"{err.name}: {err.description}", err.code or 500)

    @app.errorhandler(Exception)
    def internal(err: Exception) -> Any:
        log.exception("gankit explore: %s failed", flask.request.path)
        return error(f"internal error: {type(err).__name__} (see the server's log)", 500)


# ------------------------------------------------------------------ the server


def is_local(host: str) -> bool:
    """True when `host` is reachable only from this machine (loopback)."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, port: int, allow_remote: bool) -> None:
    """Refuse a host other machines reach unless `allow_remote`, with the tunnel to use instead."""
    if not is_local(host) and not allow_remote:
        raise GankitError(
            f"--host {host} would serve the run (and let visitors write into it) to other "
            f"machines; add --allow-remote to do that on purpose, or keep the default host and "
            f"use an SSH tunnel: {tunnel_hint(port)}"
        )


def tunnel_hint(port: int) -> str:
    """The SSH command that brings this machine's port to a laptop's."""
    return f"ssh -N -L {port}:127.0.0.1:{port} {_user()}@{socket.gethostname()}"


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment: any placeholder does
        return "user"


def serve(
    run_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "cpu",
    allow_remote: bool = False,
) -> None:
    """Load the run and serve the page until Ctrl-C (werkzeug's threaded server)."""
    from werkzeug.serving import make_server

    check_host(host, port, allow_remote)
    require_flask()
    explorer = Explorer(run_dir, device)
    app = create_app(run_dir, device, explorer)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per slider move
    if not log.handlers:  # failures (with their traceback) go to the terminal
        log.addHandler(logging.StreamHandler(sys.stderr))
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as err:
        raise GankitError(
            f"cannot listen on {host}:{port} ({err.strerror or err}); choose another --port"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if shown in ('0.0.0.0', '[::]') else shown}:{server.port}/"
    print(
        f"gankit explore: {explorer.family} {explorer.kind} run {explorer.run_dir} "
        f"({explorer.checkpoint.name}) on {explorer.device.type}\n"
        f"  open {url} (Ctrl-C stops)\n"
        f"  from another machine: {tunnel_hint(server.port)}, then open "
        f"http://127.0.0.1:{server.port}/ there",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
