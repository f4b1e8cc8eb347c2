"""SoccerNet-style captions for the annotated events of a simulated match.

Every caption is written once as a template with entity slots (<A>, <TA>, <REF>, ...) and rendered twice: the
`anonymized` version with [PLAYER], [TEAM], [REFEREE], [COACH] (the training target), and the `identified` version
with the names from the lineups. The seeded generator picks one of several phrasings per situation.

Captions carry what a model can only get right by looking at positions (flank, zone, box, distance bands, where
a cross or corner came from) and at the whole half (what led to a corner, the score after a goal, a second
booking, a substitution forced by an injury, how long a spell of pressure lasted). GRAMMAR.md lists the grammar.

Each caption also records what it recalls from earlier in the half (`Event.recalls`, written into the labels as the
annotation's `recalls`): the fact it states that a model can only know from before the event, and how long ago
that fact began (`recalled_facts`). The diagnostics (star.eval.diagnostics) score long-range context with it.
"""

from __future__ import annotations

import re

import numpy as np

from star.world.match import Event, HalfTrack, Match
from star.geometry.pitch import HALF_L, distance_to_goal, in_penalty_area

YARDS_PER_METRE = 1.0936
NTH = ("first", "second", "third", "fourth", "fifth", "sixth")
ANONYMOUS = {"player": "[PLAYER]", "team": "[TEAM]", "referee": "[REFEREE]", "coach": "[COACH]"}


class Scene:
    """One half of a match, seen by the commentator: spatial words from positions, facts from the events."""

    def __init__(self, match: Match, track: HalfTrack, rng: np.random.Generator):
        self.match, self.track, self.rng = match, track, rng
        self.referee = next(p.id for p in match.people if p.role == "referee")

    def pick(self, *options: str) -> str:
        return options[int(self.rng.integers(len(options)))]

    # ---- space, from the attacking team's point of view (it attacks +x in its frame, its left is +y)
    def attack(self, team: int) -> int:
        return 1 if team == self.track.left_team else -1

    def lateral(self, xy, team: int) -> float:
        return -self.attack(team) * xy[1]

    def depth(self, xy, team: int) -> float:
        return self.attack(team) * xy[0]

    def flank(self, xy, team: int) -> str:
        side = self.lateral(xy, team)
        return "left" if side > 9 else "right" if side < -9 else "centre"

    def in_box(self, xy, team: int) -> bool:
        return in_penalty_area(xy[0], xy[1], self.attack(team))

    def zone(self, xy, team: int) -> str:
        """Where `team` has the ball: inside the box, the final third, midfield or its own half."""
        if self.in_box(xy, team):
            return "inside the box"
        depth = self.depth(xy, team)
        return "in the final third" if depth > 17.5 else "in midfield" if depth > -17.5 else "deep in their own half"

    def area(self, xy, team: int) -> str:
        """Zone and flank: 'in midfield on the left', 'in the final third', ..."""
        flank = self.flank(xy, team)
        return self.zone(xy, team) + ("" if flank == "centre" else f" on the {flank}")

    def distance(self, xy, team: int) -> str:
        """A distance band to the goal `team` attacks: from close range / from 20 yards / from distance."""
        metres = distance_to_goal(xy[0], xy[1], self.attack(team))
        yards = metres * YARDS_PER_METRE
        if metres < 11:
            return "from close range"
        if yards <= 32:
            return f"from {5 * round(yards / 5)} yards"
        return "from distance"

    def wing(self, xy, team: int) -> str:
        """Where a cross comes from: 'from the left', 'from deep on the right', 'from the middle'."""
        flank = self.flank(xy, team)
        if flank == "centre":
            return "from the middle"
        return f"from deep on the {flank}" if self.depth(xy, team) < HALF_L - 27 else f"from the {flank}"

    def corner_side(self, xy, team: int) -> str:
        return "left" if self.lateral(xy, team) > 0 else "right"

    def keeper(self, team: int, t: float) -> int:
        """`team`'s goalkeeper on the pitch at time t."""
        i = self.track.sample(t)
        return next(p.id for p in self.match.people if p.team == team and p.role == "goalkeeper"
                    and not np.isnan(self.track.xy[i, p.id, 0]))

    # ---- what led to an event
    def cause(self, ev: Event) -> Event | None:
        return self.track.events[ev.cause] if ev.cause is not None else None


