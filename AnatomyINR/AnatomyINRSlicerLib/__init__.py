"""AnatomyINRSlicerLib: the Slicer-side layer shared by every AnatomyINR module.

- ``mrml_convert``: MRML nodes ⇄ library types (copies; inputs never modified);
- ``vtk_convert``: the VTK/numpy half of those conversions (no Slicer needed);
- ``dependencies``: torch via SlicerPyTorch and pip requirements, at Apply time;
- ``worker_protocol``: command lines, JSON progress, exit codes (no Qt needed);
- ``runner``: the background worker process polled from the Qt event loop;
- ``progress``: progress bar and status text;
- ``module_base``: the widget and logic base classes of every module (template
  parameter-node lifecycle, Apply/Cancel, the worker run).

This ``__init__`` imports nothing so that the Qt-free parts can be imported
(and tested) outside Slicer.
"""
