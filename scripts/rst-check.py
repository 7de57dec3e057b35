#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""rst-check.py FILE...: parse reStructuredText as the kernel's Sphinx
build would, failing on any warning (a malformed table, a bad
indentation). The Sphinx-only :doc: role and toctree directive, which
plain docutils does not know, are accepted without being checked."""
import sys

from docutils.core import publish_doctree
from docutils.parsers.rst import Directive, directives, roles
from docutils import nodes


def doc_role(name, rawtext, text, lineno, inliner, options=None,
             content=None):
    return [nodes.literal(rawtext, text)], []


class TocTree(Directive):
    has_content = True
    option_spec = {'maxdepth': directives.unchanged}

    def run(self):
        return []


roles.register_local_role('doc', doc_role)
directives.register_directive('toctree', TocTree)

bad = 0
for path in sys.argv[1:]:
    with open(path, encoding='utf-8') as f:
        text = f.read()
    try:
        publish_doctree(text, source_path=path,
                        settings_overrides={'halt_level': 2,
                                            'report_level': 2})
    except Exception as e:  # docutils raises SystemMessage
        print(f'{path}: {e}')
        bad = 1
sys.exit(bad)
