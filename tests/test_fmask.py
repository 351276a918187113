"""Fmask decoding (four documented tables) and the union with a cloud probability."""

from __future__ import annotations

import numpy as np
import pytest

from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, SNOW, WATER
from stacmask.errors import DecodeError
from stacmask.methods.fmask import FMASK_ENCODINGS, decode_fmask, fuse


def row(values: list[int], dtype: type = np.uint8) -> np.ndarray:
    return np.array([values], dtype=dtype)


def test_categorical_is_identity_and_rejects_unknown_values() -> None:
    codes = [CLEAR, WATER, SHADOW, SNOW, CLOUD, NODATA]
    assert decode_fmask(row(codes)).tolist() == [codes]
    with pytest.raises(DecodeError, match=r"\[5, 7\]"):
        decode_fmask(row([0, 5, 7, 4]))


def test_python_fmask_codes() -> None:
    # python-fmask: 0 null, 1 clear, 2 cloud, 3 shadow, 4 snow, 5 water
    got = decode_fmask(row([0, 1, 2, 3, 4, 5]), "python-fmask")
    assert got.tolist() == [[NODATA, CLEAR, CLOUD, SHADOW, SNOW, WATER]]
    with pytest.raises(DecodeError):
        decode_fmask(row([6]), "python-fmask")


def hls(*, cirrus=0, cloud=0, adjacent=0, shadow=0, snow=0, water=0, aerosol=0) -> int:  # type: ignore[no-untyped-def]
    return cirrus | cloud << 1 | adjacent << 2 | shadow << 3 | snow << 4 | water << 5 | aerosol << 6


def test_hls_bits() -> None:
    cases = [
        (hls(), CLEAR),
        (hls(aerosol=1), CLEAR),  # 64: clear, low aerosol
        (hls(aerosol=3, cirrus=1), CLEAR),  # cirrus bit is reserved, aerosol ignored
        (hls(cloud=1), CLOUD),
        (hls(adjacent=1), CLEAR),
        (hls(shadow=1), SHADOW),
        (hls(shadow=1, cloud=1), SHADOW),
        (hls(snow=1), SNOW),
        (hls(water=1), WATER),
        (hls(water=1, snow=1), SNOW),
        (hls(water=1, cloud=1), CLOUD),
        (255, NODATA),
    ]
    values = row([v for v, _ in cases])
    assert decode_fmask(values, "hls").tolist() == [[c for _, c in cases]]
    with_buffer = decode_fmask(row([hls(adjacent=1)]), "hls", adjacent_as_cloud=True)
    assert with_buffer.tolist() == [[CLOUD]]
    with pytest.raises(DecodeError, match="uint8"):
        decode_fmask(row([256], np.int16), "hls")


def force(*, nodata=0, state=0, shadow=0, snow=0, water=0, high=0) -> int:  # type: ignore[no-untyped-def]
    return nodata | state << 1 | shadow << 3 | snow << 4 | water << 5 | high << 8


def test_force_qai_bits() -> None:
    cases = [
        (force(nodata=1), NODATA),
        (force(), CLEAR),
        (force(high=1), CLEAR),  # subzero flag etc. ignored
        (force(state=1), CLEAR),  # less confident (buffer) off by default
        (force(state=2), CLOUD),
        (force(state=3), CLOUD),  # cirrus
        (force(shadow=1), SHADOW),
        (force(snow=1), SNOW),
        (force(water=1), WATER),
        (force(state=2, shadow=1), SHADOW),
        (force(nodata=1, state=2), NODATA),
    ]
    values = row([v for v, _ in cases], np.int16)
    assert decode_fmask(values, "force").tolist() == [[c for _, c in cases]]
    assert (
        decode_fmask(row([force(state=1)], np.int16), "force", adjacent_as_cloud=True)[0, 0]
        == CLOUD
    )


def test_decode_rejects_floats_shapes_and_unknown_encodings() -> None:
    with pytest.raises(DecodeError, match="integers"):
        decode_fmask(np.zeros((2, 2), np.float32))  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="2-D"):
        decode_fmask(np.zeros((2,), np.uint8))
    with pytest.raises(DecodeError, match="unknown Fmask encoding"):
        decode_fmask(row([0]), "fmask5")  # type: ignore[arg-type]
    assert set(FMASK_ENCODINGS) == {"categorical", "python-fmask", "hls", "force"}


def test_fuse_is_a_union_with_the_project_order() -> None:
    fmask = row(
        [CLEAR, CLEAR, CLOUD, CLOUD, SHADOW, SHADOW, SNOW, SNOW, WATER, WATER, NODATA, CLEAR]
    )
    prob = np.array([[0.1, 0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 0.9, 0.9, np.nan]], np.float32)
    got = fuse(fmask=fmask, probability=prob, threshold=0.4)
    assert got.tolist() == [
        [CLEAR, CLOUD, CLOUD, CLOUD, SHADOW, SHADOW, SNOW, CLOUD, WATER, CLOUD, NODATA, CLEAR]
    ]


def test_fuse_threshold_is_strict_and_inputs_combine() -> None:
    prob = np.array([[0.39, 0.4, 0.41, 0.0]], np.float32)
    assert fuse(probability=prob, threshold=0.4).tolist() == [[CLEAR, CLEAR, CLOUD, CLEAR]]
    own = np.array([[False, False, False, True]])
    geometric = np.array([[True, False, False, False]])
    valid = np.array([[True, True, True, False]])
    got = fuse(valid, probability=prob, cloud=own, shadow=geometric)
    assert got.tolist() == [[SHADOW, CLEAR, CLOUD, NODATA]]
    # Fmask shadow and a geometric shadow are united too.
    fmask = row([SHADOW, CLEAR, CLEAR, CLEAR])
    assert fuse(fmask=fmask, shadow=geometric[:, ::-1]).tolist() == [[SHADOW, CLEAR, CLEAR, SHADOW]]


def test_fuse_rejects_bad_inputs() -> None:
    with pytest.raises(DecodeError, match="at least one"):
        fuse(shadow=np.zeros((2, 2), bool))
    with pytest.raises(DecodeError, match="shape"):
        fuse(fmask=np.zeros((2, 2), np.uint8), probability=np.zeros((3, 2), np.float32))
    with pytest.raises(DecodeError, match=r"0\.\.1"):
        fuse(probability=np.zeros((2, 2), np.float32), threshold=40)
