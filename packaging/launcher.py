"""The bundle's entry script: PyInstaller runs this file as ``__main__``.

It only hands over to the package's own entry point, so the bundle and ``comfyvn-gui`` from a
wheel run the same code.
"""

import sys

from comfyvn_gui.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
