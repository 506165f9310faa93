"""What the console's whole-file uploads share (the licence list, a bank statement's payments).

A file read whole is held in memory while it is checked, so the form takes at most
:data:`MAX_BYTES`: a register of a few thousand terminal models or a month's statement of
20,000 transfers is a few hundred KiB to about 1 MiB.
"""

from __future__ import annotations

from typing import Final

from fastapi import UploadFile

from satiot.core.csv_text import FileRejected, RowError

MAX_BYTES: Final = 4 * 1024 * 1024


def uploaded(file: UploadFile, rejected: type[FileRejected]) -> bytes:
    """The file's bytes; ``rejected`` (one error for the whole file) when it is larger than
    :data:`MAX_BYTES`, read no further than one byte past it."""
    data = file.file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise rejected([RowError(1, "", f"the file is over {MAX_BYTES // 1024 // 1024} MiB")])
    return data
