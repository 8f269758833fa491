"""All file formats of the library (nothing else reads or writes files).

Inside the library the world frame is RAS millimetres; every reader converts
from the file's frame (Slicer files are LPS by default) and every writer
converts back. Outputs are written atomically (temporary file, then rename);
inside ``output_transaction`` all of a run's outputs are committed together or not at all.
Heavy dependencies (VTK, SimpleITK, torch) are imported only when a function
that needs them is called.

``SUPPORTED`` maps each kind ("points", "mesh", "image", "inr") to its file
extensions. Training checkpoints (``save_checkpoint``/``load_checkpoint``) are
``.safetensors`` files with JSON metadata, like fitted fields never pickled.
"""

from AnatomyINRLib.io.atomic import atomic_path, check_writable
from AnatomyINRLib.io.centerline import read_centerline, write_centerline
from AnatomyINRLib.io.checkpoint import load_checkpoint, save_checkpoint
from AnatomyINRLib.io.formats import SUPPORTED, file_extension, format_of
from AnatomyINRLib.io.images import read_image, write_image
from AnatomyINRLib.io.inr import load_inr, save_inr
from AnatomyINRLib.io.meshes import read_mesh, read_mesh_with_frame, write_mesh
from AnatomyINRLib.io.points import read_points, read_points_with_frame, write_points
from AnatomyINRLib.io.transaction import check_distinct_paths, output_transaction

__all__ = [
    "SUPPORTED",
    "atomic_path",
    "check_distinct_paths",
    "check_writable",
    "file_extension",
    "format_of",
    "load_checkpoint",
    "load_inr",
    "output_transaction",
    "read_centerline",
    "read_image",
    "read_mesh",
    "read_mesh_with_frame",
    "read_points",
    "read_points_with_frame",
    "save_checkpoint",
    "save_inr",
    "write_centerline",
    "write_image",
    "write_mesh",
    "write_points",
]
