"""The codec of a store's ``images``: a spec string parsed once, and the zarr codec chain it makes.

=================  ========================================================================
spec               ``images``' inner chunks (one patch each), before the chunk's ``crc32c``
=================  ========================================================================
``lz4``            ``bytes`` + Blosc lz4 (the default: lossless, fastest to write and read)
``zstd``           ``bytes`` + Zstandard level 1 (lossless)
``zstd-3``         ``bytes`` + Zstandard level 3 (lossless)
``none``           ``bytes`` alone
``jpeg[:Q]``       one baseline JPEG per patch at quality Q (1-100, default 90), 4:2:0 chroma
``jpeg:source``    the source tiles' own JPEG streams, copied (tile pass-through)
=================  ========================================================================

:func:`parse_codec` turns a spec string into a :class:`CodecSpec` (and checks it),
:func:`check_codec` checks it against the patches' dtype and channels, and
:func:`codec_chain` makes the array-to-bytes codec and the compressors of ``images``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec
from zarr.codecs import BytesCodec, Crc32cCodec

from gigapatch.errors import InvalidArgumentError
from gigapatch.store.format import CODECS
from gigapatch.store.jpegcodec import JPEG_QUALITY, JpegCodec, Quality

__all__ = ["CodecName", "CodecSpec", "check_codec", "codec_chain", "codec_of", "parse_codec"]

#: The names of the codecs of ``images`` (a spec adds ``:QUALITY`` or ``:source`` to ``jpeg``).
CodecName = Literal["lz4", "zstd", "zstd-3", "none", "jpeg"]
#: What a spec may be: its names, then the JPEG forms.
ALLOWED: Final = (
    f"{', '.join(get_args(CodecName))}, jpeg:QUALITY (QUALITY an integer from 1 to 100; "
    f"jpeg is jpeg:{JPEG_QUALITY}) or jpeg:source"
)


@dataclass(frozen=True)
class CodecSpec:
    """A parsed codec spec: its name and, for ``jpeg``, its quality.

    ``str(spec)`` is the canonical spec string (``jpeg`` reads ``jpeg:90``),
    what a store's attributes record and what :func:`parse_codec` reads back.

    Attributes
    ----------
    name
        One of :data:`CodecName`.
    quality
        For ``jpeg``: the JPEG quality (1-100), or ``"source"`` for the source
        tiles' own streams; None for the lossless codecs.
    """

    name: CodecName
    quality: Quality | None = None

    def __str__(self) -> str:
        return self.name if self.quality is None else f"{self.name}:{self.quality}"

    @property
    def jpeg(self) -> bool:
        """Whether patches are stored as JPEG streams (lossy)."""
        return self.name == "jpeg"

    @property
    def lossless(self) -> bool:
        """Whether a patch reads back exactly as written."""
        return not self.jpeg


def _bad(value: object) -> InvalidArgumentError:
    return InvalidArgumentError(f"codec must be one of {ALLOWED}; got {value!r}")


def parse_codec(value: str | CodecSpec) -> CodecSpec:
    """The :class:`CodecSpec` of a spec string (a :class:`CodecSpec` is returned as is).

    Raises
    ------
    InvalidArgumentError
        ``value`` is no codec spec: an unknown name, or a JPEG quality other
        than an integer from 1 to 100 or ``source``.

    Examples
    --------
    >>> parse_codec("jpeg")
    CodecSpec(name='jpeg', quality=90)
    >>> str(parse_codec("jpeg:95")), str(parse_codec("zstd-3"))
    ('jpeg:95', 'zstd-3')
    """
    if isinstance(value, CodecSpec):
        return value
    if not isinstance(value, str):
        raise _bad(value)
    name, sep, option = value.partition(":")
    if name != "jpeg":
        if sep or name not in CODECS:
            raise _bad(value)
        return CodecSpec(name)  # narrowed to a lossless name by the check above
    if not sep:
        return CodecSpec("jpeg", JPEG_QUALITY)
    if option == "source":
        return CodecSpec("jpeg", "source")
    if not (option.isascii() and option.isdigit()) or not 1 <= int(option) <= 100:
        raise _bad(value)
    return CodecSpec("jpeg", int(option))


def check_codec(spec: CodecSpec, dtype: npt.DTypeLike, channels: int) -> None:
    """Check that patches of ``dtype`` with ``channels`` channels can be stored with ``spec``.

    Raises
    ------
    InvalidArgumentError
        ``spec`` is a JPEG codec and the patches are not uint8 with 1 or 3 channels.
    """
    if spec.jpeg and (np.dtype(dtype) != np.uint8 or channels not in (1, 3)):
        raise InvalidArgumentError(
            f"codec {str(spec)!r} needs uint8 patches of 1 or 3 channels; got "
            f"{np.dtype(dtype)} patches of {channels} channel(s): use a lossless codec "
            f"({', '.join(CODECS)})"
        )


def codec_chain(spec: CodecSpec) -> tuple[ArrayBytesCodec, list[BytesBytesCodec]]:
    """The array-to-bytes codec and the compressors of the inner chunks of ``images``.

    The compressors end with ``crc32c``, as every chunk of format 2 does.
    """
    if spec.jpeg:
        assert spec.quality is not None  # parse_codec gives every jpeg spec a quality
        return JpegCodec(quality=spec.quality), [Crc32cCodec()]
    compressor = CODECS[spec.name]()  # type: ignore[index]  # a lossless name
    return BytesCodec(), [*([compressor] if compressor else []), Crc32cCodec()]


def codec_of(attrs: dict[str, Any]) -> CodecSpec | None:
    """The codec a store's attributes record, or None when it is not one this gigapatch knows."""
    try:
        return parse_codec(attrs.get("codec", "lz4"))
    except InvalidArgumentError:
        return None