def score_text(score) -> str:
    return f"{score[0]}-{score[1]}"


def after_goal(team: int, score) -> str:
    """What a goal by `team` did to the score, e.g. '<TA> draw level at 1-1.'"""
    mine, theirs = score[team], score[1 - team]
    s = score_text(score)
    if mine == theirs:
        return f"<TA> draw level at {s}."
    if mine - theirs == 1 and mine + theirs == 1:
        return f"<TA> take the lead, {s}."
    if mine - theirs == 1:
        return f"<TA> are back in front, {s}."
    if mine > theirs:
        return f"<TA> extend their lead to {s}."
    return f"<TA> pull one back, {s}."


def state_of_play(score) -> str:
    """'<TH> lead 1-0' / 'it is level at 1-1' / 'it is still goalless' (home-away score; <TH> home, <TW> away)."""
    home, away = score
    if home == away:
        return "it is still goalless" if home == 0 else f"it is level at {score_text(score)}"
    leader = "<TH>" if home > away else "<TW>"
    return f"{leader} lead {score_text(score)}"


# ---------------------------------------------------------------- writers: (template, entities) per event kind
# Entities map a slot name to ("player", id), ("team", t), ("referee",) or ("coach", t).

def write_kickoff(sc: Scene, ev: Event):
    ents = {"REF": ("referee",), "TA": ("team", ev.team), "TH": ("team", 0), "TW": ("team", 1)}
    if sc.track.half == 1:
        text = sc.pick("<REF> blows the whistle and the match is under way. <TA> kick off the first half.",
                       "<REF> gets the game started. <TA> get the ball rolling and we are under way.",
                       "We are under way! <REF> blows the whistle and <TA> kick off the first half.")
    else:
        state = state_of_play(ev.detail["score"])
        text = sc.pick(f"<REF> blows the whistle to start the second half, and {state}. <TA> kick off.",
                       f"The second half is under way. <TA> get it started and {state}.",
                       f"<REF> gets the second half going. {state[0].upper() + state[1:]} after the first half.")
    return text, ents


def write_half_end(sc: Scene, ev: Event):
    ents = {"REF": ("referee",), "TH": ("team", 0), "TW": ("team", 1)}
    home, away = ev.detail["score"]
    if sc.track.half == 1:
        if home == away:
            result = "It is goalless at the break." if home == 0 else f"The teams go in level at {home}-{away}."
        else:
            leader = "<TH>" if home > away else "<TW>"
            result = f"{leader} go into the break with a {home}-{away} lead."
        text = sc.pick(f"<REF> blows the whistle for half-time. {result}",
                       f"That is the end of the first half, signalled by <REF>. {result}")
    else:
        if home == away:
            result = "The match ends goalless." if home == 0 else f"The match ends in a {home}-{away} draw."
        else:
            winner, loser = ("<TH>", "<TW>") if home > away else ("<TW>", "<TH>")
            result = f"{winner} win {home}-{away} against {loser}."
        text = sc.pick(f"<REF> blows the final whistle. {result}",
                       f"It is all over! <REF> brings the game to an end. {result}")
    return text, ents


def _placement(detail: dict) -> str:
    lateral, height = detail["placement"]
    side = "left" if lateral > 1.2 else "right" if lateral < -1.2 else ""
    if not side:
        return "the middle of the goal"
    return f"the {'top' if height > 1.3 else 'bottom'} {side} corner"


