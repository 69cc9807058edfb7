"""The desktop application (PySide6 + qasync). The only package that imports Qt.

superqt speaks to Qt through qtpy; pin it to PySide6 before anything imports it.
"""

import os

os.environ.setdefault("QT_API", "pyside6")
