"""``python train.py ...`` in a checkout = ``attent-train ...``: the @hydra.main function and the commands are in
attent_vision/train.py. (Hydra's bash completion for ``python train.py`` looks for that decorator's name here.)"""

from attent_vision.train import main

if __name__ == "__main__":
    main()