def write_goal(sc: Scene, ev: Event):
    team, how, d = ev.team, ev.detail["how"], ev.detail
    scorer, assist, keeper = ev.players[0], d.get("assist"), ev.players[-1]
    ents = {"A": ("player", scorer), "TA": ("team", team), "K": ("player", keeper), "TB": ("team", 1 - team)}
    score = after_goal(team, d["score"])
    where = _placement(d)
    if how == "header":
        cross = sc.cause(ev)
        ents["B"] = ("player", assist)
        wing = sc.wing(cross.xy, team)
        text = sc.pick(f"<B> (<TA>) whips in a cross {wing} and <A> rises to head it into {where}. {score}",
                       f"GOAL! <A> (<TA>) meets the cross {wing} from <B> with a fine header into {where}. "
                       f"{score}",
                       f"<B> (<TA>) delivers a cross {wing} and <A> heads it past <K>. {score}")
    elif how == "corner":
        corner = sc.cause(ev)
        shot = sc.cause(sc.cause(corner))
        ents.update(B=("player", assist), C=("player", shot.players[0]))
        side = sc.corner_side(corner.xy, team)
        earlier = f"<K> had tipped <C>'s effort {sc.distance(shot.xy, team)} behind"
        text = sc.pick(f"<B> (<TA>) swings in the corner from the {side} and <A> heads it home. {score} "
                       f"The corner came after {earlier}.",
                       f"After {earlier}, <TA> make the corner count: <A> heads in <B>'s delivery from the "
                       f"{side}. {score}")
    else:
        dist = sc.distance(ev.xy, team)
        helper = " after a pass from <B>" if assist is not None else ""
        if assist is not None:
            ents["B"] = ("player", assist)
        box = "inside the box" if sc.in_box(ev.xy, team) else "outside the box"
        text = sc.pick(f"GOAL! <A> (<TA>) finds the net with a shot {dist} into {where}{helper}. {score}",
                       f"<A> (<TA>) receives the ball {box}{helper} and fires {dist} into {where}. {score}",
                       f"What a strike! <A> (<TA>) lets fly {dist} and the ball flies into {where}. {score}",
                       f"<A> (<TA>) makes no mistake {dist} and places it into {where}. {score}")
    return text, ents


def write_own_goal(sc: Scene, ev: Event):
    defender, crosser = ev.players[0], ev.players[1]
    benefit = 1 - ev.team
    cross = sc.cause(ev)
    wing = sc.wing(cross.xy, benefit)
    ents = {"A": ("player", defender), "TB": ("team", ev.team), "B": ("player", crosser), "TA": ("team", benefit)}
    score = after_goal(benefit, ev.detail["score"])
    text = sc.pick(f"<B> (<TA>) sends in a cross {wing} and <A> (<TB>) turns it into his own net! {score}",
                   f"Own goal! <A> (<TB>) tries to clear a cross {wing} from <B> but puts it past his own "
                   f"keeper. {score}",
                   f"Disaster for <TB>! <B> (<TA>) crosses {wing} and <A> deflects the ball into his own net. "
                   f"{score}")
    return text, ents


def write_penalty_awarded(sc: Scene, ev: Event):
    fouled, defender = ev.players
    ents = {"A": ("player", fouled), "TA": ("team", ev.team), "B": ("player", defender),
            "TB": ("team", 1 - ev.team), "REF": ("referee",)}
    flank = sc.flank(ev.xy, ev.team)
    part = "in the middle of the box" if flank == "centre" else f"on the {flank} side of the box"
    text = sc.pick(f"<A> (<TA>) is brought down {part} by <B> and <REF> points to the spot. Penalty to <TA>!",
                   f"Penalty! <B> (<TB>) trips <A> {part} and <REF> has no doubts.",
                   f"<REF> awards a penalty to <TA> after <A> goes down {part} under a challenge from <B> (<TB>).")
    return text, ents


def write_penalty(sc: Scene, ev: Event):
    """The penalty kick: scored (soccer-ball) or missed (penalty-missed); says who won it, 20 s earlier."""
    taker, keeper = ev.players
    award = sc.cause(ev)
    ents = {"A": ("player", taker), "TA": ("team", ev.team), "K": ("player", keeper), "TB": ("team", 1 - ev.team),
            "F": ("player", award.players[0])}
    won = "the penalty won by <F>" if award.players[0] != taker else "the penalty he won himself"
    if ev.detail["scored"]:
        score = after_goal(ev.team, ev.detail["score"])
        text = sc.pick(f"<A> (<TA>) steps up and sends <K> the wrong way to convert {won}. {score}",
                       f"<A> (<TA>) makes no mistake from the spot and scores {won}. {score}")
        return text, ents
    miss = {"saved": "but <K> (<TB>) dives the right way and saves it", "wide": "but drags it wide of the post",
            "over": "but blazes it over the bar"}[ev.detail["outcome"]]
    text = sc.pick(f"<A> (<TA>) steps up to take {won}, {miss}!",
                   f"What a miss! <A> (<TA>) takes {won} {miss}.")
    return text, ents


