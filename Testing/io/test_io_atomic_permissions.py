"""Outputs written through atomic_path get ordinary permissions (not mkstemp's 0600)."""

import os
import stat

from AnatomyINRLib.io.atomic import atomic_path


def test_atomic_output_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "out.txt"
        with atomic_path(target) as tmp:
            tmp.write_text("x")
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
    finally:
        os.umask(old)
