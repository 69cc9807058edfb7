"""Widgets shared by more than one page, one per module (docs/architecture.md, "GUI").

A page imports the widget's own module (``from .widgets.banner import Banner``); this package
imports nothing itself, so using one widget never loads the others.
"""