def _corner_outcome(outcome: str | None) -> str:
    return {"cleared": " but <TB> head it clear", "caught": " but <K> comes out and claims it",
            "wide": " and the header goes just wide"}.get(outcome or "", "")


def write_corner(sc: Scene, ev: Event):
    """A corner, told with the chain that led to it (a saved shot, or a foul, free kick and clearance)."""
    team = ev.team
    side = sc.corner_side(ev.xy, team)
    before = sc.cause(ev)
    ents = {"A": ("player", ev.players[0]), "TA": ("team", team), "TB": ("team", 1 - team), "REF": ("referee",),
            "K": ("player", sc.keeper(1 - team, ev.time))}
    outcome = _corner_outcome(ev.detail.get("outcome"))
    if before.kind == "save":
        shot = sc.cause(before)
        ents["S"] = ("player", shot.players[0])
        dist = sc.distance(shot.xy, team)
        where = "inside the box" if sc.in_box(shot.xy, team) else "from outside the box"
        text = sc.pick(f"<K> (<TB>) tipped <S>'s shot {dist} around the post. <A> (<TA>) takes the corner from "
                       f"the {side}{outcome}.",
                       f"<TA> win a corner after <S> tested <K> {dist}. <A> swings it in from the {side}{outcome}.",
                       f"<S> (<TA>) had a go {where}, but <K> pushed it behind. The corner from the {side} is taken "
                       f"by <A>{outcome}.")
        return text, ents
    free_kick = sc.cause(before)
    foul = sc.cause(free_kick)
    ents.update(F=("player", foul.players[1]), D=("player", foul.players[0]), C=("player", before.players[0]))
    zone = sc.zone(foul.xy, team)
    wing = sc.wing(free_kick.xy, team)
    text = sc.pick(f"<D> (<TB>) fouled <F> {zone}, and the free kick {wing} was headed behind by <C>. <A> (<TA>) "
                   f"takes the corner from the {side}{outcome}.",
                   f"<REF> gave a free kick when <F> (<TA>) was brought down {zone}. The cross {wing} was cleared "
                   f"behind, and <TA> have a corner on the {side}{outcome}.",
                   f"<TA> force a corner: <F> won a free kick {zone}, <C> cleared the delivery {wing}, and <A> "
                   f"swings it in from the {side}{outcome}.")
    return text, ents


def write_shot(sc: Scene, ev: Event):
    team, outcome = ev.team, ev.detail["outcome"]
    ents = {"A": ("player", ev.players[0]), "TA": ("team", team), "K": ("player", ev.players[1]),
            "TB": ("team", 1 - team)}
    dist = sc.distance(ev.xy, team)
    where = "inside the box" if sc.in_box(ev.xy, team) else "outside the box"
    flank = sc.flank(ev.xy, team)
    side = "" if flank == "centre" else f" on the {flank}"
    if outcome == "wide":
        text = sc.pick(f"<A> (<TA>) tries his luck {dist} but his shot goes wide of the post.",
                       f"<A> (<TA>) finds some space {where}{side} and shoots, but it is wide of the target.",
                       f"A chance for <TA>! <A> shoots {dist}{side} but misses the target.")
    elif outcome == "over":
        text = sc.pick(f"<A> (<TA>) shoots {dist} but the ball flies high over the bar.",
                       f"<A> (<TA>) gets a shot away {where}{side}, but it sails over the crossbar.")
    elif outcome == "held":
        text = sc.pick(f"<A> (<TA>) fires {dist}, but <K> gathers it comfortably.",
                       f"<A> (<TA>) tries a shot {where}{side}, but <K> (<TB>) is well positioned and holds it.")
    else:
        text = sc.pick(f"<A> (<TA>) unleashes a shot {dist}, but <K> (<TB>) tips it behind for a corner.",
                       f"Great save! <K> (<TB>) denies <A> {where}{side} and pushes it behind.")
    return text, ents


