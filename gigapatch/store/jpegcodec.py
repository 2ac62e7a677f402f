"""A Zarr v3 codec storing each patch as one baseline JPEG: ``gigapatch.jpeg``.

It is an array-to-bytes codec (it takes the place of ``bytes`` in a chunk's
codec chain): a chunk of shape (1, h, w, C), uint8, C = 1 (grey) or 3 (RGB),
becomes one complete JPEG stream — start-of-image to end-of-image, with its
own quantization and Huffman tables — encoded by imagecodecs (libjpeg-turbo)
at the quality of the codec's configuration with 4:2:0 chroma subsampling
(4:4:4 costs ~18 % more bytes for ~0.8 dB PSNR on tissue at q90:
docs/codecs.md). A store's chain is ``[gigapatch.jpeg, crc32c]`` like every
chunk of format 2, so a chunk whose bytes changed fails its checksum before it
is decoded.

Decoding is strict (TurboJPEG's stop-on-warning, through
:class:`~gigapatch.sources.jpeg.JpegTiles`, as for the tiles of a slide): a
stream libjpeg warns about, or one that decodes to another size than the
chunk's, raises — never a patch of zeros or noise.

The configuration holds ``quality``: an integer 1-100, or ``"source"`` for
chunks that are a source's own JPEG tiles copied (tile pass-through): those
decode the same way, but cannot be encoded from pixels.

Importing :mod:`gigapatch` registers the codec with zarr, so that
``zarr.open(store)["images"][k]`` decodes a JPEG store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import imagecodecs
import numpy as np
import numpy.typing as npt
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import JSON, parse_named_configuration
from zarr.registry import register_codec

from gigapatch.sources.jpeg import JpegTiles

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.chunk_grids import ChunkGrid
    from zarr.core.dtype.wrapper import TBaseDType, TBaseScalar, ZDType

__all__ = ["JPEG_CODEC_NAME", "JPEG_QUALITY", "JpegCodec", "Quality", "decode_jpeg",
           "encode_jpeg"]

#: The codec's name in a store's ``zarr.json``.
JPEG_CODEC_NAME: Final = "gigapatch.jpeg"
#: The quality of ``jpeg`` without one: 40-41 dB PSNR on tissue, ~12x smaller than lz4.
JPEG_QUALITY: Final = 90
#: JPEG chroma subsampling of every patch encoded (libjpeg's default, fixed here).
SUBSAMPLING: Final = "420"
#: A JPEG quality (1-100), or ``"source"``: the chunks are the source's own tiles.
Quality = int | Literal["source"]

_DECODERS: Final = {c: JpegTiles(None, force_rgb=False, samples=c) for c in (1, 3)}


def check_quality(quality: object) -> Quality:
    """``quality`` if it is an integer from 1 to 100 or ``"source"``, else ValueError."""
    if quality == "source" or (
        isinstance(quality, int) and not isinstance(quality, bool) and 1 <= quality <= 100
    ):
        return quality
    raise ValueError(
        f"{JPEG_CODEC_NAME} quality must be an integer from 1 to 100 or 'source'; got {quality!r}"
    )


def encode_jpeg(patch: npt.NDArray[Any], quality: Quality) -> bytes:
    """One (h, w, C) uint8 patch (C = 1 or 3) as a complete baseline JPEG stream.

    Raises
    ------
    ValueError
        ``quality`` is ``"source"`` (such chunks are copied from the source,
        never encoded), or the patch is not (h, w, 1 or 3) uint8.
    """
    if quality == "source":
        raise ValueError(
            "a jpeg:source store holds the source's own JPEG tiles, copied: its patches are "
            "never encoded from pixels"
        )
    if patch.dtype != np.uint8 or patch.ndim != 3 or patch.shape[2] not in (1, 3):
        raise ValueError(
            f"{JPEG_CODEC_NAME} encodes (h, w, 1 or 3) uint8 patches; got {patch.shape} "
            f"{patch.dtype}"
        )
    data = patch[:, :, 0] if patch.shape[2] == 1 else patch
    return bytes(imagecodecs.jpeg8_encode(data, level=quality, subsampling=SUBSAMPLING))


def decode_jpeg(data: bytes | memoryview, out: npt.NDArray[Any]) -> None:
    """Decode one complete JPEG stream into ``out``, an (h, w, C) C-contiguous uint8 patch.

    Raises
    ------
    gigapatch.sources.jpeg.TileDecodeError
        The bytes are not a complete, valid JPEG stream (libjpeg failed or
        warned), or it decodes to another size than ``out``'s.
    """
    _DECODERS[out.shape[2]].decode(bytes(data), out=out)


def _patch_shape(chunk_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(h, w, C) of a chunk (1, ..., 1, h, w, C) of one patch."""
    if len(chunk_shape) < 3 or int(np.prod(chunk_shape[:-3])) != 1:
        raise ValueError(
            f"{JPEG_CODEC_NAME} encodes chunks of one patch, (1, h, w, C); got {chunk_shape}"
        )
    h, w, c = chunk_shape[-3:]
    return h, w, c


@dataclass(frozen=True)
class JpegCodec(ArrayBytesCodec):
    """Zarr v3 array-to-bytes codec: a chunk of one uint8 patch as one baseline JPEG.

    Parameters
    ----------
    quality
        JPEG quality, 1-100 (default 90), or ``"source"``: the chunks are the
        source's JPEG tiles, copied in (decoded, never encoded).
    """

    is_fixed_size = False

    quality: Quality

    def __init__(self, *, quality: Quality = JPEG_QUALITY) -> None:
        object.__setattr__(self, "quality", check_quality(quality))

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        _, configuration = parse_named_configuration(data, JPEG_CODEC_NAME)
        return cls(**configuration)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, JSON]:
        return {"name": JPEG_CODEC_NAME, "configuration": {"quality": self.quality}}

    def validate(
        self, *, shape: tuple[int, ...], dtype: ZDType[TBaseDType, TBaseScalar],
        chunk_grid: ChunkGrid,
    ) -> None:
        native = dtype.to_native_dtype()
        if native != np.uint8 or len(shape) < 3 or shape[-1] not in (1, 3):
            raise ValueError(
                f"{JPEG_CODEC_NAME} stores uint8 arrays (..., h, w, C) with C 1 or 3; got "
                f"shape {shape} of {native}"
            )

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        out = np.empty(chunk_spec.shape, np.uint8)
        decode_jpeg(chunk_bytes.to_bytes(), out.reshape(_patch_shape(chunk_spec.shape)))
        decoded: Any = out  # an ndarray is array-like
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(decoded)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return self._decode_sync(chunk_bytes, chunk_spec)

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        patch = np.ascontiguousarray(chunk_array.as_numpy_array()).reshape(
            _patch_shape(chunk_spec.shape))
        blob = encode_jpeg(patch, self.quality)
        return chunk_spec.prototype.buffer.from_bytes(blob)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return self._encode_sync(chunk_array, chunk_spec)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError  # variable size, like any compressor


register_codec(JPEG_CODEC_NAME, JpegCodec)
