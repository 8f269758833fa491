"""Surfaces and volumes from fields: narrow band sampling, marching cubes, masks.

A field is any callable ``(N, 3) float64 RAS mm -> (N,) float64 mm`` (signed
distance, negative inside); K-output fields return (N, K).
"""

from AnatomyINRLib.meshing.api import bounds_of, mesh_from_field
from AnatomyINRLib.meshing.config import MeshingConfig
from AnatomyINRLib.meshing.extract import (
    ExtractionResult,
    MultiExtractionResult,
    extract_surface,
    extract_surfaces_multi,
    marching_cubes,
)
from AnatomyINRLib.meshing.grid import FieldEvaluator, make_grid
from AnatomyINRLib.meshing.labelmap import labelmap_from_field, sdf_volume, voxelize_mesh
from AnatomyINRLib.meshing.narrowband import SampledField, dense_sample, narrowband_sample
from AnatomyINRLib.meshing.postprocess import (
    clean_mesh,
    component_areas,
    largest_component,
    orient_outward,
    vertex_normals,
    winding_number,
)
from AnatomyINRLib.meshing.topology import mesh_quality

__all__ = [
    "ExtractionResult",
    "FieldEvaluator",
    "MeshingConfig",
    "MultiExtractionResult",
    "SampledField",
    "bounds_of",
    "clean_mesh",
    "component_areas",
    "dense_sample",
    "extract_surface",
    "extract_surfaces_multi",
    "labelmap_from_field",
    "largest_component",
    "make_grid",
    "marching_cubes",
    "mesh_from_field",
    "mesh_quality",
    "narrowband_sample",
    "orient_outward",
    "sdf_volume",
    "vertex_normals",
    "voxelize_mesh",
    "winding_number",
]
