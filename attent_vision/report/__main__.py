"""``python -m attent_vision.report``: the same as the ``attent-report`` command."""

from .cli import main

if __name__ == "__main__":
    main()
