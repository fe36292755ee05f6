"""Textfiles (a path or a glob), re-read at every scrape in a worker thread.

Each file is its own body (two files may both declare a family) and reports its mtime.
"""
from __future__ import annotations

import asyncio
import glob
import os
from typing import Dict, List, Optional, Tuple

from .base import Fetched, FetchError, Params, Source


def _read_all(pattern: str, max_bytes: int) -> Tuple[List[bytes], Dict[str, float], List[str]]:
    bodies: List[bytes] = []
    mtimes: Dict[str, float] = {}
    oversize: List[str] = []
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path, "rb") as f:
                mtime = os.fstat(f.fileno()).st_mtime
                data = f.read(max_bytes + 1)
        except (IsADirectoryError, FileNotFoundError, PermissionError):
            continue
        if len(data) > max_bytes:
            oversize.append(path)
            continue
        bodies.append(data)
        mtimes[path] = mtime
    return bodies, mtimes, oversize


class FileSource(Source):
    async def fetch(self, params: Optional[Params] = None,
                    timeout: Optional[float] = None) -> Fetched:
        # Scrape params never reach the path: the pattern is configuration only.
        loop = asyncio.get_running_loop()
        bodies, mtimes, oversize = await loop.run_in_executor(
            None, _read_all, self.spec.path, self.spec.max_bytes)
        if oversize:
            raise FetchError("oversize", "above %d bytes: %s"
                             % (self.spec.max_bytes, ", ".join(oversize)))
        if not mtimes:
            raise FetchError("missing", "no readable file matches %s" % self.spec.path)
        return Fetched(bodies, files=mtimes)
