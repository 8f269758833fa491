"""Slicer-free computation of the AnatomyINRSurfaceFromPoints module (see ``compute``)."""
