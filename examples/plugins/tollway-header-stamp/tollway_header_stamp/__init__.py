"""header-stamp: a worked example of a custom Tollway plugin (docs/plugin-development.md)."""

from tollway_header_stamp.handler import HeaderStamp

__all__ = ["HeaderStamp"]
