"""Griffe extension for the API reference: pyadvt's docstrings title their doctests ``Example:``
(Google style reads only ``Examples:`` as an examples section and renders ``Example:`` as an
admonition whose ``>>>`` lines Markdown would turn into nested block quotes).  This extension
retitles ``Example:`` / ``Example (Python):`` sections to ``Examples:`` before the docstrings are
parsed, so their doctests render as Python console blocks, and shows Sphinx roles
(``:class:`~pyadvt.attacks.Attack` ``) as code (``Attack``) instead of raw text.  Loaded by mkdocs.yml
(``extensions: [docs/api/griffe_examples.py]``); excluded from the site's files.
"""

from __future__ import annotations

import re

import griffe

_TITLE = re.compile(r"^(\s*)Example(?: \([^)]*\))?:[ \t]*$", flags=re.M)
_ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc|obj):`(~?)([^`]+)`")


def retitle(text: str) -> str:
    """``Example:`` section titles (alone on their line) become ``Examples:``; nothing else changes.

    >>> retitle("Text.\\n\\n    Example:\\n        >>> 1\\n        1")
    'Text.\\n\\n    Examples:\\n        >>> 1\\n        1'
    >>> retitle("Example: see the module docstring.")
    'Example: see the module docstring.'
    """
    return _TITLE.sub(r"\1Examples:", text)


def unrole(text: str) -> str:
    """Sphinx cross-reference roles become inline code (``~`` keeps the last dotted part).

    >>> unrole("see :class:`~pyadvt.attacks.Attack` and :func:`pyadvt.attacks.create`")
    'see ``Attack`` and ``pyadvt.attacks.create``'
    """
    return _ROLE.sub(lambda m: f"``{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}``", text)


class ExampleSections(griffe.Extension):
    """Retitle the ``Example:`` sections of every loaded object's docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = unrole(retitle(obj.docstring.value))
