"""The read-only tables of the Jobs, Running and Offers places, set up one way: whole rows
selected, nothing edited, no wrapping, uniform row heights, named for screen readers, columns
the user resizes by hand."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

__all__ = ["read_only_table"]


def read_only_table(
    parent: QWidget,
    model: QAbstractItemModel,
    *,
    object_name: str,
    name: str,
    description: str,
    header_name: str,
    multi_select: bool,
    elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
) -> QTableView:
    """A table showing ``model``: ``name`` / ``description`` / ``header_name`` for screen
    readers; ``multi_select``: several rows at once (else one)."""
    table = QTableView(parent)
    table.setObjectName(object_name)
    table.setAccessibleName(name)
    table.setAccessibleDescription(description)
    table.setModel(model)
    table.setAlternatingRowColors(True)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(
        QAbstractItemView.SelectionMode.ExtendedSelection
        if multi_select
        else QAbstractItemView.SelectionMode.SingleSelection
    )
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setWordWrap(False)
    table.setTextElideMode(elide)
    table.setCornerButtonEnabled(False)
    vh = table.verticalHeader()
    vh.hide()
    vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # uniform row heights
    vh.setDefaultSectionSize(table.fontMetrics().height() + 10)
    hh = table.horizontalHeader()
    hh.setAccessibleName(header_name)
    hh.setHighlightSections(False)
    hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    return table
