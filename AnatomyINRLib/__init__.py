"""AnatomyINRLib: implicit neural representations of anatomy.

The pure library behind the AnatomyINR Slicer extension. It never imports
``slicer``, ``qt`` or ``ctk``. World coordinates are RAS millimetres; signed
distance fields are negative inside.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
