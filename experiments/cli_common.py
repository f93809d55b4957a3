"""What the ``synthgap`` root and its subcommand modules share, so they never import each other.

- :func:`tracking_uri`: the ``argparse`` type of every ``--tracking-uri`` flag;
- :func:`interrupted`: how a handler tells Ctrl-C from an error.

Light on purpose: building the parser imports this (``synthgap --help`` stays fast).
"""

from __future__ import annotations

import argparse

from synthgap.envs.userfiles import short

#: URI schemes MLflow has a store for (``mlflow.tracking.registry``); "" is a local path.
TRACKING_SCHEMES = ("", "file", "sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks",
                    "databricks-uc", "uc")


def tracking_uri(text: str) -> str:
    """``argparse`` type of ``--tracking-uri``: a URI of a scheme MLflow can store runs in.

    Refused here, before MLflow is imported, instead of deep inside its registry.
    """
    from urllib.parse import urlparse

    try:
        scheme = urlparse(text).scheme.lower()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a URI: {short(text)}") from None
    if scheme.split("+")[0] not in TRACKING_SCHEMES:
        raise argparse.ArgumentTypeError(f"unsupported scheme {short(scheme, 20)} in {short(text)}; use "
                                         "sqlite:///PATH, http(s)://HOST:PORT, a database URI or a folder")
    return text


def interrupted(exc: BaseException) -> bool:
    """True for Ctrl-C, also when a C extension re-raised it as another error (a
    ``SystemError`` whose cause chain holds the ``KeyboardInterrupt``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
