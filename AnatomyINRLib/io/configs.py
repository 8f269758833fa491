"""Reading typed configuration files (JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.io.formats import check_readable


def read_config(path, config_type):
    """Parse a JSON config file into ``config_type`` (a ConfigBase subclass).

    Raises:
        InputError: missing/unreadable file, invalid JSON or unknown keys.
    """
    p = check_readable(path, argument="config")
    try:
        data = json.loads(Path(p).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"config {str(path)!r}: cannot read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"config {str(path)!r}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    return config_type.from_dict(data)
