"""``python finetune.py ...`` in a checkout = ``attent-finetune ...``: the @hydra.main function and the commands
are in attent_vision/finetune.py. (Hydra's bash completion for ``python finetune.py`` looks for that decorator's
name here.)"""

from attent_vision.finetune import main

if __name__ == "__main__":
    main()
