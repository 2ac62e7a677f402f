"""Small images in every format gigapatch reads, for tests, docs and bug reports.

Each writer takes an in-memory image (``sample_rgb`` and ``sample_fluorescence``
make realistic ones) and writes it, with a pyramid of 2× box-averaged levels
where the format has one:

=========================  ==============================================  ===================
writer                     layout                                          opened as
=========================  ==============================================  ===================
``write_ome_tiff``         OME-TIFF, levels as SubIFDs, ``YXS`` or ``CYX``   ome-tiff
``write_ome_tiff_series``  OME-TIFF with several images (series), each     ome-tiff, ``series=``
                           with its own SubIFD pyramid and name
``write_tiff``             generic TIFF: tiled or stripped, optional       tiff
                           pyramid pages in the main IFD chain
                           (OpenSlide's layout)
``write_abbreviated_jpeg`` one tiled level of JPEG tiles as Aperio writes  tiff
                           them: abbreviated streams, shared
                           ``JPEGTables``; RGB components without a
                           JFIF or Adobe marker (or YCbCr, or grey)
``write_zarr``             a bare Zarr v2 or v3 array (h, w[, C])          zarr-v2/3
``write_ome_zarr``         OME-Zarr 0.4 (Zarr v2) or 0.5 (Zarr v3)         ome-zarr
                           multiscales
``write_hamamatsu_vmu``    Hamamatsu VMU: a key file, an uncompressed      openslide-hamamatsu
                           12-bit NGR image, a 4× smaller NGR map, an      (OpenSlide only)
                           optional JPEG macro image
=========================  ==============================================  ===================

Aperio-style SVS files come from :func:`gigapatch.synthesize`; one damaged tile from
:func:`gigapatch.synth.damage_tile`. :func:`dying_slide` opens a file as a slide whose first
pixel read kills its process, as the out-of-memory killer does, to test how worker deaths
are reported.
"""

from __future__ import annotations

import io
import os
import signal
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import tifffile
import zarr
from PIL import Image

from gigapatch.sources import Slide, open_slide
from gigapatch.synth import render

__all__ = [
    "dying_slide",
    "pyramid",
    "write_abbreviated_jpeg",
    "sample_fluorescence",
    "sample_rgb",
    "write_hamamatsu_vmu",
    "write_ome_tiff",
    "write_ome_tiff_series",
    "write_ome_zarr",
    "write_tiff",
    "write_zarr",
]


