"""The error log: plain lines to `proxy_error_log` (stderr by default), nginx-like."""

from __future__ import annotations

import logging
import sys

from tollway.settings import Settings

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": logging.INFO,
          "warn": logging.WARNING, "error": logging.ERROR, "crit": logging.CRITICAL}


def setup_error_log(settings: Settings) -> None:
    target = settings.proxy_error_log
    if target in ("/dev/stderr", "stderr", ""):
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    elif target in ("/dev/stdout", "stdout"):
        handler = logging.StreamHandler(sys.stdout)
    elif target == "off":
        handler = logging.NullHandler()
    else:
        handler = logging.FileHandler(target)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s [%(levelname)s] %(process)d: %(message)s", "%Y/%m/%d %H:%M:%S"))
    root = logging.getLogger("tollway")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(settings.values.get("log_level", "notice"), logging.INFO))
    root.propagate = False
