"""Viewer pages: a game's (or one half's) captions for people, as one self-contained HTML page.

    star viewer --predictions .../results_dense_captioning.json --labels <game>/Labels-caption.json \\
        --spots .../spots/<game>/1.json .../spots/<game>/2.json --video-dir <game> --out results/viewer/x.html

Per half: the video with the predicted captions as WebVTT subtitles, a timeline with time ticks, the spotter's
confidence of every second (when spots are given) and a mark per caption (predicted above, ground truth below,
a legend says which), and the predicted captions beside the ground truth, the caption on screen highlighted; a
click on a caption or a mark seeks the video. The page needs no network: CSS, script and data are inline, every
text is escaped, and each <video> names its file by a path relative to the page, so seeking works while the page
stays in the same tree as the videos. `star caption` writes the same page for one half.

A caption is a dict with `seconds` (video time in the half), `label` and `comment` (the official prediction
fields), optionally `confidence`.
"""

from __future__ import annotations

import argparse
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from star.data.jsonio import read_json_object
from star.data.soccernet import load_labels, parse_game_time
from star.errors import InputError
from star.provenance import write_text_atomic

SHOW_S = 5.0   # seconds a subtitle stays on screen (less when the next caption comes sooner)


@dataclass
class HalfView:
    half: int
    length_s: float
    captions: list[dict]
    truth: list[dict] | None = None          # None: no labels (the column is left out)
    confidence: list[float] | None = None    # the spotter's confidence of every second
    video: str | None = None                 # the video's URL relative to the page
    extra: dict = field(default_factory=dict)


# ---- subtitles ---------------------------------------------------------------------------------------------------

def cue_times(captions: list[dict], show_s: float = SHOW_S) -> list[tuple[float, float, dict]]:
    """(start, end, caption) in time order: each shown from its time until `show_s` later or the next caption."""
    ordered = sorted(captions, key=lambda c: float(c["seconds"]))
    cues = []
    for i, cap in enumerate(ordered):
        start = float(cap["seconds"])
        later = [float(c["seconds"]) for c in ordered[i + 1:] if float(c["seconds"]) > start]
        cues.append((start, min([start + show_s, *later]), cap))
    return cues


def cue_text(cap: dict) -> str:
    return " ".join(str(cap["comment"]).split()) or "..."   # a blank line would end the cue


def timestamp(seconds: float, separator: str) -> str:
    """3725.5 -> '01:02:05.500' (WebVTT, separator '.') or '01:02:05,500' (SubRip, ',')."""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{separator}{ms % 1000:03d}"


def vtt_text(captions: list[dict], show_s: float = SHOW_S) -> str:
    """WebVTT subtitles of one half."""
    cues = [f"{i + 1}\n{timestamp(a, '.')} --> {timestamp(b, '.')}\n{cue_text(c)}\n"
            for i, (a, b, c) in enumerate(cue_times(captions, show_s))]
    return "WEBVTT\n\n" + "\n".join(cues)


def srt_text(captions: list[dict], show_s: float = SHOW_S) -> str:
    """Numbered SubRip cues of one half."""
    return "\n".join(f"{i + 1}\n{timestamp(a, ',')} --> {timestamp(b, ',')}\n{cue_text(c)}\n"
                     for i, (a, b, c) in enumerate(cue_times(captions, show_s)))


def write_srt(path: str | Path, captions: list[dict], show_s: float = SHOW_S) -> None:
    write_text_atomic(path, srt_text(captions, show_s))


# ---- the page ----------------------------------------------------------------------------------------------------

def clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def tick_step(length_s: float) -> int:
    """Seconds between time ticks: about 6-12 ticks over the half."""
    return next((s for s in (5, 10, 15, 30, 60, 120, 300, 600) if length_s / s <= 12), 900)


def pct(t: float, length_s: float) -> float:
    return 100 * min(max(t / length_s, 0.0), 1.0)


def marks(captions: list[dict], kind: str, length_s: float) -> str:
    return "\n".join(
        f'<button class="mark {kind}" style="left:{pct(float(c["seconds"]), length_s):.3f}%" '
        f'data-t="{float(c["seconds"]):g}" title="{clock(float(c["seconds"]))} '
        f'{html.escape(str(c.get("label", "")))}: {html.escape(str(c["comment"]))}"></button>'
        for c in sorted(captions, key=lambda c: float(c["seconds"])))


def entries(captions: list[dict], kind: str, show_s: float = SHOW_S) -> str:
    rows = []
    for start, end, cap in cue_times(captions, show_s):
        conf = (f'<span class="conf">{float(cap["confidence"]):.2f}</span>'
                if kind == "pred" and "confidence" in cap else "")
        rows.append(f'<li><button class="cap {kind}" data-t="{start:g}" data-end="{end:g}">'
                    f'<span class="time">{clock(start)}</span><span class="label">'
                    f'{html.escape(str(cap.get("label", "")))}</span>{conf}'
                    f'<span class="text">{html.escape(str(cap["comment"]))}</span></button></li>')
    return "\n".join(rows)


