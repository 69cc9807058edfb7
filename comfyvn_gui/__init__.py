"""comfyvn-gui: run ComfyVN importer work on the right GPU, safely and knowing why."""

__version__ = "0.1.0"
