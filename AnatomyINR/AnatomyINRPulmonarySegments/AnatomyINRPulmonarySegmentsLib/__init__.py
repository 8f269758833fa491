"""Slicer-free computation of the AnatomyINRPulmonarySegments module (see ``compute``)."""
