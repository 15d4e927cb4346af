"""kboss: control plane for compute-power centers."""

__version__ = "0.1.0"
