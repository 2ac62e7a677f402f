"""`Slide`: one image pyramid behind one read API, whatever the file format.

A `Slide` holds the geometry of every level and a *reader*, the format-specific
object that decodes level pixels. Coordinates follow OpenSlide's convention in
(y, x) order: ``read(y, x, height, width, level)`` takes the top-left corner in
**level-0** pixels and the size in pixels **of the level read**.

A slide pickles as its path and options, never as open file handles: a worker
process that unpickles it reopens the file (tifffile's stores cannot be
pickled, and handles must not cross processes).

What a format's reader provides (:class:`Level`, the ``Reader`` protocol) is in
:mod:`gigapatch.sources.reader`; the batch read behind :meth:`Slide.read_regions`
is in :mod:`gigapatch.sources.batch`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from gigapatch.errors import (
    InvalidArgumentError,
    RegionError,
    SlideError,
    check_array,
    check_coordinate,
    check_coordinates,
    check_fill,
    check_int,
    check_positive,
)
from gigapatch.sources.batch import check_tiles, read_batch
from gigapatch.sources.reader import Level, Reader
from gigapatch.sources.region import read_region as openslide_region
from gigapatch.sources.resolution import (
    MPP_TOLERANCE,
    Resolution,
    check_tolerance,
    resolve_resolution,
)
from gigapatch.sources.series import Series

__all__ = ["MAX_SIDE", "Level", "Series", "Slide"]

#: Largest height or width of one read, in pixels (a level-0 read of the largest slides is
#: ~200,000 pixels a side); beyond it, a request is a mistake, not a read.
MAX_SIDE = 1 << 20


#: How a slide rebuilds itself in another process: ``(callable, args)``, both small.
Reopen: TypeAlias = tuple[Callable[..., "Slide"], tuple[Any, ...]]


class Slide:
    """A multi-resolution image, opened by :func:`gigapatch.open`.

    Parameters
    ----------
    reader
        The format-specific reader.
    name
        A short human name (the file name for files).
    path
        The file or store it came from, ``None`` for in-memory arrays.
    reopen
        ``(callable, args)`` that rebuilds the slide in another process; the
        arguments are small (a path and options) for files.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        name: str,
        path: str | None = None,
        reopen: Reopen,
    ) -> None:
        self._reader = reader
        self.name = name
        self.path = path
        self._reopen = reopen

    # ---- geometry -------------------------------------------------------------------
    @property
    def format(self) -> str:
        """Short name of the container format (``"svs"``, ``"tiff"``, ``"array"``…)."""
        return self._reader.format

    @property
    def levels(self) -> tuple[Level, ...]:
        """Every pyramid level, full resolution first."""
        return self._reader.levels

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of level 0."""
        return self._reader.levels[0].shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """Pixel data type."""
        return self._reader.dtype

    @property
    def channels(self) -> int:
        """Samples per pixel (3 for RGB scans)."""
        return self._reader.channels

    @property
    def mpp(self) -> float | None:
        """Microns per pixel at level 0, ``None`` when the file does not say."""
        return self._reader.mpp

    @property
    def magnification(self) -> float | None:
        """Objective power the scanner recorded (Aperio ``AppMag``…), ``None`` when unknown.

        Plans by ``magnification=`` fall back to ``10 / mpp`` when it is ``None``.
        """
        value = getattr(self._reader, "magnification", None)
        return None if value is None else float(value)

    def resolution(
        self,
        *,
        level: int | None = None,
        mpp: float | None = None,
        magnification: float | None = None,
        tolerance: float = MPP_TOLERANCE,
    ) -> Resolution:
        """The level read and the resampling factor for a target (see
        :mod:`gigapatch.sources.resolution`): a level within ``tolerance`` of the
        target is read as it is, else the coarsest finer level is downsampled."""
        return resolve_resolution(
            self, level=level, mpp=mpp, magnification=magnification, tolerance=tolerance
        )

    @property
    def series(self) -> tuple[Series, ...]:
        """Every image of the file (index, name, level-0 shape, levels); see ``series_index``.

        Formats without several images list one series: this slide.
        """
        found: tuple[Series, ...] | None = getattr(self._reader, "series", None)
        if found is None:
            return (Series(index=0, name=self.name, shape=self.shape, levels=len(self.levels)),)
        return found

    @property
    def series_index(self) -> int:
        """Index in :attr:`series` of the image this slide reads."""
        return int(getattr(self._reader, "series_index", 0))

    def __repr__(self) -> str:
        h, w = self.shape
        return (
            f"<Slide {self.name!r} {self.format} {h}x{w}x{self.channels} {self.dtype} "
            f"levels={len(self.levels)} mpp={self.mpp}>"
        )

    # ---- coordinates ----------------------------------------------------------------
    def check_level(self, level: int) -> int:
        """Return ``level`` as an int after checking it names an existing level."""
        n = len(self.levels)
        if isinstance(level, bool) or not isinstance(level, int | np.integer):
            raise InvalidArgumentError(f"level must be an integer; got {level!r}")
        if not 0 <= level < n:
            raise InvalidArgumentError(
                f"level must be in the range [0, {n - 1}] for {self.name!r}; got {level}"
            )
        return int(level)

    def to_level(self, y: int, x: int, level: int) -> tuple[int, int]:
        """Convert a level-0 (y, x) to the nearest pixel of ``level``."""
        dy, dx = self.levels[level].downsample
        return round(y / dy), round(x / dx)

    def to_level0(self, y: int, x: int, level: int) -> tuple[int, int]:
        """Convert a (y, x) pixel of ``level`` to level-0 pixels (inverse of :meth:`to_level`)."""
        dy, dx = self.levels[level].downsample
        return round(y * dy), round(x * dx)

    # ---- pixels ---------------------------------------------------------------------
    def read(
        self, y: int, x: int, height: int, width: int, level: int = 0, *,
        fill: float | None = None, out: npt.NDArray[Any] | None = None,
        mpp: float | None = None, magnification: float | None = None,
    ) -> npt.NDArray[Any]:
        """Read a region, decoding only the tiles it touches.

        Parameters
        ----------
        y, x
            Top-left corner in level-0 pixels (may be negative with ``fill``).
        height, width
            Size in pixels of ``level``.
        level
            Pyramid level to read from (0 = full resolution).
        fill
            Value of pixels outside the level. ``None`` (default): a region
            that does not lie wholly inside the level is an error.
        out
            Optional (height, width, channels) array of the slide's dtype to
            fill: a loop of reads that reuses one buffer skips the cost of
            touching fresh memory (about a third of a 256² JPEG read here).
        mpp, magnification
            Instead of ``level``: the pixel size (µm) or objective power of the
            result; ``height`` and ``width`` then count pixels of that size. A
            level within 2 % is read as it is; otherwise ``round(height · f)``
            × ``round(width · f)`` pixels of the coarsest finer level are read
            and area-averaged to ``height`` × ``width`` (exact f × f block
            means, rounded half to even, for an integer factor f; see
            :func:`gigapatch.kernels.area_resample`).

        Returns
        -------
        numpy.ndarray
            (height, width, channels) array of the slide's dtype.

        Raises
        ------
        RegionError
            The region leaves the level and ``fill`` is ``None``.
        """
        y, x = check_coordinate("y", y), check_coordinate("x", x)
        if fill is not None:
            fill = check_fill(fill, self.dtype, owner=repr(self.name))
        if mpp is not None or magnification is not None:
            return self._read_resampled(y, x, height, width, level, fill, out, mpp, magnification)
        level, height, width = self._check_region(level, height, width)
        ly, lx = self.to_level(y, x, level)
        lh, lw = self.levels[level].shape
        inside = ly >= 0 and lx >= 0 and ly + height <= lh and lx + width <= lw
        if not inside and fill is None:
            raise RegionError(
                f"region y={y}, x={x}, height={height}, width={width} at level {level} lies "
                f"outside {self.name!r} (level {level} is {lh}x{lw} pixels); pass fill= to pad"
            )
        out = self._output(out, (height, width, self.channels))
        if inside:
            self._reader.read_level(level, ly, lx, out)
            return out
        out[...] = fill
        ya, yb = max(ly, 0), min(ly + height, lh)
        xa, xb = max(lx, 0), min(lx + width, lw)
        if ya < yb and xa < xb:
            part = np.empty((yb - ya, xb - xa, self.channels), self.dtype)
            self._reader.read_level(level, ya, xa, part)
            out[ya - ly : yb - ly, xa - lx : xb - lx] = part
        return out

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int], *,
        as_rgba: bool = False,
    ) -> npt.NDArray[np.uint8]:
        """OpenSlide's ``read_region``: (x, y) level-0 location, (width, height) at ``level``.

        The same pixels as ``openslide.OpenSlide.read_region(location, level,
        size).convert("RGB")``, as a (height, width, 3) uint8 array: outside
        the level they are black. ``as_rgba=True`` adds an alpha channel, 255
        inside the level and 0 outside. For code ported from OpenSlide; new
        code reads (y, x) with :meth:`read`. See
        :func:`gigapatch.sources.region.read_region`.
        """
        return openslide_region(self, location, level, size, as_rgba=as_rgba)

    def _read_resampled(
        self, y: int, x: int, height: int, width: int, level: int, fill: float | None,
        out: npt.NDArray[Any] | None, mpp: float | None, magnification: float | None,
    ) -> npt.NDArray[Any]:
        if level != 0:
            raise InvalidArgumentError(
                f"give level or mpp/magnification, not both; got level={level}"
            )
        _, height, width = self._check_region(0, height, width)
        res = self.resolution(mpp=mpp, magnification=magnification)
        if res.factor == 1.0:
            return self.read(y, x, height, width, res.level, fill=fill, out=out)
        from gigapatch.kernels.resample import area_resample  # pixel math lives in kernels

        out = self._output(out, (height, width, self.channels))
        rh, rw = res.read_size((height, width))
        if max(rh, rw) > MAX_SIDE:
            what = "mpp" if mpp is not None else "magnification"
            raise InvalidArgumentError(
                f"{what}={mpp if mpp is not None else magnification} needs {rh}x{rw} pixels of "
                f"level {res.level} for {height}x{width}; a read is at most {MAX_SIDE} a side")
        region = self.read(y, x, rh, rw, res.level, fill=fill)
        out[...] = area_resample(region[None], (height, width))[0]
        return out

    def read_regions(
        self, ys: npt.ArrayLike, xs: npt.ArrayLike, height: int, width: int, level: int = 0, *,
        fill: float | None = None, out: npt.NDArray[Any] | None = None,
        tiles: tuple[int, int] | None = None,
    ) -> npt.NDArray[Any]:
        """Read many regions of one size at once, decoding each touched tile once in all.

        The batch form of :meth:`read`, for patches: ``ys``, ``xs`` are level-0
        top-left corners; the result is (N, height, width, channels). Readers
        that can (TIFF) decode every tile the regions touch once and copy it into
        each region that needs it — a tile that is exactly one region decodes
        straight into its slot — so no intermediate region is allocated.

        Parameters
        ----------
        ys, xs
            (N,) top-left corners in level-0 pixels.
        height, width, level, fill
            As for :meth:`read`.
        out
            Optional (N, height, width, channels) array to fill (reused buffers
            avoid the cost of touching fresh memory).
        tiles
            ``(first, stop)``: read only the level's tiles whose row-major index
            (``row * tiles_across + column``) is in ``[first, stop)`` and leave
            the other pixels of ``out`` (required then) as they are, so that
            threads owning disjoint tile ranges fill one array together, each
            tile decoded once in all. Needs a reader that decodes by tile
            (:attr:`reads_tiles`) and regions inside the level.
        """
        level, height, width = self._check_region(level, height, width)
        ys, xs = check_coordinates("ys", ys), check_coordinates("xs", xs)
        if fill is not None:
            fill = check_fill(fill, self.dtype, owner=repr(self.name))
        if ys.shape != xs.shape:
            raise InvalidArgumentError(
                f"ys and xs must be 1-d of equal length; got shapes {ys.shape} and {xs.shape}"
            )
        if tiles is not None:
            tiles = check_tiles(self, tiles, out)
        out = self._output(out, (len(ys), height, width, self.channels))
        return read_batch(self, self._reader, ys, xs, height, width, level, fill, out, tiles)

    @property
    def reads_tiles(self) -> bool:
        """Whether :meth:`read_regions` can read a range of tiles (``tiles=``): TIFF sources."""
        return getattr(self._reader, "read_many", None) is not None

    def _check_region(self, level: int, height: int, width: int) -> tuple[int, int, int]:
        """``(level, height, width)`` as ints: an existing level and a positive size."""
        level = self.check_level(level)
        for arg, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise InvalidArgumentError(f"{arg} must be a positive integer; got {value!r}")
        return (level, check_int("height", height, maximum=MAX_SIDE),
                check_int("width", width, maximum=MAX_SIDE))

    def _output(self, out: npt.NDArray[Any] | None, shape: tuple[int, ...]) -> npt.NDArray[Any]:
        """``out`` after checking its shape and dtype, or a new array of the slide's dtype."""
        if out is None:
            return np.empty(shape, self.dtype)
        out = check_array("out", out)
        if out.shape != shape or out.dtype != self.dtype:
            raise InvalidArgumentError(
                f"out must have shape {shape} and dtype {self.dtype}; got {out.shape} {out.dtype}"
            )
        return out

    def level_for_mpp(self, mpp: float, *, tolerance: float = 0.1) -> int:
        """The level whose pixel size is ``mpp`` µm, within a relative ``tolerance``.

        Among levels whose mpp is within ``tolerance`` of the target, the
        coarsest one (fewest pixels) is chosen.

        Raises
        ------
        InvalidArgumentError
            The slide records no mpp, or no level is within the tolerance (the
            message lists the levels' mpp).
        """
        mpp = check_positive("mpp", mpp)
        tolerance = check_tolerance(tolerance, name="tolerance")
        if self.mpp is None:
            raise InvalidArgumentError(
                f"{self.name!r} does not record its pixel size (mpp); choose a level instead"
            )
        found = [
            k
            for k, lvl in enumerate(self.levels)
            if abs(self.mpp * lvl.downsample[1] - mpp) <= tolerance * mpp
        ]
        if not found:
            have = ", ".join(
                f"{k}: {self.mpp * lvl.downsample[1]:.4g}" for k, lvl in enumerate(self.levels)
            )
            raise InvalidArgumentError(
                f"no level of {self.name!r} has mpp within {tolerance:.0%} of {mpp:g} "
                f"(levels' mpp: {have})"
            )
        return found[-1]

    # ---- JPEG tiles as stored (tile pass-through) ------------------------------------
    def jpeg_problem(self, level: int) -> str | None:
        """Why the tiles of ``level`` cannot be handed out as standalone JPEG streams decoding
        to this slide's pixels (:meth:`jpeg_tiles`); ``None`` when they can.

        Only TIFF files read with tifffile hand out their tiles' bytes.
        """
        level = self.check_level(level)
        problem = getattr(self._reader, "jpeg_problem", None)
        if problem is None:
            return (f"{self.name!r} is a {self.format} source, not a TIFF of JPEG tiles read "
                    "with tifffile")
        found: str | None = problem(level)
        return found

    def jpeg_tiles(self, level: int, indices: Sequence[int]) -> list[bytes | None]:
        """The JPEG streams of tiles ``indices`` (row × tiles across + column) of ``level``,
        as stored, never decoded: each a complete stream (shared ``JPEGTables`` and a colour
        marker spliced in where the file leaves them out) that decodes to exactly the pixels
        :meth:`read` gives; ``None`` for a sparse tile (zeros).

        Raises
        ------
        SlideError
            The level's tiles are not such streams (:meth:`jpeg_problem` says why).
        CorruptTileError
            A tile's bytes are missing or are not a complete JPEG stream.
        """
        level = self.check_level(level)
        reader = getattr(self._reader, "jpeg_tiles", None)
        if reader is None:
            raise SlideError(f"{self.name!r}: {self.jpeg_problem(level)}")
        tiles: list[bytes | None] = reader(level, indices)
        return tiles

    def close(self) -> None:
        """Close the underlying file; the slide reopens it on the next read."""
        self._reader.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- pickling: path and options, never handles ----------------------------------
    def __reduce__(self) -> Reopen:
        return self._reopen
