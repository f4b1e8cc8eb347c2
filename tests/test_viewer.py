"""Viewer pages (star.viewer): subtitles, the page's content and escaping, `star viewer` from a workflow run's files,
and the page driven in a real browser (Chromium through Playwright; skipped with the reason when either is missing).
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from star.cli import main
from star.viewer import HalfView, page, tick_step, vtt_text, write_page
from tests.videos import write_video

CAPTIONS = [{"seconds": 4, "label": "corner", "comment": "A corner for [TEAM].", "confidence": 0.91},
            {"seconds": 20, "label": "goal", "comment": "<b>Goal</b> & [PLAYER] celebrates", "confidence": 0.75}]
TRUTH = [{"seconds": 5, "label": "corner", "comment": "Corner kick taken by [PLAYER]."}]


def test_webvtt_cues_in_time_order_end_before_the_next():
    text = vtt_text([{"seconds": 3725, "comment": "late"}, {"seconds": 1, "comment": "two\nlines"},
                     {"seconds": 3, "comment": "soon"}])
    assert text.startswith("WEBVTT\n\n")
    assert "1\n00:00:01.000 --> 00:00:03.000\ntwo lines\n" in text
    assert "3\n01:02:05.000 --> 01:02:10.000\nlate\n" in text


def test_ticks_stay_readable_at_any_length():
    assert tick_step(60) == 5 and tick_step(300) == 30 and tick_step(2700) == 300


def test_page_holds_both_halves_a_legend_confidence_and_escaped_text():
    views = [HalfView(1, 30, CAPTIONS, TRUTH, [0.1] * 30), HalfView(2, 30, [], [])]
    text = page("game <1>", views)
    assert text.count('<section class="half"') == 2 and 'class="legend"' in text
    assert "<b>Goal" not in text and "&lt;b&gt;Goal&lt;/b&gt; &amp; [PLAYER]" in text
    assert "game &lt;1&gt;" in text and '<svg class="confidence"' in text
    assert 'class="tick"' in text and ">00:25<" in text
    assert "http" not in text and "<link" not in text   # nothing from the network


def test_star_viewer_builds_a_game_page_from_workflow_files(tmp_path):
    game = tmp_path / "league/season/game"
    game.mkdir(parents=True)
    (game / "Labels-caption.json").write_text(json.dumps({"annotations": [
        {"gameTime": "1 - 00:05", "label": "corner", "position": "5000", "anonymized": "Corner for [TEAM].",
         "visibility": "visible"},
        {"gameTime": "2 - 00:12", "label": "soccer-ball", "position": "12000", "anonymized": "Goal by [PLAYER].",
         "visibility": "visible"}]}))
    predictions = tmp_path / "results_dense_captioning.json"
    predictions.write_text(json.dumps({"UrlLocal": "league/season/game", "predictions": [
        {"gameTime": "1 - 00:04", "label": "corner", "comment": "A corner.", "confidence": "0.9",
         "half": "1", "position": "4000"},
        {"gameTime": "2 - 00:11", "label": "goal", "comment": "A goal!", "confidence": "0.8", "half": "2",
         "position": "11000"}]}))
    spots = []
    for half in (1, 2):
        path = tmp_path / "spots" / f"{half}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"spots": [], "confidence": [0.2] * 40}))
        spots.append(str(path))
    write_video(game / "1_224p.mkv", [i / 2 for i in range(4)])
    out = tmp_path / "viewer" / "game.html"
    assert main(["viewer", "--predictions", str(predictions), "--labels", str(game / "Labels-caption.json"),
                 "--spots", *spots, "--video-dir", str(game), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count('<section class="half"') == 2
    assert 'src="../league/season/game/1_224p.mkv"' in text and "No video for this half" in text   # half 2
    assert "A corner." in text and "Goal by [PLAYER]." in text and "<title>league/season/game</title>" in text


# ---- in a real browser -------------------------------------------------------------------------------------------

def chromium() -> str | None:
    for name in (os.environ.get("STAR_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs `pip install playwright`")
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium installed (apt-get install chromium, or STAR_CHROMIUM=/path/to/chrome)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_the_page_plays_seeks_subtitles_and_highlights_in_chromium(browser, tmp_path):
    videos = tmp_path / "game"
    videos.mkdir()
    for half in (1, 2):   # 30 s halves at 2 frames a second
        write_video(videos / f"{half}_224p.mkv", [i / 2 for i in range(60)])
    out = tmp_path / "viewer" / "page.html"
    views = [HalfView(1, 30, CAPTIONS, TRUTH, [0.1 + 0.02 * i for i in range(30)]),
             HalfView(2, 30, [{"seconds": 9, "label": "shot", "comment": "Second-half shot."}], [])]
    write_page(out, "test game", views, {1: videos / "1_224p.mkv", 2: videos / "2_224p.mkv"})

    tab = browser.new_page()
    errors = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(Path(out).as_uri())
    first = tab.locator("section.half").first
    first.locator("video").evaluate("v => new Promise(r => v.readyState >= 1 ? r() : v.onloadedmetadata = r)")
    assert first.locator("video").evaluate("v => v.duration") == pytest.approx(30, abs=1)
    # WebVTT subtitles on each video, showing
    tracks = tab.evaluate("""() => Array.from(document.querySelectorAll('video')).map(v => {
        const t = v.textTracks[0]; return [t.kind, t.mode, Array.from(t.cues).map(c => [c.startTime, c.text])]; })""")
    assert tracks[0] == ["subtitles", "showing",
                         [[4, "A corner for [TEAM]."], [20, "<b>Goal</b> & [PLAYER] celebrates"]]]
    assert tracks[1][2] == [[9, "Second-half shot."]]
    # a click on a caption seeks its half's video and highlights it (and only it)
    first.locator(".cap.pred").nth(1).click()
    tab.wait_for_function("() => Math.abs(document.querySelector('video').currentTime - 20) < 1")
    tab.wait_for_function("() => document.querySelectorAll('.cap.current').length >= 1")
    current = tab.locator(".cap.current")
    assert current.count() == 1 and "celebrates" in current.inner_text()
    assert tab.locator("section.half").nth(1).locator("video").evaluate("v => v.currentTime") == 0
    # legend, ticks and the confidence curve are drawn
    assert tab.locator(".legend span").count() == 4
    assert first.locator(".tick").count() == 7 and first.locator(".confidence polyline").is_visible()
    # predicted and ground truth side by side
    columns = first.locator(".column")
    left, right = columns.nth(0).bounding_box(), columns.nth(1).bounding_box()
    assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 5
    assert not errors
