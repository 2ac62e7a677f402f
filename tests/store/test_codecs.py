"""Codec specs: parsed strictly, one canonical string each, checked against the patches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ZstdCodec

from gigapatch.errors import InvalidArgumentError
from gigapatch.store import CODECS, CodecSpec, JpegCodec, StoreSpec, parse_codec
from gigapatch.store.codecs import check_codec, codec_chain

ALLOWED = r"codec must be one of lz4, zstd, zstd-3, none, jpeg, jpeg:QUALITY \(QUALITY an integer"


@pytest.mark.parametrize(("spec", "name", "quality", "canonical"), [
    ("lz4", "lz4", None, "lz4"),
    ("zstd", "zstd", None, "zstd"),
    ("zstd-3", "zstd-3", None, "zstd-3"),
    ("none", "none", None, "none"),
    ("jpeg", "jpeg", 90, "jpeg:90"),
    ("jpeg:1", "jpeg", 1, "jpeg:1"),
    ("jpeg:100", "jpeg", 100, "jpeg:100"),
    ("jpeg:075", "jpeg", 75, "jpeg:75"),
    ("jpeg:source", "jpeg", "source", "jpeg:source"),
])
def test_specs_parse_to_their_name_and_quality(spec, name, quality, canonical):
    parsed = parse_codec(spec)
    assert (parsed.name, parsed.quality, str(parsed)) == (name, quality, canonical)
    assert parse_codec(parsed) is parsed
    assert parsed.lossless == (name != "jpeg")


@pytest.mark.parametrize("spec", [
    "jpeg:101", "jpeg:0", "jpeg:-5", "jpeg:abc", "jpeg:", "jpeg:9.5", "jpeg:90:1", "JPEG",
    "lz4:5", "zstd:3", "gzip", "", "jpeg:٩٠", 90, None,
])
def test_a_bad_spec_is_one_error_naming_codec_what_is_allowed_and_what_was_given(spec):
    with pytest.raises(InvalidArgumentError, match=ALLOWED + r".*; got " + repr(spec)
                       .replace("(", r"\(").replace(")", r"\)")):
        parse_codec(spec)


@given(st.sampled_from([*CODECS, "jpeg:source"]) | st.integers(1, 100).map(lambda q: f"jpeg:{q}"))
def test_a_canonical_spec_parses_back_to_itself(spec):
    assert str(parse_codec(spec)) == spec
    assert parse_codec(str(parse_codec(spec))) == parse_codec(spec)


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=12))  # no lone surrogates
def test_any_string_parses_or_raises_invalid_argument(text):
    try:
        spec = parse_codec(text)
    except InvalidArgumentError:
        return
    assert isinstance(spec, CodecSpec) and parse_codec(str(spec)) == spec


@pytest.mark.parametrize(("dtype", "channels"), [(np.uint16, 3), (np.float32, 1), (np.uint8, 4),
                                                 (np.uint8, 2)])
def test_jpeg_needs_uint8_patches_of_one_or_three_channels(dtype, channels):
    with pytest.raises(InvalidArgumentError, match=(
            r"codec 'jpeg:90' needs uint8 patches of 1 or 3 channels; got "
            rf"{np.dtype(dtype)} patches of {channels} channel\(s\)")):
        check_codec(parse_codec("jpeg"), dtype, channels)
    check_codec(parse_codec("zstd"), dtype, channels)  # lossless codecs take anything


def test_a_store_spec_checks_and_canonicalises_its_codec():
    def spec(codec, dtype=np.uint8, c=3):
        return StoreSpec(patch_shape=(4, 4, c), dtype=dtype, coords=np.zeros((1, 2)),
                         slide=[0], label=[0], sources=[], plan={}, codec=codec)

    assert spec("jpeg").codec == "jpeg:90"
    assert spec(parse_codec("jpeg:80")).codec == "jpeg:80"
    with pytest.raises(InvalidArgumentError, match=ALLOWED + r".*; got 'jpeg:101'"):
        spec("jpeg:101")
    with pytest.raises(InvalidArgumentError, match="needs uint8 patches"):
        spec("jpeg:source", np.uint16)


def test_each_spec_makes_its_chain_with_crc32c_last():
    serializer, compressors = codec_chain(parse_codec("jpeg:70"))
    assert serializer == JpegCodec(quality=70) and compressors == [Crc32cCodec()]
    assert codec_chain(parse_codec("jpeg:source"))[0] == JpegCodec(quality="source")
    assert codec_chain(parse_codec("none")) == (BytesCodec(), [Crc32cCodec()])
    serializer, (zstd, crc) = codec_chain(parse_codec("zstd-3"))
    assert isinstance(zstd, ZstdCodec) and zstd.level == 3 and isinstance(crc, Crc32cCodec)
    assert isinstance(codec_chain(parse_codec("lz4"))[1][0], BloscCodec)


@pytest.mark.parametrize("quality", [0, 101, True, "90", None])
def test_the_zarr_codec_refuses_a_bad_quality(quality):
    with pytest.raises(ValueError, match=r"gigapatch\.jpeg quality must be an integer from 1 to "
                       r"100 or 'source'"):
        JpegCodec(quality=quality)
    assert JpegCodec.from_dict({"name": "gigapatch.jpeg", "configuration": {"quality": 42}}) == \
        JpegCodec(quality=42)