def write_pressure(sc: Scene, ev: Event):
    team = ev.team
    ents = {"TA": ("team", team), "TB": ("team", 1 - team)}
    span = ev.time - ev.detail["since"]
    how_long = "for the last half a minute" if span >= 25 else "for the last twenty seconds"
    t = sc.track.times
    during = sc.track.ball[(t >= ev.detail["since"]) & (t <= ev.time), :2]
    flank = sc.flank(during.mean(axis=0), team)
    route = "through the middle" if flank == "centre" else f"down the {flank}"
    text = sc.pick(f"<TA> have been camped in the final third {how_long}, mostly {route}, but <TB> are holding firm.",
                   f"<TA> are enjoying a spell of pressure {route}. They have kept <TB> pinned back {how_long}.",
                   f"All <TA> at the moment: they have been passing the ball around in the final third {how_long}, "
                   f"mostly {route}.")
    return text, ents


def write_foul(sc: Scene, ev: Event):
    fouler, fouled = ev.players
    ents = {"A": ("player", fouler), "TA": ("team", ev.team), "B": ("player", fouled), "TB": ("team", 1 - ev.team),
            "REF": ("referee",)}
    area = sc.area(ev.xy, 1 - ev.team)
    text = sc.pick(f"<REF> blows the whistle after <A> (<TA>) brings down <B> {area}.",
                   f"<A> (<TA>) fouls <B> {area}. <REF> awards a free kick to <TB>.",
                   f"<B> (<TB>) is tripped by <A> {area} and <REF> stops play.")
    return text, ents


def _first_booking(sc: Scene, player: int, before: float) -> str:
    """When `player` was booked before: 'earlier in this half' or 'in the first half'."""
    if any(e.kind == "yellow_card" and e.players[0] == player and e.time < before for e in sc.track.events):
        return "earlier in this half"
    return "in the first half"


def write_card(sc: Scene, ev: Event):
    player, fouled = ev.players
    ents = {"A": ("player", player), "TA": ("team", ev.team), "B": ("player", fouled), "TB": ("team", 1 - ev.team),
            "REF": ("referee",)}
    foul = sc.cause(ev)
    area = sc.area(foul.xy, 1 - ev.team)
    if ev.kind == "yellow_card":
        text = sc.pick(f"<A> (<TA>) goes into the book for a late challenge on <B> {area}.",
                       f"<REF> shows a yellow card to <A> (<TA>) for a reckless tackle on <B> {area}.",
                       f"<A> (<TA>) is booked after bringing down <B> {area}.")
    elif ev.kind == "second_yellow":
        when = _first_booking(sc, player, ev.time)
        text = sc.pick(f"<A> (<TA>) brings down <B> {area} and gets his second yellow card, having been booked "
                       f"{when}. He is sent off and <TA> are down to ten men!",
                       f"<REF> shows <A> (<TA>) a second yellow card for a foul on <B> {area}. He was already "
                       f"booked {when}, so he has to go!")
    else:
        text = sc.pick(f"<A> (<TA>) sees a straight red card for a dangerous tackle on <B> {area}! <TA> will play "
                       f"with ten men.",
                       f"Red card! <REF> sends off <A> (<TA>) for a terrible challenge on <B> {area}.")
    return text, ents


def write_injury(sc: Scene, ev: Event):
    hurt, other = ev.players
    ents = {"A": ("player", hurt), "TA": ("team", ev.team), "B": ("player", other), "TB": ("team", 1 - ev.team),
            "REF": ("referee",)}
    area = sc.area(ev.xy, ev.team)
    text = sc.pick(f"<A> (<TA>) is down injured after a challenge by <B> {area}, and <REF> stops the game.",
                   f"The game is stopped as <A> (<TA>) needs treatment after a clash with <B> {area}.",
                   f"<A> (<TA>) stays down {area} after a heavy tackle from <B> (<TB>). The medical staff come on.")
    return text, ents


def write_substitution(sc: Scene, ev: Event):
    leaving, entering = ev.players
    ents = {"A": ("player", leaving), "TA": ("team", ev.team), "B": ("player", entering),
            "COACH": ("coach", ev.team), "TH": ("team", 0), "TW": ("team", 1)}
    nth = NTH[min(ev.detail["count"], len(NTH)) - 1]
    injury = sc.cause(ev)
    if injury is not None:
        text = sc.pick("<A> (<TA>) cannot continue after his injury and is replaced by <B>.",
                       f"The injury is too much for <A> (<TA>). <B> comes on in his place, their {nth} change.")
        return text, ents
    state = state_of_play(ev.detail["score"])
    text = sc.pick(f"<TA> make their {nth} change: <B> comes on for <A>, and {state}.",
                   f"<COACH> decides to make a change for <TA>. <A> is replaced by <B>, and {state}.",
                   f"<A> (<TA>) is substituted and <B> takes his place. That is the {nth} change for <TA>.")
    return text, ents


