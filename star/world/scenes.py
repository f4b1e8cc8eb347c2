"""What the broadcast shows besides the main picture: the scoreboard, the replay banner, and the close-up
scenes of cuts (cards, the substitution board, a celebration, an injury, the ball in the net, a player, the crowd)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from star.world.drawing import BALL_COLOUR, FIGURE_PARTS, GRASS, GRASS_LIGHT, SKIN, Look
from star.world.match import Event, HalfTrack, Match, Person

REPLAY_COLOUR = (210, 0, 120)


# ---------------------------------------------------------------- overlays: scoreboard and replay banner

@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def short_name(club: str) -> str:
    return club.split()[0][:3].upper()


def scoring_team(event: Event) -> int | None:
    """The team a goal counts for, or None when the event is no goal."""
    if event.team is None:
        return None
    if event.kind == "goal" or (event.kind == "penalty" and event.detail.get("scored")):
        return event.team
    if event.kind == "own_goal":   # the acting team put the ball in its own net
        return 1 - event.team
    return None


class Scoreboard:
    """Top-left overlay: team short names with kit swatches, the score at that time, the match clock."""

    def __init__(self, match: Match, track: HalfTrack, height: int):
        self.names = [short_name(t) for t in match.teams]
        self.colours = [k.shirt for k in match.kits]
        self.base = np.zeros(2, int)
        for half in match.halves:
            if half.half < track.half:
                self.base += self._goals(half.events, math.inf)
        self.events = track.events
        self.clock_start = (track.half - 1) * 45 * 60
        self.font = _font(max(8, height // 20))
        self.cache: dict[str, Image.Image] = {}

    @staticmethod
    def _goals(events: list[Event], until: float) -> np.ndarray:
        goals = np.zeros(2, int)
        for event in events:
            team = scoring_team(event)
            if team is not None and event.time <= until:
                goals[team] += 1
        return goals

    def text(self, t: float) -> str:
        home, away = self.base + self._goals(self.events, t)
        clock = int(self.clock_start + t)
        return f"{self.names[0]} {home}-{away} {self.names[1]}  {clock // 60:02d}:{clock % 60:02d}"

    def patch(self, t: float) -> Image.Image:
        text = self.text(t)
        if text not in self.cache:
            self.cache[text] = self._draw(text)
        return self.cache[text]

    def _draw(self, text: str) -> Image.Image:
        left, top, right, bottom = self.font.getbbox(text)
        pad, swatch = 3, max(3, (bottom - top) // 2)
        img = Image.new("RGB", (right + 2 * pad + 2 * swatch + 4, bottom + 2 * pad), (14, 22, 48))
        canvas = ImageDraw.Draw(img)
        canvas.rectangle((0, 0, swatch - 1, img.height - 1), fill=self.colours[0])
        canvas.rectangle((img.width - swatch, 0, img.width - 1, img.height - 1), fill=self.colours[1])
        canvas.text((swatch + pad, pad), text, font=self.font, fill=(255, 255, 255))
        return img


def replay_banner(img: Image.Image) -> None:
    """A bold magenta frame and a 'REPLAY' band: unmistakable even at 64x64 pixels."""
    canvas = ImageDraw.Draw(img)
    w, h = img.size
    border = max(2, h // 40)
    canvas.rectangle((0, 0, w - 1, h - 1), outline=REPLAY_COLOUR, width=border)
    font = _font(max(10, h // 9))
    band = h // 6
    canvas.rectangle((0, 0, w - 1, band), fill=REPLAY_COLOUR)
    canvas.text((w // 2, band // 2), "REPLAY", font=font, fill=(255, 255, 255), anchor="mm")

# ---------------------------------------------------------------- close-ups

def _crowd(img: Image.Image, box, rng: np.random.Generator, colours, cell: int) -> None:
    """Blocks of supporters' colours: what a crowd looks like out of focus."""
    x0, y0, x1, y1 = box
    rows, cols = -(-(y1 - y0) // cell), -(-(x1 - x0) // cell)
    palette = np.array([*colours, (60, 60, 70), (150, 140, 130), (220, 190, 160)], float)
    blocks = palette[rng.integers(0, len(palette), (rows, cols))] * rng.uniform(0.4, 1.0, (rows, cols, 1))
    pixels = blocks.astype(np.uint8).repeat(cell, 0).repeat(cell, 1)[: y1 - y0, : x1 - x0]   # [h, w, 3]
    img.paste(Image.fromarray(pixels), (x0, y0))


def _grass(canvas: ImageDraw.ImageDraw, box, band: int) -> None:
    x0, y0, x1, y1 = box
    canvas.rectangle(box, fill=GRASS)
    for x in range(x0, x1, 2 * band):
        canvas.rectangle((x, y0, x + band - 1, y1), fill=GRASS_LIGHT)


def _big_figure(canvas: ImageDraw.ImageDraw, u: float, v: float, s: float, look: Look,
                arms: str = "down") -> tuple[float, float]:
    """A large standing figure (feet at (u, v), s px per metre); returns the raised hand's position."""
    for left, right in ((-0.16, -0.03), (0.03, 0.16)):   # a close-up is big enough for two legs
        canvas.rectangle((u + left * s, v - 0.5 * s, u + right * s, v), fill=look.socks)
    for (bottom, top, left, right), slot in FIGURE_PARTS[1:3]:
        canvas.rectangle((u + left * s, v - top * s, u + right * s, v - bottom * s), fill=getattr(look, slot))
    canvas.ellipse((u - 0.13 * s, v - 1.8 * s, u + 0.13 * s, v - 1.5 * s), fill=look.skin)
    shoulder, reach = v - 1.45 * s, 0.6 * s
    hand = (u + 0.45 * s, shoulder - reach)
    if arms == "up":
        for sign in (-1, 1):
            canvas.line((u + sign * 0.22 * s, shoulder, u + sign * 0.5 * s, shoulder - reach), fill=look.shirt,
                        width=max(2, round(0.1 * s)))
    else:
        canvas.line((u - 0.28 * s, shoulder, u - 0.3 * s, shoulder + reach), fill=look.shirt,
                    width=max(2, round(0.1 * s)))
        right_end = hand if arms == "raise" else (u + 0.3 * s, shoulder + reach)
        canvas.line((u + 0.28 * s, shoulder, *right_end), fill=look.shirt, width=max(2, round(0.1 * s)))
    return hand


@dataclass
class CutScene:
    """What a close-up needs to know: who is shown and in which colours."""

    cue: str
    team_look: Look
    subject: Person | None
    subject_look: Look
    referee_look: Look
    home_away: tuple[tuple[int, int, int], tuple[int, int, int]]
    numbers: tuple[int, int]                 # substitution board: off, on


def _scene_card(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, int(0.45 * h)), rng, scene.home_away, cell=max(4, h // 20))
    _grass(canvas, (0, int(0.45 * h), w, h), band=w // 5)
    _big_figure(canvas, 0.75 * w, 1.15 * h, 0.6 * h, scene.subject_look)
    hand = _big_figure(canvas, 0.4 * w, 1.35 * h, 0.48 * h, scene.referee_look, arms="raise")
    card = (250, 215, 0) if scene.cue == "yellow_card" else (215, 10, 20)
    cw, ch = 0.13 * h, 0.2 * h
    canvas.rectangle((hand[0] - cw / 2, hand[1] - 0.8 * ch, hand[0] + cw / 2, hand[1] + 0.2 * ch), fill=card,
                     outline=(0, 0, 0), width=2)


def _scene_substitution(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, h), rng, scene.home_away, cell=max(6, h // 10))
    _big_figure(canvas, 0.5 * w, 1.4 * h, 0.7 * h, Look((30, 30, 36), (30, 30, 36), (30, 30, 36), SKIN[1]))
    bx0, by0, bx1, by1 = 0.25 * w, 0.12 * h, 0.75 * w, 0.8 * h
    canvas.rectangle((bx0, by0, bx1, by1), fill=(8, 8, 8), outline=(90, 90, 90), width=3)
    font = _font(max(10, h // 4))
    canvas.text(((bx0 + bx1) / 2, by0 + 0.25 * (by1 - by0)), f"{scene.numbers[0]:02d}", font=font,
                fill=(255, 30, 30), anchor="mm")
    canvas.text(((bx0 + bx1) / 2, by0 + 0.75 * (by1 - by0)), f"{scene.numbers[1]:02d}", font=font,
                fill=(40, 255, 60), anchor="mm")


def _scene_celebration(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, int(0.4 * h)), rng, scene.home_away, cell=max(4, h // 24))
    _grass(canvas, (0, int(0.4 * h), w, h), band=w // 4)
    for _ in range(6):
        s = rng.uniform(0.35, 0.6) * h
        _big_figure(canvas, rng.uniform(0.1, 0.9) * w, rng.uniform(0.9, 1.25) * h, s, scene.team_look, arms="up")


def _scene_injury(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _grass(canvas, (0, 0, w, h), band=h // 3)
    look, s, u, v = scene.subject_look, 0.42 * h, 0.2 * w, 0.55 * h   # lying: feet left, head right
    canvas.rectangle((u, v - 0.14 * s, u + 0.5 * s, v + 0.14 * s), fill=look.socks)
    canvas.rectangle((u + 0.45 * s, v - 0.2 * s, u + 0.9 * s, v + 0.2 * s), fill=look.shorts)
    canvas.rectangle((u + 0.85 * s, v - 0.26 * s, u + 1.5 * s, v + 0.26 * s), fill=look.shirt)
    canvas.ellipse((u + 1.5 * s, v - 0.14 * s, u + 1.8 * s, v + 0.14 * s), fill=look.skin)
    medic = Look((240, 240, 240), (30, 30, 30), (30, 30, 30), SKIN[2])
    _big_figure(canvas, 0.82 * w, 0.95 * h, 0.4 * h, medic)
    kx, ky, k = 0.62 * w, 0.78 * h, 0.1 * h      # the medic's bag: a red cross on white
    canvas.rectangle((kx - k, ky - k, kx + k, ky + k), fill=(250, 250, 250))
    canvas.rectangle((kx - k * 0.7, ky - k * 0.22, kx + k * 0.7, ky + k * 0.22), fill=(220, 0, 0))
    canvas.rectangle((kx - k * 0.22, ky - k * 0.7, kx + k * 0.22, ky + k * 0.7), fill=(220, 0, 0))


def _scene_goal_net(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, h), rng, scene.home_away, cell=max(5, h // 14))
    step, width = max(6, h // 12), max(1, h // 110)
    for k in range(-h, w + h, step):   # the diamond mesh of the net
        canvas.line((k, 0, k + h, h), fill=(235, 235, 235), width=width)
        canvas.line((k, h, k + h, 0), fill=(235, 235, 235), width=width)
    post = max(6, w // 20)
    canvas.rectangle((0, 0, w - 1, post), fill=(250, 250, 250))
    canvas.rectangle((0, 0, post, h - 1), fill=(250, 250, 250))
    r, bu, bv = 0.17 * h, 0.55 * w, 0.68 * h
    canvas.ellipse((bu - r, bv - r, bu + r, bv + r), fill=BALL_COLOUR, outline=(0, 0, 0), width=2)
    for angle in np.linspace(0, 2 * np.pi, 5, endpoint=False) + rng.uniform(0, np.pi):
        pu, pv, pr = bu + 0.55 * r * math.cos(angle), bv + 0.55 * r * math.sin(angle), 0.22 * r
        canvas.ellipse((pu - pr, pv - pr, pu + pr, pv + pr), fill=(20, 20, 20))


def _scene_player(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, h), rng, scene.home_away, cell=max(8, h // 8))
    look = scene.subject_look
    canvas.rectangle((0.25 * w, 0.62 * h, 0.75 * w, h), fill=look.shirt)            # shoulders and chest
    canvas.rectangle((0.45 * w, 0.5 * h, 0.55 * w, 0.66 * h), fill=look.skin)        # neck
    canvas.ellipse((0.39 * w, 0.14 * h, 0.61 * w, 0.58 * h), fill=look.skin)
    canvas.chord((0.39 * w, 0.1 * h, 0.61 * w, 0.4 * h), 180, 360, fill=(40, 28, 20))   # hair
    if scene.subject is not None and scene.subject.shirt:
        bright = sum(look.shirt) > 380
        canvas.text((0.5 * w, 0.82 * h), str(scene.subject.shirt), font=_font(max(10, h // 5)), anchor="mm",
                    fill=(20, 20, 20) if bright else (250, 250, 250))


def _scene_crowd(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, h), rng, scene.home_away, cell=max(3, h // 40))
    for k in range(3):   # flags in the team's colours, held up over the heads
        fx, fy = rng.uniform(0.05, 0.7) * w, rng.uniform(0.05, 0.5) * h
        colour = scene.home_away[k % 2]
        canvas.line((fx, fy, fx, fy + 0.5 * h), fill=(90, 70, 40), width=3)
        canvas.rectangle((fx, fy, fx + 0.25 * w, fy + 0.22 * h), fill=colour)
        canvas.rectangle((fx, fy + 0.08 * h, fx + 0.25 * w, fy + 0.14 * h), fill=(245, 245, 245))


SCENES = {
    "yellow_card": _scene_card, "red_card": _scene_card, "substitution": _scene_substitution,
    "celebration": _scene_celebration, "injury": _scene_injury, "goal_net": _scene_goal_net,
    "player": _scene_player, "crowd": _scene_crowd,
}

