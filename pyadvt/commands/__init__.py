"""``pyadvt`` sub-commands other than experiments (registered in :data:`pyadvt.cli.COMMANDS`)."""

__all__: list[str] = []  # the public names are the submodules
