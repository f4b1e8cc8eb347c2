import numpy as np
import pytest

from star import config
from star.data.cache import cache_attrs, open_cache
from star.video.decode import VideoError, decode_half, iter_frames
from tests.videos import frame_code, write_video


def codes(path, fps):
    return [(t, frame_code(f)) for t, f in iter_frames(path, fps)]


def test_picks_the_frame_on_screen_at_each_second(tmp_path):
    video = write_video(tmp_path / "v.mkv", [k / 25 for k in range(25 * 4)])  # 4 s at 25 fps
    got = codes(video, 1.0)
    assert [t for t, _ in got] == [0, 1, 2, 3]
    assert [c for _, c in got] == [0, 25, 50, 75]


def test_start_offset_is_video_time_zero(tmp_path):
    # a container whose first frame is stamped 0.46 s: video time starts there, as a player shows it
    video = write_video(tmp_path / "v.mkv", [0.46 + k / 25 for k in range(25 * 3)])
    assert [c for _, c in codes(video, 1.0)] == [0, 25, 50]


def test_variable_frame_rate_holds_the_last_frame_shown(tmp_path):
    times = [0.0, 0.3, 0.9, 1.7, 2.05, 2.95, 3.0, 3.5]
    video = write_video(tmp_path / "v.mkv", times)
    # t=0 -> frame 0; t=1 -> frame 2 (0.9); t=2 -> frame 3 (1.7); t=3 -> frame 6 (3.0 exactly)
    assert [c for _, c in codes(video, 1.0)] == [0, 2, 3, 6]
    # 2 fps: t=0.5 -> frame 1 (0.3), t=1.5 -> frame 2, t=2.5 -> frame 4, t=3.5 -> frame 7
    assert [c for _, c in codes(video, 2.0)] == [0, 1, 2, 2, 3, 4, 6, 7]


def test_decode_half_writes_cache_with_provenance(tmp_path):
    video = write_video(tmp_path / "1_224p.mkv", [k / 5 for k in range(5 * 6)], width=80, height=64)
    cfg = config.section("decode", {"fps": 1, "height": 32})
    out = decode_half(video, tmp_path / "frames.h5", "g1", 1, cfg)
    with open_cache(out, "frames", fps=1.0, game="g1", half=1) as h5:
        assert h5["frames"].shape == (6, 32, 40, 3)
        assert list(h5["times"][:]) == [0, 1, 2, 3, 4, 5]
    attrs = cache_attrs(out)
    assert attrs["provenance"]["stage"] == "video_decode"
    assert str(video) in attrs["provenance"]["sources"]
    assert attrs["provenance"]["code_hash"]


def test_truncated_video_is_named_and_leaves_no_output(tmp_path):
    video = write_video(tmp_path / "v.mkv", [k / 25 for k in range(25 * 20)], width=160, height=96)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 3])
    out = tmp_path / "frames.h5"
    with pytest.raises(VideoError, match="v.mkv"):
        decode_half(video, out, "g", 1, config.section("decode"))
    assert not out.exists() and not list(tmp_path.glob(".frames.h5*"))


def test_garbage_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(VideoError, match="bad.mkv"):
        list(iter_frames(bad, 1.0))
    with pytest.raises(VideoError, match="does not exist"):
        list(iter_frames(tmp_path / "none.mkv", 1.0))
