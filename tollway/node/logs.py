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


def setup_admin_access_log(settings: Settings) -> None:
    """uvicorn's access logger, pointed at `admin_access_log` unless it is off."""
    target = settings.admin_access_log
    logger = logging.getLogger("uvicorn.access")
    if target in ("off", ""):
        logger.disabled = True
        return
    if target in ("/dev/stdout", "stdout"):
        handler: logging.Handler = logging.StreamHandler(sys.stdout)
    elif target in ("/dev/stderr", "stderr"):
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(target)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
