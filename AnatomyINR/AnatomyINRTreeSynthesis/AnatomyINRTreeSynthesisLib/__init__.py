"""Slicer-free computation of the AnatomyINRTreeSynthesis module (see ``compute``)."""
