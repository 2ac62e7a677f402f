"""PSNR and the quality line of a lossy store."""

from __future__ import annotations

import numpy as np
import pytest

from gigapatch.store.quality import psnr_db, quality_line


def test_psnr_pools_every_value_and_is_none_for_identical_patches():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    assert psnr_db(a, b) is None
    b[0, 0, 0, 0] = 255  # one value off by the peak: MSE = 255² / 96
    assert psnr_db(a, b) == pytest.approx(10 * np.log10(96))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr_db(a, b[:1])


@pytest.mark.parametrize(("attrs", "line"), [
    ({"codec": "lz4"}, None),
    ({"codec": "jpeg:90"}, "JPEG quality 90, 4:2:0; PSNR not measured (the run did not finish)"),
    ({"codec": "jpeg:95", "quality": 95, "psnr_db": 43.51, "psnr_sample": 64},
     "JPEG quality 95, 4:2:0; PSNR 43.5 dB against the uncompressed patches (64 sampled)"),
    ({"codec": "jpeg:source", "quality": "source", "psnr_db": None, "psnr_sample": 8},
     "the source's own JPEG tiles, copied; identical to the uncompressed patches (8 sampled)"),
])
def test_the_quality_line_says_codec_quality_and_psnr(attrs, line):
    assert quality_line(attrs) == line
