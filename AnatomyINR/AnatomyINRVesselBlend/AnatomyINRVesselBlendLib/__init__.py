"""Slicer-free computation of the AnatomyINRVesselBlend module (see ``compute``)."""