WRITERS = {
    "kickoff": write_kickoff, "half_end": write_half_end, "goal": write_goal, "own_goal": write_own_goal,
    "penalty_awarded": write_penalty_awarded, "penalty": write_penalty, "corner": write_corner,
    "shot": write_shot, "pressure": write_pressure, "foul": write_foul, "yellow_card": write_card,
    "second_yellow": write_card, "red_card": write_card, "injury": write_injury,
    "substitution": write_substitution,
}


def render(text: str, entities: dict, names: dict | None) -> str:
    """Fill the slots: with [PLAYER]/[TEAM]/... (names None) or with names."""
    def fill(found: re.Match) -> str:
        kind, *key = entities[found.group(1)]
        return ANONYMOUS[kind] if names is None else names[(kind, *key)]

    return re.sub(r"<(\w+)>", fill, text)


def names_of(match: Match) -> dict:
    names = {("player", p.id): p.name for p in match.people}
    names.update({("team", t): match.teams[t] for t in (0, 1)})
    names.update({("coach", t): match.coaches[t] for t in (0, 1)})
    names[("referee",)] = next(p.name for p in match.people if p.role == "referee")
    return names


# ---------------------------------------------------------------- what a caption recalls from earlier
RECALLED = ("score", "booking", "cause", "pressure", "changes")  # the kinds of recalled facts, GRAMMAR.md


def _since_last(track: HalfTrack, ev: Event, kinds: tuple[str, ...], team: int | None = None) -> float:
    """Start of the half or the last earlier event of `kinds` (of `team`), whichever is later: since when a
    running count (score, changes) has held."""
    times = [e.time for e in track.events if e.kind in kinds and e.time < ev.time and (team is None or e.team == team)]
    return max(times, default=0.0)


def recalled_facts(sc: Scene, ev: Event, template: str) -> dict | None:
    """{"what": one of RECALLED, "since_s": seconds from the oldest event the fact depends on to this one} for the
    caption `template` the writer chose for `ev`, or None when it states nothing from before its own chain. A fact
    from the previous half (a first-half booking, the score at the restart) counts from the start of this half."""
    goals = ("goal", "own_goal", "penalty")
    if re.search(r"\d-\d|goalless", template):  # the score, or the state of play, is stated
        origin = _since_last(sc.track, ev, goals)
    elif ev.kind == "second_yellow":
        first = [e.time for e in sc.track.events if e.kind == "yellow_card" and e.players[0] == ev.players[0]
                 and e.time < ev.time]
        return {"what": "booking", "since_s": round(ev.time - min(first, default=0.0), 2)}
    elif ev.kind in ("corner", "penalty") or (ev.kind == "substitution" and sc.cause(ev) is not None):
        root = ev
        while root.cause is not None:  # the chain's first link: the shot or foul before a corner, the injury...
            root = sc.cause(root)
        return {"what": "cause", "since_s": round(ev.time - root.time, 2)}
    elif ev.kind == "pressure":
        return {"what": "pressure", "since_s": round(ev.time - ev.detail["since"], 2)}
    elif ev.kind == "substitution" and "change" in template:
        return {"what": "changes", "since_s": round(ev.time - _since_last(sc.track, ev, ("substitution",), ev.team), 2)}
    else:
        return None
    return {"what": "score", "since_s": round(ev.time - origin, 2)}


def commentate(match: Match, seed: int) -> None:
    """Fill `anonymized`, `identified` and `recalls` of every annotated event of `match` (in place)."""
    rng = np.random.default_rng([seed, 3_301])
    names = names_of(match)
    for track in match.halves:
        scene = Scene(match, track, rng)
        for ev in track.events:
            if ev.label is None:
                continue
            text, entities = WRITERS[ev.kind](scene, ev)
            ev.recalls = recalled_facts(scene, ev, text)
            ev.anonymized = render(text, entities, None)
            ev.identified = render(text, entities, names)
