"""A grid of image thumbnails with the file name under each (docs/architecture.md, "GUI").

The images are decoded and scaled off the GUI thread: a :class:`QThreadPool` of the grid's own
runs one :class:`QRunnable` per tile (``QImageReader`` with ``setScaledSize``, so a large image
is never decoded whole where the format allows it); the result comes back by a queued signal
and only then becomes a pixmap. A tile shows a placeholder while it loads. A tile may hold two
images, a *before* and an *after*, drawn side by side with an arrow between them.

What the tiles are may itself need the disk (finding a job's input files): :meth:`load` runs
that in the pool as well. A newer :meth:`set_items` or :meth:`load` makes the work of the older
one moot (its results are dropped; its queued runnables are removed). :meth:`stop` (called
when the grid closes, and by the pool's own destructor) waits for what runs and leaves
nothing running. Activating a tile (double-click, Enter) opens its image with the desktop's
viewer (``QDesktopServices.openUrl``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QDesktopServices,
    QImage,
    QImageReader,
    QPainter,
    QPalette,
    QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import QAbstractItemView, QFrame, QListView, QSizePolicy, QWidget

__all__ = ["PATH_ROLE", "STATE_ROLE", "Thumb", "ThumbnailGrid", "ThumbnailModel", "decode"]

_USER = int(Qt.ItemDataRole.UserRole)
#: The path a tile opens (str).
PATH_ROLE = _USER + 1
#: "loading" | "shown" | "unreadable".
STATE_ROLE = _USER + 2

_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ACCESSIBLE = int(Qt.ItemDataRole.AccessibleTextRole)

_GAP = 18  # between a before and its after: room for the arrow (px)
#: Tiles shown before the grid scrolls inside itself.
_MAX_ROWS = 3


@dataclass(frozen=True)
class Thumb:
    """One tile: one image, or a (before, after) pair; ``opens``: what activating it opens."""

    paths: tuple[Path, ...]
    caption: str
    tooltip: str = ""
    opens: Path | None = None

    @property
    def target(self) -> Path:
        return self.opens or self.paths[-1]


def _scaled(reader: QImageReader, box: QSize) -> QImage:
    size = reader.size()
    if size.isValid() and (size.width() > box.width() or size.height() > box.height()):
        reader.setScaledSize(size.scaled(box, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        return image
    if image.width() > box.width() or image.height() > box.height():  # (no size in the header)
        image = image.scaled(
            box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    return image


def decode(paths: Sequence[Path], box: QSize) -> QImage | None:
    """The tile of ``paths`` scaled into ``box`` per image (a pair: side by side with an
    arrow); None when an image cannot be read. Safe in any thread (QImage, not QPixmap)."""
    images = []
    for path in paths:
        reader = QImageReader(str(path))
        reader.setAutoTransform(True)
        image = _scaled(reader, box)
        if image.isNull():
            return None
        images.append(image)
    if len(images) == 1:
        return images[0]
    width = len(images) * box.width() + (len(images) - 1) * _GAP
    tile = QImage(width, box.height(), QImage.Format.Format_ARGB32_Premultiplied)
    tile.fill(Qt.GlobalColor.transparent)
    painter = QPainter(tile)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        x = 0
        for i, image in enumerate(images):
            if i:
                mid = box.height() / 2
                left = x - _GAP + 4
                arrow = QPolygonF(
                    [
                        QPointF(left, mid - 5),
                        QPointF(x - 4, mid),
                        QPointF(left, mid + 5),
                    ]
                )
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(128, 128, 128))
                painter.drawPolygon(arrow)
            top = (box.height() - image.height()) // 2
            painter.drawImage(x + (box.width() - image.width()) // 2, top, image)
            x += box.width() + _GAP
    finally:
        painter.end()
    return tile


class _Signals(QObject):
    """Lives in the GUI thread: the runnables' results reach it by queued connections."""

    decoded = Signal(int, object, object, object)  # generation, paths, QImage | None, thread
    listed = Signal(int, object)  # generation, list[Thumb] | Exception


