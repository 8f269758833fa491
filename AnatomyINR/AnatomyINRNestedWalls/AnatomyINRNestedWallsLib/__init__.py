"""Slicer-free computation of the AnatomyINRNestedWalls module (see ``compute``)."""