def confidence_svg(confidence: list[float] | None, length_s: float) -> str:
    """The spotter's confidence of every second as a filled curve over the timeline (0 at the bottom, 1 on top)."""
    if not confidence:
        return ""
    points = " ".join(f"{100 * (i + 0.5) / length_s:.3f},{100 * (1 - min(max(c, 0.0), 1.0)):.2f}"
                      for i, c in enumerate(confidence))
    return (f'<svg class="confidence" viewBox="0 0 100 100" preserveAspectRatio="none" aria-label="confidence">'
            f'<polyline points="0,100 {points} 100,100" /></svg>')


def ticks(length_s: float) -> str:
    step = tick_step(length_s)
    return "\n".join(f'<span class="tick" style="left:{pct(t, length_s):.3f}%">{clock(t)}</span>'
                     for t in range(0, int(length_s) + 1, step))


def half_section(view: HalfView) -> str:
    length_s = max(float(view.length_s), 1.0)
    truth = view.truth
    truth_column = (f'<div class="column"><h3>Ground truth ({len(truth)})</h3><ul>{entries(truth, "truth")}</ul>'
                    f'</div>' if truth is not None else "")
    cues = [{"start": a, "end": b, "text": cue_text(c)} for a, b, c in cue_times(view.captions)]
    cues_json = json.dumps(cues).replace("<", "\\u003c")   # no caption can close or comment out the script
    video = (f'<video controls preload="metadata" src="{html.escape(view.video)}"></video>' if view.video
             else '<p class="novideo">No video for this half: the timeline and captions only.</p>')
    return f"""<section class="half" data-length="{length_s:g}" data-half="{view.half}">
<h2>Half {view.half}</h2>
{video}
<script type="application/json" class="cues">{cues_json}</script>
<div class="timeline">
{confidence_svg(view.confidence, length_s)}
<div class="now"></div>
{marks(view.captions, "pred", length_s)}
{marks(truth or [], "truth", length_s)}
</div>
<div class="ticks">{ticks(length_s)}</div>
<div class="columns">
<div class="column"><h3>Predicted ({len(view.captions)})</h3><ul>{entries(view.captions, "pred")}</ul></div>
{truth_column}
</div>
</section>"""


STYLE = """
body { font-family: sans-serif; margin: 1em auto; max-width: 72em; color: #222; padding: 0 1em; }
video { width: 100%; max-height: 45vh; background: #000; }
.legend { display: flex; gap: 1.5em; font-size: 90%; margin: 0.5em 0 1em; flex-wrap: wrap; }
.legend span::before { content: ""; display: inline-block; width: 1em; height: 0.8em; margin-right: 0.4em;
                       vertical-align: middle; }
.legend .pred::before { background: #c33; } .legend .truth::before { background: #36c; }
.legend .confidence::before { background: #fc9; } .legend .current::before { background: #ffd54f; }
.timeline { position: relative; height: 4em; background: #eef; margin: 1em 0 0; border-radius: 4px; }
svg.confidence { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
svg.confidence polyline { fill: #fc9; stroke: #e80; stroke-width: 0.4; vector-effect: non-scaling-stroke; }
.mark { position: absolute; width: 6px; height: 1.3em; padding: 0; border: 0; cursor: pointer; margin-left: -3px; }
.mark.pred { top: 0.15em; background: #c33; }
.mark.truth { bottom: 0.15em; background: #36c; }
.now { position: absolute; top: 0; bottom: 0; width: 2px; background: #000; left: 0; }
.ticks { position: relative; height: 1.4em; font-size: 75%; color: #555; margin-bottom: 0.5em; }
.tick { position: absolute; transform: translateX(-50%); border-left: 1px solid #999; padding-left: 2px; }
.columns { display: flex; gap: 1em; }
.column { flex: 1; min-width: 0; }
ul { list-style: none; padding: 0; max-height: 22em; overflow-y: auto; }
.cap { display: block; width: 100%; text-align: left; border: 1px solid #ddd; background: #fff; margin: 2px 0;
       padding: 0.3em; cursor: pointer; font: inherit; }
.cap:hover { background: #ffd; }
.cap.current { background: #ffd54f; }
.cap.pred { border-left: 4px solid #c33; }
.cap.truth { border-left: 4px solid #36c; }
.time { font-family: monospace; margin-right: 0.6em; }
.label, .conf { font-size: 80%; color: #666; margin-right: 0.6em; }
"""

