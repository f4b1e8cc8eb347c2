"""Pitch and camera geometry shared by the simulator, the localizer and the models: the IFAB pitch model in
SoccerNet's pitch frame (`pitch`) and a pan-tilt-zoom pinhole camera over it (`camera`). Depends on numpy only."""