def sample_rgb(height: int, width: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """An (h, w, 3) uint8 H&E-like image (the synthetic slide's renderer)."""
    return render(height, width, seed=seed)


def sample_fluorescence(
    height: int, width: int, channels: int = 3, seed: int = 0
) -> npt.NDArray[np.uint16]:
    """A (C, h, w) uint16 fluorescence-like image: dark background, bright nuclei per channel."""
    rgb = render(height, width, seed=seed).astype(np.float32)
    signal = 255.0 - rgb  # stained = bright
    out = np.empty((channels, height, width), np.uint16)
    for c in range(channels):
        plane = signal[..., c % 3] * (40 + 60 * c) + 100.0 * c
        out[c] = np.clip(plane, 0, 65535).astype(np.uint16)
    return out


def pyramid(image: np.ndarray, levels: int, *, channels_first: bool = False) -> list[np.ndarray]:
    """``levels`` images, each a 2×2 box average of the one before (odd edges dropped)."""
    out = [image]
    for _ in range(levels - 1):
        a = out[-1]
        if channels_first:
            c, h, w = a.shape
            b = a[:, : h // 2 * 2, : w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).mean((2, 4))
        else:
            h, w = a.shape[:2]
            b = a[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2, *a.shape[2:])
            b = b.mean((1, 3))
        out.append(np.round(b).astype(image.dtype))
    return out


def write_ome_tiff(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    levels: int = 3,
    tile: int = 256,
    compression: str = "jpeg",
    channels_first: bool = False,
    mpp: float | None = 0.5,
) -> Path:
    """OME-TIFF with a SubIFD pyramid; ``channels_first`` writes a ``CYX`` image."""
    axes = "CYX" if channels_first else ("YXS" if image.ndim == 3 else "YX")
    rgb = image.ndim == 3 and not channels_first and image.shape[2] == 3
    photometric = "rgb" if rgb else "minisblack"
    meta: dict[str, Any] = {"axes": axes}
    if mpp is not None:
        meta.update(PhysicalSizeX=mpp, PhysicalSizeY=mpp, PhysicalSizeXUnit="µm",
                    PhysicalSizeYUnit="µm")
    levels_ = pyramid(image, levels, channels_first=channels_first)
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        opts: dict[str, Any] = dict(tile=(tile, tile), compression=compression,
                                    photometric=photometric)
        tw.write(levels_[0], subifds=levels - 1, metadata=meta, **opts)
        for lvl in levels_[1:]:
            tw.write(lvl, subfiletype=1, **opts)
    return Path(path)


def write_ome_tiff_series(
    path: str | os.PathLike[str],
    images: Sequence[np.ndarray],
    *,
    names: Sequence[str] | None = None,
    levels: int | Sequence[int] = 3,
    mpp: float | Sequence[float | None] | None = 0.5,
    tile: int = 256,
    compression: str = "jpeg",
) -> Path:
    """OME-TIFF holding several RGB or grey images (tifffile *series*), e.g. two scanned
    regions and a small macro photograph.

    Each image gets its own OME ``Image`` (named ``names[k]``, default ``"image k"``), its
    own SubIFD pyramid of ``levels`` (or ``levels[k]``) 2× levels and pixel size ``mpp``
    (or ``mpp[k]``).
    """
    n = len(images)
    names = list(names) if names is not None else [f"image {k}" for k in range(n)]
    counts = [levels] * n if isinstance(levels, int) else list(levels)
    mpps = list(mpp) if isinstance(mpp, Sequence) else [mpp] * n
    if not len(names) == len(counts) == len(mpps) == n:
        raise ValueError(f"names, levels and mpp must have one entry per image ({n})")
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for image, name, count, size in zip(images, names, counts, mpps, strict=True):
            rgb = image.ndim == 3 and image.shape[2] == 3
            meta: dict[str, object] = {"axes": "YXS" if image.ndim == 3 else "YX", "Name": name}
            if size is not None:
                meta.update(PhysicalSizeX=size, PhysicalSizeY=size, PhysicalSizeXUnit="µm",
                            PhysicalSizeYUnit="µm")
            photometric = "rgb" if rgb else "minisblack"
            for k, lvl in enumerate(pyramid(image, count)):
                tw.write(lvl, tile=(tile, tile), compression=compression, photometric=photometric,
                         subifds=count - 1 if k == 0 else None, subfiletype=1 if k else 0,
                         metadata=meta if k == 0 else None)
    return Path(path)


def _write_ngr(path: Path, image: np.ndarray, column_width: int) -> None:
    """Hamamatsu NGR: a 32-byte header ("GN", width, height, column width at 4, data offset
    at 24), then columns of ``column_width`` pixels, top to bottom, 3 × uint16 LE per pixel
    holding 12-bit values (OpenSlide keeps the top 8 bits)."""
    h, w = image.shape[:2]
    header = bytearray(32)
    header[:2] = b"GN"
    struct.pack_into("<3i", header, 4, w, h, column_width)
    struct.pack_into("<i", header, 24, len(header))
    data = (image.astype("<u2") << 4).reshape(h, w // column_width, column_width, 3)
    with path.open("wb") as fh:
        fh.write(header)
        fh.write(np.ascontiguousarray(data.transpose(1, 0, 2, 3)).tobytes())


def write_hamamatsu_vmu(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    column_width: int = 64,
    mpp: float = 0.5,
    magnification: float = 20,
    macro: np.ndarray | None = None,
) -> Path:
    """Hamamatsu VMU (uncompressed), a format only OpenSlide reads, lossless.

    ``path`` (``.vmu``) is the key file; next to it go ``<stem>.ngr`` (level 0, ``image``,
    (h, w, 3) uint8, ``w`` a multiple of ``column_width``), ``<stem>_map.ngr`` (level 1, the
    4× box average of ``pyramid``) and, given ``macro``, ``<stem>_macro.jpg`` (OpenSlide's
    associated image ``"macro"``). OpenSlide returns ``image`` exactly and reports ``mpp``
    and ``magnification``.
    """
    path = Path(path)
    h, w = image.shape[:2]
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (h, w, 3) uint8; got {image.shape} {image.dtype}")
    if w % column_width:
        raise ValueError(f"image width {w} must be a multiple of column_width {column_width}")
    small = pyramid(image, 3)[2]
    _write_ngr(path.with_suffix(".ngr"), image, column_width)
    _write_ngr(path.with_name(f"{path.stem}_map.ngr"), small, small.shape[1])
    lines = [
        "[Uncompressed Virtual Microscope Specimen]",
        f"ImageFile={path.stem}.ngr",
        f"MapFile={path.stem}_map.ngr",
        "BitsPerPixel=36",
        "PixelOrder=RGB",
        f"PhysicalWidth={round(mpp * w * 1000)}",  # nanometres
        f"PhysicalHeight={round(mpp * h * 1000)}",
        f"SourceLens={magnification:g}",
    ]
    if macro is not None:
        buf = io.BytesIO()
        Image.fromarray(macro).save(buf, format="JPEG", quality=95)
        path.with_name(f"{path.stem}_macro.jpg").write_bytes(buf.getvalue())
        lines.append(f"MacroImage={path.stem}_macro.jpg")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tiff(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    tile: int | None = 256,
    levels: int = 1,
    compression: str | None = "zlib",
    mpp: float | None = 0.5,
    rowsperstrip: int | None = None,
    bigtiff: bool = False,
) -> Path:
    """Generic TIFF, tiled or stripped (``tile=None``); pyramid pages in the main IFD chain."""
    rgb = image.ndim == 3 and image.shape[2] == 3
    res: dict[str, Any] = {} if mpp is None else {"resolution": (1e4 / mpp, 1e4 / mpp),
                                                  "resolutionunit": "CENTIMETER"}
    with tifffile.TiffWriter(path, bigtiff=bigtiff) as tw:
        for k, lvl in enumerate(pyramid(image, levels)):
            tw.write(
                lvl, tile=(tile, tile) if tile else None, rowsperstrip=rowsperstrip,
                compression=compression, photometric="rgb" if rgb else "minisblack",
                subfiletype=1 if k else 0, metadata=None, **res,
            )
    return Path(path)


def _split_jpeg(stream: bytes) -> tuple[bytes, bytes]:
    """(tables, abbreviated image) of a JPEG stream, as Aperio writes its tiles.

    The DQT and DHT segments move to a tables stream; APP segments (JFIF, Adobe) are
    dropped; the components are numbered 0, 1, 2… (libjpeg takes ``R``, ``G``, ``B``
    to mean RGB, numbers to mean YCbCr: only the TIFF says which).
    """
    tables, image, pos = [], [b"\xff\xd8"], 2
    while True:
        marker = stream[pos + 1]
        end = pos + 2 + int.from_bytes(stream[pos + 2 : pos + 4], "big")
        segment = bytearray(stream[pos:end])
        if marker in (0xC0, 0xC1, 0xC2):  # frame header: Nf at 9, then (C, HV, Tq) each
            segment[10 : 10 + 3 * segment[9] : 3] = bytes(range(segment[9]))
        elif marker == 0xDA:  # scan header: Ns at 4, then (Cs, TdTa) each
            segment[5 : 5 + 2 * segment[4] : 2] = bytes(range(segment[4]))
            image.append(bytes(segment) + stream[end:])
            break
        if marker in (0xDB, 0xC4):
            tables.append(bytes(segment))
        elif not 0xE0 <= marker <= 0xEF:
            image.append(bytes(segment))
        pos = end
    return b"\xff\xd8" + b"".join(tables) + b"\xff\xd9", b"".join(image)


def write_abbreviated_jpeg(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    tile: int = 240,
    colorspace: Literal["rgb", "ycbcr"] = "rgb",
    quality: int = 90,
) -> Path:
    """One tiled level of JPEG tiles the way Aperio scanners write them.

    Every tile is an abbreviated stream (no tables) and the tables are the page's
    ``JPEGTables`` tag; components are numbered 0, 1, 2 (as in Aperio's files).
    ``colorspace="rgb"`` stores the RGB components as they are, with no JFIF or Adobe
    marker: only the TIFF's photometric RGB says so (a reader that trusts the stream
    decodes them as YCbCr, wrongly). ``"ycbcr"`` stores YCbCr 4:4:4, also without
    markers. A 2-D ``image`` is stored grey.
    """
    import imagecodecs

    grey = image.ndim == 2
    h, w = image.shape[:2]
    shape = (tile, tile) if grey else (tile, tile, image.shape[2])
    tables, tiles = b"", []
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            block = np.zeros(shape, np.uint8)
            part = image[y : y + tile, x : x + tile]
            block[: part.shape[0], : part.shape[1]] = part
            encoded = imagecodecs.jpeg8_encode(
                block, level=quality, colorspace=None if grey else "RGB",
                outcolorspace=None if grey else colorspace.upper(), subsampling="444")
            tables, abbreviated = _split_jpeg(bytes(encoded))
            tiles.append(abbreviated)
    colour: dict[str, Any] = {"photometric": "minisblack"} if grey else {
        "photometric": "rgb", "subsampling": (1, 1),
        "compressionargs": {"outcolorspace": colorspace}}  # the Photometric tag written
    with tifffile.TiffWriter(path) as tw:
        tw.write(iter(tiles), shape=image.shape, dtype=np.uint8, tile=(tile, tile),
                 compression="jpeg", jpegtables=tables, metadata=None, **colour)
    return Path(path)


def write_zarr(
    path: str | os.PathLike[str], image: np.ndarray, *, zarr_format: Literal[2, 3] = 3,
    chunks: int = 256,
) -> Path:
    """A bare Zarr array of ``image``'s shape, chunked ``chunks`` along y and x."""
    shape_chunks = (chunks, chunks, *image.shape[2:])
    arr = zarr.create_array(path, shape=image.shape, dtype=image.dtype, chunks=shape_chunks,
                            zarr_format=zarr_format, overwrite=True)
    arr[...] = image
    return Path(path)


def write_ome_zarr(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    version: Literal["0.4", "0.5"] = "0.5",
    levels: int = 3,
    chunks: int = 256,
    channels_first: bool = True,
    mpp: float | None = 0.5,
) -> Path:
    """OME-Zarr multiscales: 0.5 on Zarr v3 or 0.4 on Zarr v2, axes ``cyx`` (or ``yx``)."""
    if version not in ("0.4", "0.5"):
        raise ValueError(f"version must be '0.4' or '0.5'; got {version!r}")
    zarr_format: Literal[2, 3] = 3 if version == "0.5" else 2
    if image.ndim == 3 and not channels_first:
        image = np.moveaxis(image, 2, 0)
    has_c = image.ndim == 3
    axes: list[dict[str, str]] = ([{"name": "c", "type": "channel"}] if has_c else []) + [
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    group = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    datasets: list[dict[str, Any]] = []
    for k, lvl in enumerate(pyramid(image, levels, channels_first=has_c)):
        chunk = ((lvl.shape[0],) if has_c else ()) + (chunks, chunks)
        group.create_array(str(k), shape=lvl.shape, dtype=lvl.dtype, chunks=chunk)[...] = lvl
        scale = ([1.0] if has_c else []) + [(mpp or 1.0) * 2**k] * 2
        datasets.append({"path": str(k),
                         "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    if mpp is None:
        for ax in axes:
            ax.pop("unit", None)
    multiscales: list[dict[str, Any]] = [
        {"name": Path(path).name, "axes": axes, "datasets": datasets}
    ]
    if version == "0.5":
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    else:
        multiscales[0]["version"] = "0.4"
        group.attrs["multiscales"] = multiscales
    return Path(path)


class _DyingReader:
    """A slide reader whose pixel reads SIGKILL the calling process (geometry reads work)."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)

    def read_level(self, *args: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def read_many(self, *args: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def dying_slide(path: str | os.PathLike[str]) -> Slide:
    """``path`` opened as a slide whose first pixel read kills its process with SIGKILL.

    Run it in worker processes only (``scheduler="processes"`` or a ``distributed``
    cluster): a read in the calling process kills that process. It pickles as itself, so
    each worker that receives it dies on its first read, as one killed by the system for
    lack of memory does.
    """
    slide = open_slide(path)
    return Slide(_DyingReader(slide._reader), name=slide.name, path=slide.path,
                 reopen=(dying_slide, (os.fspath(path),)))
