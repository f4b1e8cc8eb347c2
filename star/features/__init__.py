"""Clip features per game half: PP-TimesFormer in PaddlePaddle (`timesformer`), its fine-tuning on event labels
(`finetune`), extraction at 1 fps (`extract`), SoccerNet's precomputed `.npy` features (`import_npy`), and a
linear probe that checks features carry event information (`probe`).

Modules that run Paddle import it lazily, after `timesformer.setup_paddle` has set the environment it reads.
"""