class _Task(QRunnable):
    def __init__(self, live: Callable[[], bool], work: Callable[[], None]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._live = live
        self._work = work

    def run(self) -> None:
        if self._live():  # (a newer set of tiles made it moot: skip the work)
            self._work()


class ThumbnailModel(QAbstractListModel):
    """The tiles: caption, tooltip, the decoded image or a placeholder, and the path opened."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[Thumb] = []
        self._pixmaps: dict[tuple[Path, ...], QPixmap | None] = {}  # None: unreadable
        self._placeholder: QPixmap | None = None
        self._broken: QPixmap | None = None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        item = self._items[index.row()]
        role = int(role)
        if role == _DISPLAY:
            return item.caption
        if role == _DECORATION:
            if item.paths not in self._pixmaps:
                return self._placeholder
            return self._pixmaps[item.paths] or self._broken
        if role == _TOOLTIP:
            state = self._state(item)
            tip = item.tooltip or str(item.target)
            return (
                tip
                + ("\n(loading…)" if state == "loading" else "")
                + ("\n(this image cannot be read)" if state == "unreadable" else "")
            )
        if role == _ACCESSIBLE:
            return item.caption.replace("\n", " ")
        if role == PATH_ROLE:
            return str(item.target)
        if role == STATE_ROLE:
            return self._state(item)
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def _state(self, item: Thumb) -> str:
        if item.paths not in self._pixmaps:
            return "loading"
        return "shown" if self._pixmaps[item.paths] is not None else "unreadable"

    # -- ours ------------------------------------------------------------------------------

    def set_placeholders(self, loading: QPixmap, broken: QPixmap) -> None:
        self._placeholder = loading
        self._broken = broken

    def set_items(self, items: Sequence[Thumb]) -> list[Thumb]:
        """Show ``items``; returns those whose images are still to be decoded (the images
        of tiles shown before are kept)."""
        self.beginResetModel()
        self._items = list(items)
        keep = {i.paths for i in self._items}
        self._pixmaps = {k: v for k, v in self._pixmaps.items() if k in keep}
        self.endResetModel()
        todo = {i.paths: i for i in self._items if i.paths not in self._pixmaps}
        return list(todo.values())

    def set_image(self, paths: tuple[Path, ...], pixmap: QPixmap | None) -> None:
        self._pixmaps[paths] = pixmap
        for row, item in enumerate(self._items):
            if item.paths == paths:
                index = self.index(row, 0)
                self.dataChanged.emit(index, index, [])

    def items(self) -> list[Thumb]:
        return list(self._items)

    def item(self, row: int) -> Thumb:
        return self._items[row]


class ThumbnailGrid(QListView):
    """Tiles in rows that wrap, as tall as their rows up to three (see the module's text)."""

    #: Every tile's image is decoded (or known unreadable).
    all_loaded = Signal()
    #: The tiles' list could not be made (:meth:`load`): the exception.
    failed = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, size: int = 112) -> None:
        super().__init__(parent)
        # (the pool first: it is destroyed before the signals' object, waiting for its work)
        self.pool = QThreadPool(self)
        self.pool.setObjectName("thumbnail-decoders")
        self.pool.setMaxThreadCount(2)
        self.pool.setExpiryTimeout(2000)
        self._signals = _Signals(self)
        self._signals.decoded.connect(self._decoded)
        self._signals.listed.connect(self._listed)
        self._generation = 0
        self._current = [0]  # (the generation, as the runnables read it)
        self._pending = 0
        self._paired = False
        self._size = size
        #: The threads the images were decoded in (the GUI thread must never be one).
        self.decoded_in: set[int] = set()

        self.setObjectName("thumbnails")
        self.setAccessibleName("Output images")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setWrapping(True)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verticalScrollBar().setAccessibleName("Scroll the output images")
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.thumbs = ThumbnailModel(self)
        self.setModel(self.thumbs)
        self._apply_size()
        self.activated.connect(self._open)

    # -- what is shown ---------------------------------------------------------------------

    def set_items(self, items: Sequence[Thumb]) -> None:
        """Show ``items`` now and decode their images in the pool."""
        self._new_generation()
        self._show(list(items))

    def load(self, producer: Callable[[], list[Thumb]]) -> None:
        """Make the tiles with ``producer`` in the pool (it may read the disk), then show
        them; an exception it raises is emitted by :attr:`failed`."""
        generation = self._new_generation()
        signals = self._signals

        def work() -> None:
            try:
                items: Any = producer()
            except Exception as exc:  # noqa: BLE001 - handed to the GUI thread as it is
                items = exc
            signals.listed.emit(generation, items)

        self.pool.start(_Task(self._live(generation), work))

    def clear(self) -> None:
        self._new_generation()
        self._show([])

    def pending(self) -> int:
        """How many tiles are still to be decoded."""
        return self._pending

    def stop(self) -> None:
        """Drop the work not started and wait for what runs: nothing is left running."""
        self._new_generation()
        self.pool.clear()
        self.pool.waitForDone()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop()
        super().closeEvent(event)

    # -- internals -------------------------------------------------------------------------

    def _new_generation(self) -> int:
        self._generation += 1
        self._current[0] = self._generation
        self.pool.clear()  # (queued work of older tiles is moot)
        return self._generation

    def _live(self, generation: int) -> Callable[[], bool]:
        current = self._current  # (not self: a runnable never touches the widget)
        return lambda: current[0] == generation

    def _show(self, items: list[Thumb]) -> None:
        paired = any(len(i.paths) > 1 for i in items)
        if paired != self._paired:
            self._paired = paired
            self._apply_size()
        todo = self.thumbs.set_items(items)
        self._pending = len(todo)
        self.updateGeometry()
        generation = self._generation
        box = QSize(self._size, self._size)
        signals = self._signals
        for item in todo:

            def work(paths: tuple[Path, ...] = item.paths) -> None:
                image = decode(paths, box)
                signals.decoded.emit(generation, paths, image, threading.get_ident())

            self.pool.start(_Task(self._live(generation), work))
        if not todo:
            self.all_loaded.emit()

    @Slot(int, object)
    def _listed(self, generation: int, items: Any) -> None:
        if generation != self._generation:
            return
        if isinstance(items, Exception):
            self._show([])
            self.failed.emit(items)
            return
        self._show(list(items))

    @Slot(int, object, object, object)
    def _decoded(self, generation: int, paths: Any, image: Any, thread: Any) -> None:
        if generation != self._generation:
            return
        self.decoded_in.add(thread)
        self.thumbs.set_image(paths, None if image is None else QPixmap.fromImage(image))
        self._pending = max(0, self._pending - 1)
        if self._pending == 0:
            self.all_loaded.emit()

    def _icon_size(self) -> QSize:
        if self._paired:
            return QSize(2 * self._size + _GAP, self._size)
        return QSize(self._size, self._size)

    def _apply_size(self) -> None:
        icon = self._icon_size()
        self.setIconSize(icon)
        text = 2 * self.fontMetrics().height() + 4
        self.setGridSize(QSize(icon.width() + 16, icon.height() + text + 12))
        self.setSpacing(4)
        self.thumbs.set_placeholders(self._placeholder(icon, ""), self._placeholder(icon, "?"))
        self.updateGeometry()

    def _placeholder(self, size: QSize, mark: str) -> QPixmap:
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        try:
            colour = self.palette().color(QPalette.ColorRole.Mid)
            colour.setAlphaF(0.35)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawRoundedRect(QRect(0, 0, size.width(), size.height()), 6, 6)
            if mark:
                painter.setPen(self.palette().color(QPalette.ColorRole.Text))
                painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, mark)
        finally:
            painter.end()
        return pixmap

    @Slot(QModelIndex)
    def _open(self, index: QModelIndex) -> None:
        path = index.data(PATH_ROLE)
        if path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    # -- geometry: as tall as the rows (up to _MAX_ROWS) -------------------------------------

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        grid = self.gridSize()
        inner = max(1, width - 2 * self.frameWidth())
        per_row = max(1, inner // max(1, grid.width()))
        count = self.thumbs.rowCount()
        rows = min(_MAX_ROWS, max(1, math.ceil(count / per_row)))
        return rows * grid.height() + 2 * self.frameWidth() + 4

    def sizeHint(self) -> QSize:
        width = super().sizeHint().width()
        return QSize(width, self.heightForWidth(max(width, self.width())))

    def minimumSizeHint(self) -> QSize:
        return QSize(self.gridSize().width(), self.gridSize().height())
