"""Captions of one half for people: SubRip subtitles and a self-contained HTML timeline (`star caption`).

A caption is a dict with `seconds` (video time in the half), `label` and `comment` (the official prediction
fields). The HTML page needs no network: its CSS and script are inline, every caption text is escaped, and its
<video> names the video by a path relative to the page, so a click on a caption seeks the video when the page sits
in the same tree as the video.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote

from star.provenance import write_text_atomic

SHOW_S = 5.0   # seconds a subtitle stays on screen (less when the next caption comes sooner)


def srt_time(seconds: float) -> str:
    """3725.5 -> '01:02:05,500' (SubRip's hh:mm:ss,mmm)."""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt_text(captions: list[dict], show_s: float = SHOW_S) -> str:
    """Numbered SubRip cues in time order, each shown from its caption's time until `show_s` later or the next."""
    ordered = sorted(captions, key=lambda c: c["seconds"])
    cues = []
    for i, cap in enumerate(ordered):
        start = float(cap["seconds"])
        later = [float(c["seconds"]) for c in ordered[i + 1:] if c["seconds"] > cap["seconds"]]
        end = min([start + show_s, *later])
        text = " ".join(str(cap["comment"]).split()) or "..."   # a blank line would end the cue
        cues.append(f"{i + 1}\n{srt_time(start)} --> {srt_time(end)}\n{text}\n")
    return "\n".join(cues)


def write_srt(path: str | Path, captions: list[dict], show_s: float = SHOW_S) -> None:
    write_text_atomic(path, srt_text(captions, show_s))


def clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def caption_items(captions: list[dict], kind: str, length_s: float) -> tuple[str, str]:
    """(timeline markers, list entries) of one column; `kind` is 'pred' or 'truth'."""
    markers, entries = [], []
    for cap in sorted(captions, key=lambda c: c["seconds"]):
        t = float(cap["seconds"])
        text, label = html.escape(str(cap["comment"])), html.escape(str(cap.get("label", "")))
        left = 100 * min(max(t / length_s, 0.0), 1.0)
        markers.append(f'<button class="mark {kind}" style="left:{left:.3f}%" data-t="{t:g}" '
                       f'title="{clock(t)} {label}: {text}"></button>')
        entries.append(f'<li><button class="cap {kind}" data-t="{t:g}"><span class="time">{clock(t)}</span>'
                       f'<span class="label">{label}</span><span class="text">{text}</span></button></li>')
    return "\n".join(markers), "\n".join(entries)


STYLE = """
body { font-family: sans-serif; margin: 1em auto; max-width: 70em; color: #222; }
video { width: 100%; max-height: 50vh; background: #000; }
.timeline { position: relative; height: 3em; background: #eef; margin: 1em 0; border-radius: 4px; }
.mark { position: absolute; width: 6px; height: 1.3em; padding: 0; border: 0; cursor: pointer; margin-left: -3px; }
.mark.pred { top: 0.15em; background: #c33; }
.mark.truth { bottom: 0.15em; background: #36c; }
.now { position: absolute; top: 0; bottom: 0; width: 2px; background: #000; left: 0; }
.columns { display: flex; gap: 1em; }
.columns > div { flex: 1; }
ul { list-style: none; padding: 0; }
.cap { display: block; width: 100%; text-align: left; border: 1px solid #ddd; background: #fff; margin: 2px 0;
       padding: 0.3em; cursor: pointer; font: inherit; }
.cap:hover { background: #ffd; }
.cap.pred { border-left: 4px solid #c33; }
.cap.truth { border-left: 4px solid #36c; }
.time { font-family: monospace; margin-right: 0.6em; }
.label { font-size: 80%; color: #666; margin-right: 0.6em; }
"""

SCRIPT = """
const video = document.getElementById("video");
const now = document.getElementById("now");
const length = parseFloat(document.getElementById("timeline").dataset.length);
document.querySelectorAll("[data-t]").forEach(b => b.addEventListener("click", () => {
  video.currentTime = parseFloat(b.dataset.t);
  video.play();
}));
video.addEventListener("timeupdate", () => {
  now.style.left = Math.min(100, 100 * video.currentTime / length) + "%";
});
"""


def html_page(title: str, video_src: str, half: int, length_s: float, captions: list[dict],
              truth: list[dict] | None) -> str:
    """The timeline page of one half: predicted captions (red, above) and ground truth (blue, below) if given."""
    length_s = max(float(length_s), 1.0)
    pred_marks, pred_list = caption_items(captions, "pred", length_s)
    truth_marks, truth_list = caption_items(truth or [], "truth", length_s)
    truth_column = (f'<div><h2>Ground truth ({len(truth)})</h2><ul>{truth_list}</ul></div>'
                    if truth is not None else "")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} - half {half}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(title)} - half {half}</h1>
<video id="video" controls preload="metadata" src="{html.escape(video_src)}"></video>
<div class="timeline" id="timeline" data-length="{length_s:g}">
<div class="now" id="now"></div>
{pred_marks}
{truth_marks}
</div>
<div class="columns">
<div><h2>Captions ({len(captions)})</h2><ul>{pred_list}</ul></div>
{truth_column}
</div>
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_html(path: str | Path, video: str | Path, half: int, length_s: float, captions: list[dict],
               truth: list[dict] | None = None, title: str | None = None) -> None:
    """Write the page at `path`; the video's src is its path relative to the page's folder."""
    path = Path(path)
    # a URL path: a game folder's spaces or '#' must not end it
    src = quote(Path(os.path.relpath(Path(video).resolve(), path.parent.resolve())).as_posix())
    write_text_atomic(path, html_page(title or Path(video).stem, src, half, length_s, captions, truth))