SCRIPT = """
document.querySelectorAll("section.half").forEach(section => {
  const video = section.querySelector("video");
  const now = section.querySelector(".now");
  const length = parseFloat(section.dataset.length);
  const rows = Array.from(section.querySelectorAll(".cap"));
  const highlight = t => rows.forEach(r => r.classList.toggle("current",
      t >= parseFloat(r.dataset.t) && t < parseFloat(r.dataset.end)));
  section.querySelectorAll("[data-t]").forEach(b => b.addEventListener("click", () => {
    const t = parseFloat(b.dataset.t);
    if (video) { video.currentTime = t; video.play().catch(() => {}); }
    now.style.left = Math.min(100, 100 * t / length) + "%";
    highlight(t);
  }));
  if (!video) return;
  const track = video.addTextTrack("subtitles", "Predicted captions", "en");
  JSON.parse(section.querySelector("script.cues").textContent).forEach(c =>
    track.addCue(new VTTCue(c.start, c.end, c.text)));
  track.mode = "showing";
  video.addEventListener("timeupdate", () => {
    now.style.left = Math.min(100, 100 * video.currentTime / length) + "%";
    highlight(video.currentTime);
  });
});
"""


def page(title: str, halves: list[HalfView]) -> str:
    """The whole page: a legend, then one section per half."""
    legend = ('<div class="legend"><span class="pred">predicted caption</span><span class="truth">ground truth'
              '</span><span class="confidence">spotting confidence (0-1, every second)</span>'
              '<span class="current">caption on screen</span></div>')
    body = "\n".join(half_section(v) for v in halves)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
{legend}
{body}
<script>{SCRIPT}</script>
</body>
</html>
"""


def video_url(video: str | Path, page_path: Path) -> str:
    """The video's path relative to the page's folder, as a URL path (a game folder's spaces or '#' are quoted)."""
    return quote(Path(os.path.relpath(Path(video).resolve(), page_path.parent.resolve())).as_posix())


def write_page(path: str | Path, title: str, halves: list[HalfView], videos: dict[int, Path] | None = None) -> None:
    """Write the page at `path`; `videos` maps a half to its video file (when there is one)."""
    path = Path(path)
    for view in halves:
        video = (videos or {}).get(view.half)
        view.video = video_url(video, path) if video is not None else None
    write_text_atomic(path, page(title, halves))


# ---- `star viewer`: a game's page from a workflow run ------------------------------------------------------------

def game_views(predictions: Path, labels: Path | None, spots: list[Path]) -> tuple[str, list[HalfView]]:
    """(the game's UrlLocal, one view per half) from official predictions, labels and spots files."""
    data = read_json_object(predictions, InputError, "predictions file")
    by_half: dict[int, list[dict]] = {}
    for row in data.get("predictions", []):
        half, seconds = parse_game_time(row["gameTime"])
        by_half.setdefault(half, []).append({"seconds": seconds, "label": row.get("label", ""),
                                             "comment": row["comment"],
                                             **({"confidence": float(row["confidence"])} if "confidence" in row
                                                else {})})
    truth = load_labels(labels) if labels is not None else None
    confidence = {}
    for path in spots:
        content = read_json_object(path, InputError, "spots file")
        half = int(Path(path).stem)   # spots/<game>/<half>.json
        confidence[half] = [float(c) for c in content.get("confidence", [])]
    halves = sorted(set(by_half) | set(confidence) | ({a.half for a in truth.annotations} if truth else set()))
    views = []
    for half in halves:
        gt = ([{"seconds": a.seconds, "label": a.label, "comment": a.anonymized} for a in truth.half(half)]
              if truth is not None else None)
        times = [c["seconds"] for c in by_half.get(half, []) + (gt or [])]
        length = max(len(confidence.get(half, [])), max(times, default=0) + 1)
        views.append(HalfView(half, length, by_half.get(half, []), gt, confidence.get(half)))
    return str(data.get("UrlLocal", predictions.parent.name)), views


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--predictions", type=Path, required=True, help="results_dense_captioning.json of a game")
    parser.add_argument("--labels", type=Path, help="Labels-caption.json of the game (the ground-truth column)")
    parser.add_argument("--spots", type=Path, nargs="*", default=[],
                        help="spots JSON of each half (`star spotting-infer`): the confidence curve")
    parser.add_argument("--video-dir", type=Path, help="folder holding the half videos")
    parser.add_argument("--video", default="{half}_224p.mkv", help="video file name per half (default: %(default)s)")
    parser.add_argument("--title", help="page title (default: the game's path)")
    parser.add_argument("--out", type=Path, required=True, help="HTML page to write")


def run(args: argparse.Namespace) -> int:
    game, views = game_views(args.predictions, args.labels, args.spots)
    videos = {}
    if args.video_dir is not None:
        for view in views:
            video = args.video_dir / args.video.format(half=view.half)
            if video.is_file():
                videos[view.half] = video
    write_page(args.out, args.title or game, views, videos)
    print(f"star viewer: {len(views)} halves, {sum(len(v.captions) for v in views)} captions -> {args.out}")
    return 0
