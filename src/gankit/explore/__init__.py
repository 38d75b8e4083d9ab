"""`gankit explore`: a local web page to look inside a trained run.

`create_app(run_dir, device)` builds the Flask app (tests drive it with `app.test_client()`),
`serve(run_dir, host=..., port=...)` runs it on werkzeug's threaded server. Importing this
package does not import Flask; making an app does, with an install hint when it is missing
(`pip install 'gankit[explore]'`).
"""

from gankit.explore.app import create_app, serve
from gankit.explore.params import RequestError
from gankit.explore.session import Explorer

__all__ = ["Explorer", "RequestError", "create_app", "serve"]
