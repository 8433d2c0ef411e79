"""attent-pseudolabel's config tree (a package, so ``pkg://attent_vision.conf.pseudolabel`` finds it)."""
