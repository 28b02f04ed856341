"""Declarative configuration (see docs/architecture.md, "tollway.config").

* ``loader``: ``load_file``/``load_text``/``parse_text`` (YAML or JSON, with source lines)
* ``declarative``: ``validate(document, locator=None) -> Config``
* ``model``: ``Config`` (normalised entities, ``hash``, ``to_declarative()``)
* ``errors``: ``ConfigError``/``ConfigErrorItem``
* ``schema`` + ``checks`` + ``typedefs``: the schema engine entities and plugins use
* ``entities``: Kong's entity schemas
"""
