"""Slicer-free computation of the AnatomyINRShapeFromImage module (see ``compute``)."""
