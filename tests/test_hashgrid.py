"""The hash grid against a direct, point-by-point transcription of tiny-cuda-nn's algorithm."""

import math

import numpy as np
import pytest
import torch

from star.models.hashgrid import HashGridEncoding, PositionEncoder, level_layout, normalize_pitch, tcnn


def reference_encode(points: np.ndarray, table: np.ndarray, n_levels, log2_table, base_resolution, b):
    """One point, one level, one corner at a time, in uint32 arithmetic as the CUDA kernel does it."""
    n_features = table.shape[1]
    out = np.zeros((len(points), n_levels * n_features), dtype=np.float64)
    offset = 0
    for level in range(n_levels):
        scale = np.float32(np.exp2(np.float32(level) * np.float32(math.log2(np.float32(b))))
                           * np.float32(base_resolution) - np.float32(1))
        res = int(math.ceil(scale)) + 1
        rows = min(((res * res + 7) // 8) * 8, 2**log2_table)
        for i, point in enumerate(points):
            cell, frac = [], []
            for d in range(2):
                pos = np.float32(float(point[d]) * float(scale) + 0.5)  # fmaf: one rounding
                floor = np.floor(pos)
                cell.append(int(floor) & 0xFFFFFFFF)
                frac.append(float(pos - floor))
            for corner in range(4):
                weight, vertex = 1.0, []
                for d in range(2):
                    bit = (corner >> d) & 1
                    weight *= frac[d] if bit else 1 - frac[d]
                    vertex.append((cell[d] + bit) & 0xFFFFFFFF)
                if res * res <= rows:
                    index = (vertex[0] + vertex[1] * res) & 0xFFFFFFFF
                else:
                    index = (vertex[0] * 1 & 0xFFFFFFFF) ^ (vertex[1] * 2654435761 & 0xFFFFFFFF)
                row = offset + index % rows
                out[i, level * n_features:(level + 1) * n_features] += weight * table[row]
        offset += rows
    return out


def test_layout_matches_the_formulas():
    levels = level_layout(16, 19, 16, 1.447)
    assert [lv["resolution"] for lv in levels[:3]] == [16, 24, 34]  # ceil(16 * 1.447^l - 1) + 1
    assert levels[0]["rows"] == 256 and not levels[0]["hashed"]
    assert all(lv["rows"] == 2**19 and lv["hashed"] for lv in levels if lv["resolution"] ** 2 > 2**19)
    assert sum(lv["hashed"] for lv in levels) == 5  # levels 11..15 (res > 724) are hashed
    assert all(lv["rows"] % 8 == 0 for lv in levels)
    assert [lv["offset"] for lv in levels[1:]] == list(np.cumsum([lv["rows"] for lv in levels[:-1]]))


@pytest.mark.parametrize("log2_table", [8, 12])
def test_torch_grid_equals_the_loop_transcription(log2_table):
    # small tables so that both dense and hashed levels occur at small resolutions
    torch.manual_seed(0)
    grid = HashGridEncoding(n_levels=8, features_per_level=2, log2_table=log2_table, base_resolution=4,
                            per_level_scale=1.9, backend="torch")
    assert any(lv["hashed"] for lv in grid.levels) and not all(lv["hashed"] for lv in grid.levels)
    with torch.no_grad():
        grid.table.normal_()  # the U(-1e-4, 1e-4) init would hide indexing errors in rounding noise
    points = torch.cat([torch.rand(200, 2), torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.25]])])
    expected = reference_encode(points.numpy(), grid.table.detach().numpy().astype(np.float64), 8, log2_table, 4,
                                1.9)
    np.testing.assert_allclose(grid(points).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_init_range_gradients_and_position_encoder():
    torch.manual_seed(0)
    encoder = PositionEncoder(out_dim=24, n_levels=16, log2_table=14, backend="torch")
    table = encoder.grid.table
    assert table.abs().max() <= 1e-4 and table.shape[1] == 2
    assert all(m.bias is None for m in encoder.mlp if isinstance(m, torch.nn.Linear))
    xy = torch.tensor([[[-52.5, -34.0], [0.0, 0.0], [30.0, 10.0]]])  # [1, 3, 2] metres
    out = encoder(xy)
    assert out.shape == (1, 3, 24)
    out.square().sum().backward()
    touched = table.grad.abs().sum(1) > 0
    assert 0 < touched.sum() <= 3 * 16 * 4  # only the corners of the 3 points, on every level
    assert encoder.mlp[0].weight.grad.abs().sum() > 0


def test_no_player_at_all_encodes_to_an_empty_batch():
    """A half that is never calibrated has no player in any frame: the encoders must pass zero rows through."""
    grid = HashGridEncoding(n_levels=4, log2_table=10, backend="torch")
    assert grid(torch.zeros(0, 2)).shape == (0, grid.out_dim)
    encoder = PositionEncoder(out_dim=24, n_levels=4, log2_table=10, backend="torch")
    assert encoder(torch.zeros(0, 2)).shape == (0, 24)


def test_normalize_pitch_maps_the_pitch_inside_the_unit_square():
    corners = torch.tensor([[-52.5, -34.0], [52.5, 34.0], [0.0, 0.0], [200.0, -200.0]])
    unit = normalize_pitch(corners)
    assert (unit[:2] > 0).all() and (unit[:2] < 1).all()
    assert torch.allclose(unit[2], torch.tensor([0.5, 0.5]))
    assert unit[3].tolist() == [1.0, 0.0]  # far off the pitch: clamped


@pytest.mark.skipif(tcnn is None or not torch.cuda.is_available(), reason="needs tinycudann and CUDA")
def test_tcnn_backend_matches_torch():
    torch.manual_seed(0)
    grid = HashGridEncoding(n_levels=16, log2_table=14, backend="torch").cuda()
    with torch.no_grad():
        grid.table.normal_()
    points = torch.rand(1000, 2, device="cuda")
    reference = grid(points)
    grid.backend = "tcnn"
    torch.testing.assert_close(grid(points), reference, rtol=1e-4, atol=1e-4)
