"""Fetch an MNIST-format dataset from its public mirrors, md5-verified and written atomically.

Each file is streamed into memory (the largest MNIST-format file is under 30 MB), checked
against the published md5 and only then written with :func:`lenet5.files.atomic_write_bytes`,
so an interrupted or corrupt download never shows up under the name the loader reads. A mirror that fails is logged and the next one is
tried; only when all of them fail does the user get an error, listing what each one did.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import DataError
from ..files import atomic_write_bytes, check_dir_target
from .mnist import DATASETS, md5sum

CHUNK_BYTES = 1 << 16
USER_AGENT = "lenet5-downloader"  # some mirrors refuse urllib's default agent


class MirrorFailure(Exception):
    """One mirror could not deliver one file; the caller moves on to the next mirror."""


def download_dataset(name: str, dest: str | Path, mirrors: Sequence[str] | None = None,
                     timeout: float = 30, log: Callable[[str], object] = print) -> list[Path]:
    """Make sure ``dest`` holds the four verified files of dataset ``name``.

    Args:
        name: a key of :data:`lenet5.data.mnist.DATASETS` ("mnist", "fashion-mnist").
        dest: the folder to write into; created if missing.
        mirrors: base URLs to try in order (default: the dataset's published mirrors).
        timeout: seconds to wait on any one network operation before giving up on a mirror.
        log: receives one line per file and per failed mirror.

    Returns:
        The paths of the four files, in the order of ``DATASETS[name].md5``.

    Raises:
        DataError: unknown dataset, a folder that cannot be written, or a file that no
            mirror could deliver with the right md5.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(sorted(DATASETS))}")
    files = DATASETS[name]
    if isinstance(mirrors, str):  # a lone URL would otherwise be iterated letter by letter
        mirrors = [mirrors]
    mirror_list = list(files.mirrors if mirrors is None else mirrors)
    if not mirror_list:
        raise DataError("no mirrors to download from")
    dest = Path(dest)
    check_dir_target(dest, "--dest")  # created by the first verified file, so a failure leaves nothing
    paths = []
    for file_name, md5 in files.md5.items():
        target = dest / file_name
        if target.is_file() and md5sum(target) == md5:
            log(f"{target}: already present, md5 ok")
        else:
            if target.exists():
                log(f"{target}: md5 does not match the published sum; downloading it again")
            fetch_file(file_name, md5, target, mirror_list, timeout, log)
        paths.append(target)
    return paths


def fetch_file(file_name: str, md5: str, target: Path, mirrors: Sequence[str], timeout: float,
               log: Callable[[str], object]) -> None:
    """Try each mirror in turn until one delivers ``file_name`` with the right md5."""
    failures = []
    for number, mirror in enumerate(mirrors, start=1):
        url = mirror.rstrip("/") + "/" + file_name
        try:
            size = download_verified(url, md5, target, timeout)
        except MirrorFailure as exc:
            failures.append(f"{url}: {exc}")
            log(failures[-1] + ("; trying the next mirror" if number < len(mirrors) else ""))
            continue
        log(f"{target}: downloaded {size / 1e6:.1f} MB from {url}, md5 ok")
        return
    raise DataError(f"{file_name}: no mirror delivered a good copy ({'; '.join(failures)})")


def download_verified(url: str, md5: str, target: Path, timeout: float) -> int:
    """Download ``url`` into memory, check its md5, then write it to ``target`` atomically.

    Returns the number of bytes written. Raises :class:`MirrorFailure` for anything the
    mirror did wrong and :class:`Lenet5Error` if the local folder cannot be written; either
    way ``target`` is left as it was.
    """
    body = io.BytesIO()
    digest, size = _stream(url, body, timeout)
    if digest != md5:
        raise MirrorFailure(f"served {size} bytes with md5 {digest}, expected {md5}")
    # A local disk problem raises Lenet5Error: no point trying other mirrors then.
    atomic_write_bytes(target, body.getvalue())
    return size


def _stream(url: str, handle: BinaryIO, timeout: float) -> tuple[str, int]:
    """Copy the body of ``url`` into ``handle``; return its md5 hex digest and length."""
    digest = hashlib.md5()
    size = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            while chunk := response.read(CHUNK_BYTES):
                digest.update(chunk)
                handle.write(chunk)
                size += len(chunk)
        # read(n) returns short at a dropped connection instead of raising; say so plainly.
        if declared is not None and declared.isdigit() and size < int(declared):
            raise MirrorFailure(f"connection closed after {size} of {declared} bytes")
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the error page's open connection
        raise MirrorFailure(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise MirrorFailure(_describe(exc.reason)) from None
    # Errors while reading the body arrive unwrapped (timeouts, resets, TLS errors are all
    # OSError); ValueError is a malformed mirror URL.
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise MirrorFailure(_describe(exc)) from None
    return digest.hexdigest(), size


def _describe(reason: object) -> str:
    """A short one-line reason for a network failure."""
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
